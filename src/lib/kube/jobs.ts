import { randomBytes } from 'node:crypto'
import type { V1Job, V1Pod } from '@kubernetes/client-node'
import { SeedopsError } from '../errors/index.js'
import type { KubeClients } from './client.js'
import { kubeCall } from './errors.js'

/**
 * Jobs: created from a CronJob's template as `kubectl create job --from=cronjob/…` does,
 * waited on with the pods' reasons when they fail, and listed.
 */
export const MANUAL_ANNOTATION = 'cronjob.kubernetes.io/instantiate'
/**
 * A random id per `jobs trigger`, on the Job: when a create is retried after an answer that hid
 * its success (500, timeout), the retry meets 409 AlreadyExists, and this id tells our Job from
 * another one of that name.
 */
export const TRIGGER_ANNOTATION = 'seedops.io/trigger-id'

function suffix(n = 5): string {
  const a = 'bcdfghjklmnpqrstvwxz2456789'
  return [...randomBytes(n)].map((b) => a[b % a.length]).join('')
}

/** `<cronjob>-manual-<5 chars>`, cut to fit the 63-character limit of the job-name label. */
export function manualJobName(cronjob: string): string {
  return `${cronjob.slice(0, 63 - 8 - 5)}-manual-${suffix()}`
}

export async function triggerJob(k: KubeClients, cronjob: string, opts: { name?: string; dryRun?: boolean } = {}): Promise<V1Job> {
  const cj = await kubeCall(k, { verb: 'get', resource: 'cronjobs.batch', namespace: k.namespace, name: cronjob }, () => k.batch.readNamespacedCronJob({ name: cronjob, namespace: k.namespace }))
  const tpl = cj.spec!.jobTemplate
  const name = opts.name ?? manualJobName(cronjob)
  const triggerId = randomBytes(8).toString('hex')
  const job: V1Job = {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: {
      name,
      namespace: k.namespace,
      ...(tpl.metadata?.labels ? { labels: tpl.metadata.labels } : {}),
      annotations: { ...(tpl.metadata?.annotations ?? {}), [MANUAL_ANNOTATION]: 'manual', [TRIGGER_ANNOTATION]: triggerId },
      ownerReferences: [{ apiVersion: 'batch/v1', kind: 'CronJob', name: cj.metadata!.name!, uid: cj.metadata!.uid!, controller: true }],
    },
    spec: tpl.spec,
  }
  try {
    return await kubeCall(k, { verb: 'create', resource: 'jobs.batch', namespace: k.namespace, name }, () => k.batch.createNamespacedJob({ namespace: k.namespace, body: job, fieldManager: 'seedops', dryRun: opts.dryRun ? 'All' : undefined }))
  } catch (e) {
    if (!(e instanceof SeedopsError && e.code === 'KUBE_ALREADY_EXISTS') || opts.dryRun) throw e
    // Our own earlier attempt may have created it: then it is the Job we made, not a second one.
    const existing = await readJob(k, name)
    if (existing.metadata?.annotations?.[TRIGGER_ANNOTATION] === triggerId) return existing
    throw e
  }
}

export type JobState = 'succeeded' | 'failed' | 'running' | 'suspended' | 'pending'

export function jobState(j: V1Job): JobState {
  const cond = (t: string) => j.status?.conditions?.some((c) => c.type === t && c.status === 'True')
  if (cond('Complete')) return 'succeeded'
  if (cond('Failed')) return 'failed'
  if (j.spec?.suspend) return 'suspended'
  if ((j.status?.active ?? 0) > 0) return 'running'
  return 'pending'
}

export interface PodProblem {
  pod: string
  container: string
  reason: string
  message?: string
  image?: string
  exitCode?: number
  /** True when waiting longer cannot help (the job will not finish by itself). */
  fatal: boolean
}

