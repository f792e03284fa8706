import type { V1ConfigMap, V1CronJob, CoreV1Event, V1Job, V1Pod, V1Secret } from '@kubernetes/client-node'
import { kubeRequest } from '../kube/client.js'
import { registerSecret, SeedopsError } from '../errors/index.js'
import type { KubeClients } from '../kube/client.js'
import { isNotFound, kubeCall } from '../kube/errors.js'
import type { ClusterSnapshot } from './types.js'
import { RECORD_NAME, type AdoptionRecord } from '../adopt/record.js'

/**
 * One read of the namespace for all cluster checks: CronJobs, Jobs and Pods listed once, events
 * and the named secrets/config maps on demand. Secret values are registered for redaction as
 * soon as they are read; no check ever prints them.
 */
export async function readNamespace(k: KubeClients): Promise<{ present: boolean; verifiable: boolean }> {
  try {
    await kubeCall(k, { verb: 'get', resource: 'namespaces', name: k.namespace }, () => k.core.readNamespace({ name: k.namespace }))
    return { present: true, verifiable: true }
  } catch (e) {
    if (isNotFound(e)) return { present: false, verifiable: true }
    // The doctor Role is namespaced: it may not get namespaces. Listing in the namespace still works.
    if (e instanceof SeedopsError && e.code === 'KUBE_FORBIDDEN') return { present: true, verifiable: false }
    throw e
  }
}

export async function takeSnapshot(k: KubeClients): Promise<ClusterSnapshot> {
  const ns = k.namespace
  const [cronjobs, jobs, pods] = await Promise.all([
    kubeCall(k, { verb: 'list', resource: 'cronjobs.batch', namespace: ns }, () => k.batch.listNamespacedCronJob({ namespace: ns })),
    kubeCall(k, { verb: 'list', resource: 'jobs.batch', namespace: ns }, () => k.batch.listNamespacedJob({ namespace: ns })),
    kubeCall(k, { verb: 'list', resource: 'pods', namespace: ns }, () => k.core.listNamespacedPod({ namespace: ns })),
  ])
  let events: Promise<CoreV1Event[]> | undefined
  const once = <T>(fn: () => Promise<T>) => {
    let p: Promise<T> | undefined
    return () => (p ??= fn())
  }
  const objects = new Map<string, Promise<V1Secret | V1ConfigMap | undefined>>()
  const snap: ClusterSnapshot = {
    k,
    cronjobs: cronjobs.items as V1CronJob[],
    jobs: jobs.items as V1Job[],
    pods: pods.items as V1Pod[],
    events: () =>
      (events ??= kubeCall(k, { verb: 'list', resource: 'events', namespace: ns }, () => k.core.listNamespacedEvent({ namespace: ns })).then((l) => l.items)),
    deployments: once(() => kubeCall(k, { verb: 'list', resource: 'deployments.apps', namespace: ns }, () => k.apps.listNamespacedDeployment({ namespace: ns })).then((l) => l.items)),
    services: once(() => kubeCall(k, { verb: 'list', resource: 'services', namespace: ns }, () => k.core.listNamespacedService({ namespace: ns })).then((l) => l.items)),
    networkPolicies: once(() => kubeCall(k, { verb: 'list', resource: 'networkpolicies.networking.k8s.io', namespace: ns }, () => k.networking.listNamespacedNetworkPolicy({ namespace: ns })).then((l) => l.items)),
    serverVersion: once(async () => {
      try {
        const res = await kubeRequest(k, '/version')
        const v = JSON.parse(await res.text()) as { major?: string; minor?: string; gitVersion?: string }
        // Managed clusters write minor as "28+".
        const major = parseInt(v.major ?? '', 10)
        const minor = parseInt(v.minor ?? '', 10)
        return Number.isFinite(major) && Number.isFinite(minor) ? { major, minor, gitVersion: v.gitVersion ?? `v${major}.${minor}` } : undefined
      } catch {
        return undefined
      }
    }),
    object(kind, name) {
      const key = `${kind}/${name}`
      let p = objects.get(key)
      if (!p) {
        const resource = kind === 'Secret' ? 'secrets' : 'configmaps'
        p = kubeCall(k, { verb: 'get', resource, namespace: ns, name }, () =>
          kind === 'Secret' ? k.core.readNamespacedSecret({ name, namespace: ns }) : k.core.readNamespacedConfigMap({ name, namespace: ns }),
        ).then(
          (o) => {
            if (kind === 'Secret') for (const v of Object.values((o as V1Secret).data ?? {})) registerSecretB64(v)
            return o
          },
          (e) => {
            if (isNotFound(e)) return undefined
            throw e
          },
        )
        objects.set(key, p)
      }
      return p
    },
    // Read through object(): the doctor Role may lack it (then legacy CronJobs are judged by their suspension alone).
    adoption: once(async () => {
      try {
        const text = ((await snap.object('ConfigMap', RECORD_NAME)) as V1ConfigMap | undefined)?.data?.['record.json']
        return text ? (JSON.parse(text) as AdoptionRecord) : undefined
      } catch {
        return undefined
      }
    }),
  }
  return snap
}

function registerSecretB64(v: string | undefined) {
  if (!v) return
  registerSecret(v)
  registerSecret(Buffer.from(v, 'base64').toString('utf8'))
}

/** The CronJob a Job came from (owner reference), if any. */
export function ownerCronJob(j: V1Job): string | undefined {
  return j.metadata?.ownerReferences?.find((o) => o.kind === 'CronJob')?.name
}

export function ownerJob(p: V1Pod): string | undefined {
  return p.metadata?.ownerReferences?.find((o) => o.kind === 'Job')?.name ?? p.metadata?.labels?.['job-name']
}

const created = (o: { metadata?: { creationTimestamp?: Date | string } }) => new Date(o.metadata?.creationTimestamp ?? 0).getTime()

/**
 * The most recent Job of each CronJob (and every Job without one). Older runs are history: a
 * failure yesterday that today's run fixed is not a problem to report.
 */
export function latestJobs(s: ClusterSnapshot): V1Job[] {
  const byOwner = new Map<string, V1Job>()
  for (const j of s.jobs) {
    const key = ownerCronJob(j) ?? `job/${j.metadata!.name}`
    const cur = byOwner.get(key)
    if (!cur || created(j) > created(cur) || (created(j) === created(cur) && j.metadata!.name! > cur.metadata!.name!)) byOwner.set(key, j)
  }
  return [...byOwner.values()].sort((a, b) => a.metadata!.name!.localeCompare(b.metadata!.name!))
}

/** Pods that matter now: those of the latest jobs, and pods not made by a Job (the IRT service). */
export function currentPods(s: ClusterSnapshot): V1Pod[] {
  const latest = new Set(latestJobs(s).map((j) => j.metadata!.name!))
  const jobNames = new Set(s.jobs.map((j) => j.metadata!.name!))
  return s.pods.filter((p) => {
    const j = ownerJob(p)
    return !j || !jobNames.has(j) || latest.has(j)
  })
}

export function jobOfPod(s: ClusterSnapshot, p: V1Pod): V1Job | undefined {
  const j = ownerJob(p)
  return j ? s.jobs.find((x) => x.metadata?.name === j) : undefined
}
