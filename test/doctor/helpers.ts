import { loadManifests, type KubeObject } from '../../src/lib/kube/manifests.js'
import { triggerJob } from '../../src/lib/kube/jobs.js'
import { recordDeployedImages } from '../../src/lib/kube/deploy.js'
import { findResource, type Standin } from '../support/kube-standin/index.js'
import { clientsFor } from '../kube/helpers.js'

export const SECRET_VALUES = {
  DATABASE_URL: 'postgres://seed:pg-Doc7orPassw0rd@db.internal:5432/seedtest',
  token: 'irt-token-doctor-4b7c9e1f',
  AWS_ACCESS_KEY_ID: 'AKIADOCTOREXAMPLE1',
  AWS_SECRET_ACCESS_KEY: 'doctorSecretKeyExample/K7MDENG-bPxRf',
}
export const b64 = (s: string) => Buffer.from(s).toString('base64')

/** Fails when a secret value (plain or base64, as a Secret carries it) appears in the text. */
export function secretLeaks(text: string): string[] {
  return Object.values(SECRET_VALUES).flatMap((v) => [v, b64(v), 'pg-Doc7orPassw0rd']).filter((v) => text.includes(v))
}

export function newNamespace(s: Standin, ns: string): string {
  s.seed({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } })
  return ns
}

/** The k8s/ objects for a namespace as `seedops deploy` stores them (deployed images recorded), editable before seeding. */
export function manifestsFor(ns: string, image?: string): KubeObject[] {
  return recordDeployedImages(loadManifests({ namespace: ns, image }))
}

/** Seeds the objects; a Deployment gets the status its controller would write once its pods are ready (the stand-in runs no Deployment controller). */
export function seedAll(s: Standin, objs: KubeObject[]): void {
  for (const o of objs) {
    if (o.kind === 'Deployment' && !o.status) {
      const n = o.spec.replicas ?? 1
      o.status = { observedGeneration: 1, replicas: n, updatedReplicas: n, readyReplicas: n, availableReplicas: n, conditions: [{ type: 'Available', status: 'True', reason: 'MinimumReplicasAvailable' }] }
    }
    s.seed(o)
  }
}

type SecretName = 'seedtest-db-credentials' | 'r-irt-credentials' | 'aws-s3-credentials' | 'report-config'

/** The secrets and config map the CronJobs read, optionally without some objects or keys. */
export function seedSecrets(s: Standin, ns: string, opts: { omit?: SecretName[]; omitKeys?: Partial<Record<SecretName, string[]>> } = {}): void {
  const objs: any[] = [
    { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'seedtest-db-credentials', namespace: ns }, type: 'Opaque', data: { DATABASE_URL: b64(SECRET_VALUES.DATABASE_URL) } },
    { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'r-irt-credentials', namespace: ns }, type: 'Opaque', data: { token: b64(SECRET_VALUES.token) } },
    { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'aws-s3-credentials', namespace: ns }, type: 'Opaque', data: { AWS_ACCESS_KEY_ID: b64(SECRET_VALUES.AWS_ACCESS_KEY_ID), AWS_SECRET_ACCESS_KEY: b64(SECRET_VALUES.AWS_SECRET_ACCESS_KEY) } },
    { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'report-config', namespace: ns }, data: { S3_BUCKET: 'seedtest-reports', AWS_REGION: 'eu-central-1' } },
  ]
  for (const o of objs) {
    const name = o.metadata.name as SecretName
    if (opts.omit?.includes(name)) continue
    for (const k of opts.omitKeys?.[name] ?? []) delete o.data[k]
    s.seed(o)
  }
}

export async function waitFor<T>(what: string, fn: () => T | undefined | false, timeoutMs = 20_000): Promise<T> {
  const end = Date.now() + timeoutMs
  for (;;) {
    const v = fn()
    if (v) return v
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

const JOBS = () => findResource('batch', 'v1', 'jobs')!
const PODS = () => findResource('', 'v1', 'pods')!

export function job(s: Standin, ns: string, name: string): any {
  return s.api.store.get(JOBS(), ns, name)
}

export function pods(s: Standin, ns: string): any[] {
  return s.api.store.list(PODS(), ns)
}

/** Creates a job from the CronJob (as `jobs trigger` does) and waits until `done(job, pods)` holds. */
export async function runJob(s: Standin, ns: string, cronjob: string, done: (job: any, pods: any[]) => boolean): Promise<string> {
  const j = await triggerJob(clientsFor(s, ns), cronjob)
  const name = j.metadata!.name!
  await waitFor(`job ${name}`, () => done(job(s, ns, name), s.api.jobPods(ns, name)))
  return name
}

export const finished = (state: 'Complete' | 'Failed') => (j: any) => Boolean(j?.status?.conditions?.some((c: any) => c.type === state && c.status === 'True'))
export const waitingReason = (reason: string) => (_j: any, ps: any[]) => ps.some((p) => p.status?.containerStatuses?.some((c: any) => c.state?.waiting?.reason === reason))