/** What is wrong with a job's pods, in words an operator acts on. */
export function podProblems(pods: V1Pod[]): PodProblem[] {
  const out: PodProblem[] = []
  for (const p of pods) {
    const name = p.metadata!.name!
    const statuses = p.status?.containerStatuses ?? []
    const images = new Map([...(p.spec?.containers ?? []), ...(p.spec?.initContainers ?? [])].map((c) => [c.name, c.image]))
    for (const s of statuses) {
      const w = s.state?.waiting
      if (w && ['ImagePullBackOff', 'ErrImagePull', 'InvalidImageName', 'CreateContainerConfigError', 'CrashLoopBackOff'].includes(w.reason ?? '')) {
        out.push({ pod: name, container: s.name, reason: w.reason!, message: w.message, image: images.get(s.name) ?? s.image, fatal: w.reason !== 'ErrImagePull' })
      }
      const t = s.state?.terminated
      if (t && t.exitCode !== 0) out.push({ pod: name, container: s.name, reason: t.reason ?? 'Error', exitCode: t.exitCode, message: t.message, image: images.get(s.name), fatal: false })
    }
    // A regular container that outlives the main one keeps the pod (and the job) running forever.
    const first = p.spec?.containers?.[0]?.name
    const main = statuses.find((s) => s.name === first)
    if (p.status?.phase === 'Running' && main?.state?.terminated) {
      for (const s of statuses.filter((x) => x.name !== first && x.state?.running)) {
        out.push({ pod: name, container: s.name, reason: 'SidecarStillRunning', message: `${first} exited ${main.state.terminated.exitCode} but ${s.name} is still running`, fatal: true })
      }
    }
  }
  return out
}

export async function jobPods(k: KubeClients, job: V1Job): Promise<V1Pod[]> {
  const ml = job.spec?.selector?.matchLabels ?? { 'job-name': job.metadata!.name! }
  const labelSelector = Object.entries(ml).map(([a, b]) => `${a}=${b}`).join(',')
  const list = await kubeCall(k, { verb: 'list', resource: 'pods', namespace: k.namespace }, () => k.core.listNamespacedPod({ namespace: k.namespace, labelSelector }))
  return list.items.sort((a, b) => String(a.metadata?.creationTimestamp).localeCompare(String(b.metadata?.creationTimestamp)))
}

export async function readJob(k: KubeClients, name: string): Promise<V1Job> {
  return kubeCall(k, { verb: 'get', resource: 'jobs.batch', namespace: k.namespace, name }, () => k.batch.readNamespacedJob({ name, namespace: k.namespace }))
}

/** Deletes a Job and its pods (background propagation, as kubectl delete job). */
export async function deleteJob(k: KubeClients, name: string): Promise<void> {
  await kubeCall(k, { verb: 'delete', resource: 'jobs.batch', namespace: k.namespace, name }, () => k.batch.deleteNamespacedJob({ name, namespace: k.namespace, propagationPolicy: 'Background' }))
}

export interface WaitResult {
  job: string
  state: JobState | 'timeout'
  durationSeconds?: number
  reason?: string
  message?: string
  problems: PodProblem[]
}

export const pollInterval = () => Number(process.env.SEEDOPS_KUBE_POLL_MS ?? 1000)

