import { existsSync } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { KubeConfig } from '@kubernetes/client-node'
import { SeedopsError, usageError } from '../errors/index.js'
import { makeClients, retryPolicyFromEnv, type KubeClients } from './client.js'

export const DEFAULT_NAMESPACE = 'seedtest'

/** How to reach the cluster, as kubectl's connection flags give it (see kubeOptions in src/cli/flags.ts). */
export interface KubeConnectOptions {
  /** Kubeconfig path(s), colon-separated (default: $KUBECONFIG, ~/.kube/config, in-cluster). */
  kubeconfig?: string
  context?: string
  namespace?: string
  /** One API request's time limit as a duration: 30s, 1m, 500ms; 0 for none (default 30s). */
  requestTimeout?: string
}

/** `30s`, `1m`, `500ms`, `2h` or a bare number of seconds → milliseconds. */
export function parseDuration(s: string, flag = '--request-timeout'): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(s.trim())
  if (!m) throw usageError(`${flag}: "${s}" is not a duration`, [`Use e.g. ${flag} 30s, 2m or 500ms`])
  const n = Number(m[1])
  return Math.round(n * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? 's') as 'ms'])
}

/** Where client-node finds the service-account token when seedops runs in a pod. */
export const SERVICEACCOUNT_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token'

/**
 * With no KUBECONFIG, no ~/.kube/config and no service-account token, client-node silently falls
 * back to http://localhost:8080 and every call fails with "HTTP protocol is not allowed when
 * skipTLSVerify is not set or false". Say what is missing instead, and how to point seedops at a cluster.
 */
export function noKubeconfig(env: NodeJS.ProcessEnv, tokenPath = SERVICEACCOUNT_TOKEN): SeedopsError | undefined {
  if (env.KUBECONFIG) return undefined
  const home = env.HOME || homedir()
  const config = join(home, '.kube', 'config')
  if (existsSync(config) || existsSync(tokenPath)) return undefined
  return new SeedopsError(`no kubeconfig found (KUBECONFIG is ${env.KUBECONFIG === '' ? 'empty' : 'not set'}, ${config} does not exist) and seedops is not running in a pod`, {
    code: 'KUBE_NO_CONFIG',
    suggestions: ['Point seedops at a cluster: --kubeconfig PATH, or export KUBECONFIG=PATH', 'Pick a context of that kubeconfig with --context NAME (kubectl config get-contexts lists them)', 'Or run seedops inside the cluster (the CronJobs do): it then uses its ServiceAccount'],
  })
}

/** Loads the kubeconfig as kubectl does (flag, $KUBECONFIG, ~/.kube/config, in-cluster) and builds the clients. */
export function loadKubeConfig(opts: KubeConnectOptions): { kc: KubeConfig; inCluster: boolean } {
  const kc = new KubeConfig()
  let inCluster = false
  if (opts.kubeconfig) {
    const files = opts.kubeconfig.split(':').filter(Boolean)
    const missing = files.filter((f) => !existsSync(f))
    if (missing.length === files.length) throw usageError(`kubeconfig ${opts.kubeconfig} does not exist`, ['Pass --kubeconfig PATH or set KUBECONFIG'])
    kc.loadFromFile(files.find((f) => existsSync(f))!)
  } else {
    const none = noKubeconfig(process.env)
    if (none) throw none
    kc.loadFromDefault()
    inCluster = kc.getCurrentCluster()?.name === 'inCluster'
  }
  if (!kc.getCurrentCluster()) {
    throw new SeedopsError('no Kubernetes cluster configured', { code: 'KUBE_NO_CONFIG', suggestions: ['Pass --kubeconfig PATH, set KUBECONFIG, or run inside a pod'] })
  }
  if (opts.context) {
    if (!kc.getContextObject(opts.context)) {
      throw usageError(`context "${opts.context}" is not in the kubeconfig`, [`Contexts: ${kc.getContexts().map((c) => c.name).join(', ') || '(none)'}`, 'List them: kubectl config get-contexts'])
    }
    kc.setCurrentContext(opts.context)
  }
  return { kc, inCluster }
}

export function connect(opts: KubeConnectOptions): KubeClients {
  const { kc, inCluster } = loadKubeConfig(opts)
  // The in-cluster config carries the pod's namespace; a kubeconfig context's namespace is ignored
  // on purpose: seedops' objects live in `seedtest` unless told otherwise.
  const namespace = opts.namespace ?? (inCluster ? kc.getContextObject(kc.getCurrentContext())?.namespace : undefined) ?? DEFAULT_NAMESPACE
  const timeout = parseDuration(opts.requestTimeout ?? '30s')
  return makeClients(kc, namespace, { timeoutMs: timeout || undefined, retry: retryPolicyFromEnv() })
}

/**
 * Connects once: the clients, or the error (no kubeconfig, bad context) that `cluster.reachable`
 * reports instead of aborting the whole doctor.
 */
export function lazyConnect(opts: KubeConnectOptions): { namespace: string; connect: () => KubeClients } {
  let k: KubeClients | undefined
  let err: unknown
  // A bad retry knob is the user's to fix (exit 2), not a cluster check's failure.
  retryPolicyFromEnv()
  try {
    k = connect(opts)
  } catch (e) {
    err = e
  }
  return {
    namespace: k?.namespace ?? opts.namespace ?? DEFAULT_NAMESPACE,
    connect: () => {
      if (k) return k
      throw err
    },
  }
}