/** Polls the job until it completes or fails, a pod problem makes waiting pointless, or the timeout passes. */
export async function waitForJob(k: KubeClients, name: string, opts: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<WaitResult> {
  const deadline = opts.timeoutMs ? Date.now() + opts.timeoutMs : Infinity
  for (;;) {
    const job = await readJob(k, name)
    const state = jobState(job)
    if (state === 'succeeded' || state === 'failed') {
      const pods = await jobPods(k, job)
      const failed = job.status?.conditions?.find((c) => c.type === 'Failed' && c.status === 'True')
      const start = job.status?.startTime ? new Date(job.status.startTime).getTime() : undefined
      const end = job.status?.completionTime ? new Date(job.status.completionTime).getTime() : Date.now()
      return { job: name, state, durationSeconds: start ? Math.round((end - start) / 1000) : undefined, reason: failed?.reason, message: failed?.message, problems: podProblems(pods) }
    }
    const problems = podProblems(await jobPods(k, job))
    if (problems.some((p) => p.fatal)) return { job: name, state, problems }
    if (Date.now() >= deadline || opts.signal?.aborted) return { job: name, state: 'timeout', problems }
    await new Promise((r) => setTimeout(r, Math.min(pollInterval(), Math.max(0, deadline - Date.now()))))
  }
}

/** The error for a job that did not succeed, with the cause and the next command. */
export function jobFailure(w: WaitResult, namespace: string): SeedopsError {
  const ns = ` -n ${namespace}`
  const pull = w.problems.find((p) => p.reason === 'ImagePullBackOff' || p.reason === 'ErrImagePull' || p.reason === 'InvalidImageName')
  if (pull) {
    const unauthorized = /unauthorized|denied|authorization failed|401|403/i.test(pull.message ?? '')
    return new SeedopsError(`job ${w.job} cannot start: image ${pull.image} ${unauthorized ? 'cannot be pulled (registry refused the credentials)' : 'was not found'}`, {
      code: 'JOB_IMAGE_PULL',
      suggestions: unauthorized ? ['Add an imagePullSecret for the registry to the ServiceAccount seedops-runner', 'Then: seedops doctor'] : ['Pin an image that exists: seedops deploy --image <registry>/seedops:<tag>', 'See what runs: seedops doctor'],
      data: { ...w },
    })
  }
  const sidecar = w.problems.find((p) => p.reason === 'SidecarStillRunning')
  if (sidecar) {
    return new SeedopsError(`job ${w.job} will never complete: ${sidecar.message}`, {
      code: 'JOB_SIDECAR_RUNNING',
      suggestions: ['Run the sidecar as a native sidecar (an initContainer with restartPolicy: Always), see k8s/overlays/db-proxy', `Then delete the stuck job: kubectl delete job ${w.job}${ns}`],
      data: { ...w },
    })
  }
  if (w.state === 'timeout') {
    return new SeedopsError(`job ${w.job} did not finish within the timeout (still ${w.problems.length ? 'failing' : 'running'})`, {
      code: 'JOB_TIMEOUT',
      suggestions: [`Follow it: seedops jobs logs ${w.job} -f${ns}`, 'Or wait longer: --timeout 2h'],
      data: { ...w },
    })
  }
  const oom = w.problems.find((p) => p.reason === 'OOMKilled')
  if (oom) {
    return new SeedopsError(`job ${w.job} failed: container ${oom.container} was OOMKilled (out of memory)`, {
      code: 'JOB_OOMKILLED',
      suggestions: ['Raise resources.limits.memory of the CronJob in k8s/ and redeploy: seedops deploy', `See the last lines: seedops jobs logs ${w.job}${ns}`],
      data: { ...w },
    })
  }
  const exit = w.problems.find((p) => p.exitCode !== undefined)
  return new SeedopsError(`job ${w.job} failed${w.reason ? ` (${w.reason})` : ''}${exit ? `: ${exit.container} exited ${exit.exitCode}` : ''}`, {
    code: 'JOB_FAILED',
    suggestions: [`Read its logs: seedops jobs logs ${w.job}${ns}`, 'Check the cluster side: seedops doctor'],
    data: { ...w },
  })
}

export interface JobRow {
  name: string
  cronjob?: string
  state: JobState
  completions: string
  manual: boolean
  startTime?: string
  completionTime?: string
  durationSeconds?: number
  reason?: string
  image?: string
}

export async function listJobs(k: KubeClients, opts: { failed?: boolean; cronjob?: string } = {}): Promise<JobRow[]> {
  const list = await kubeCall(k, { verb: 'list', resource: 'jobs.batch', namespace: k.namespace }, () => k.batch.listNamespacedJob({ namespace: k.namespace }))
  const rows = list.items.map((j): JobRow => {
    const owner = j.metadata?.ownerReferences?.find((o) => o.kind === 'CronJob')?.name
    const start = j.status?.startTime ? new Date(j.status.startTime) : undefined
    const end = j.status?.completionTime ? new Date(j.status.completionTime) : undefined
    const failed = j.status?.conditions?.find((c) => c.type === 'Failed' && c.status === 'True')
    return {
      name: j.metadata!.name!,
      cronjob: owner,
      state: jobState(j),
      completions: `${j.status?.succeeded ?? 0}/${j.spec?.completions ?? 1}`,
      manual: j.metadata?.annotations?.[MANUAL_ANNOTATION] === 'manual',
      startTime: start?.toISOString(),
      completionTime: end?.toISOString(),
      durationSeconds: start ? Math.round(((end ?? new Date()).getTime() - start.getTime()) / 1000) : undefined,
      reason: failed?.reason,
      image: j.spec?.template.spec?.containers?.[0]?.image,
    }
  })
  return rows
    .filter((r) => (!opts.failed || r.state === 'failed') && (!opts.cronjob || r.cronjob === opts.cronjob))
    .sort((a, b) => (b.startTime ?? '').localeCompare(a.startTime ?? '') || a.name.localeCompare(b.name))
}
