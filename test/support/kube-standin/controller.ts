import { Clock } from './clock.js'
import { recordEvent } from './events.js'
import { clone } from './patch.js'
import { findResource } from './resources.js'
import type { Store } from './store.js'
import type { LogStore } from './logs.js'

/**
 * A job controller and kubelet in one: turns Jobs into Pods and plays a scripted outcome for
 * each pod, updating pod and job status the way the real ones do (phases, container states,
 * `Complete`/`Failed` conditions, backoffLimit retries, Indexed completions) and writing logs.
 */
export type Outcome =
  | { kind: 'succeed' }
  | { kind: 'fail'; exitCode?: number }
  | { kind: 'oom' }
  | { kind: 'image-pull'; reason?: 'not-found' | 'unauthorized' }
  /** The main container exits 0; a second (non-native) sidecar container keeps running, so the job never completes. */
  | { kind: 'sidecar-never-exits' }
  | { kind: 'hang' }

export interface Script {
  outcome: Outcome
  logs?: string[]
  /** Pending → Running after this long. */
  startDelayMs?: number
  lineDelayMs?: number
}

export type ScriptFn = (job: any, pod: { index?: number; attempt: number }) => Script

const POD = findResource('', 'v1', 'pods')!
const JOB = findResource('batch', 'v1', 'jobs')!

export class JobController {
  script: ScriptFn = (job) => ({ outcome: { kind: 'succeed' }, logs: [`${job.metadata.name}: done`] })
  private started = new Set<string>()
  private timers = new Set<NodeJS.Timeout>()
  private unsub: () => void
  private stopped = false

  /** Timestamps (startTime, completionTime, pod states) come from the stand-in's clock; pod timing is real. */
  constructor(
    private store: Store,
    private logs: LogStore,
    private clock: Clock = new Clock(),
  ) {
    this.unsub = store.subscribe((e) => {
      if (e.rt !== JOB || e.type === 'DELETED') return
      const job = e.object
      // A job seeded with a startTime ran before the stand-in saw it (a fixture of past runs): leave it.
      if (job.spec.suspend || this.started.has(job.metadata.uid) || (e.type === 'ADDED' && job.status?.startTime)) return
      this.started.add(job.metadata.uid)
      this.later(0, () => this.startJob(job.metadata.namespace, job.metadata.name))
    })
  }

  stop(): void {
    this.stopped = true
    this.unsub()
    for (const t of this.timers) clearTimeout(t)
  }

  private later(ms: number, fn: () => void) {
    if (this.stopped) return
    const t = setTimeout(() => {
      this.timers.delete(t)
      if (!this.stopped) fn()
    }, ms)
    this.timers.add(t)
  }

  event(_ns: string, involved: any, type: 'Normal' | 'Warning', reason: string, message: string, component = 'job-controller') {
    recordEvent(this.store, this.clock, involved, type, reason, message, component)
  }

  private updateJob(ns: string, name: string, fn: (job: any) => void) {
    const job = this.store.get(JOB, ns, name)
    if (!job) return undefined
    fn(job)
    return this.store.update(JOB, job)
  }

  private startJob(ns: string, name: string) {
    const job = this.store.get(JOB, ns, name)
    if (!job) return
    this.updateJob(ns, name, (j) => {
      j.status = { ...(j.status ?? {}), startTime: this.clock.nowIso(), active: 0, ready: 0, terminating: 0, uncountedTerminatedPods: {} }
    })
    if (job.spec.completionMode === 'Indexed') {
      const n = job.spec.completions
      const parallel = Math.min(job.spec.parallelism ?? 1, n)
      let next = 0
      const launch = () => {
        if (next < n) this.runPod(ns, name, next++, 0, launch)
      }
      for (let i = 0; i < parallel; i++) launch()
    } else {
      this.runPod(ns, name, undefined, 0)
    }
  }

  private runPod(ns: string, jobName: string, index: number | undefined, attempt: number, onIndexDone?: () => void) {
    const job = this.store.get(JOB, ns, jobName)
    if (!job) return
    const script = this.script(job, { index, attempt })
    const tpl = clone(job.spec.template)
    const annotations = { ...(tpl.metadata?.annotations ?? {}) }
    const labels = { ...(tpl.metadata?.labels ?? {}) }
    if (index !== undefined) {
      annotations['batch.kubernetes.io/job-completion-index'] = String(index)
      labels['batch.kubernetes.io/job-completion-index'] = String(index)
      for (const c of tpl.spec.containers) c.env = [...(c.env ?? []), { name: 'JOB_COMPLETION_INDEX', valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: "metadata.labels['batch.kubernetes.io/job-completion-index']" } } }]
    }
    const regular: string[] = tpl.spec.containers.map((c: any) => c.name)
    const native: string[] = (tpl.spec.initContainers ?? []).filter((c: any) => c.restartPolicy === 'Always').map((c: any) => c.name)
    const plainInit: string[] = (tpl.spec.initContainers ?? []).filter((c: any) => c.restartPolicy !== 'Always').map((c: any) => c.name)
    const imageOf = (n: string) => [...tpl.spec.containers, ...(tpl.spec.initContainers ?? [])].find((c: any) => c.name === n)?.image
    const waiting = (n: string, reason = 'ContainerCreating', message?: string) => ({ name: n, image: imageOf(n), imageID: '', ready: false, restartCount: 0, started: false, state: { waiting: { reason, ...(message ? { message } : {}) } }, lastState: {} })
    const pod = this.store.create(POD, {
      metadata: {
        generateName: `${jobName}-${index !== undefined ? `${index}-` : ''}`,
        namespace: ns,
        labels,
        annotations,
        ownerReferences: [{ apiVersion: 'batch/v1', kind: 'Job', name: jobName, uid: job.metadata.uid, controller: true, blockOwnerDeletion: true }],
        finalizers: ['batch.kubernetes.io/job-tracking'],
      },
      spec: { ...tpl.spec, nodeName: 'standin-node', serviceAccountName: tpl.spec.serviceAccountName ?? 'default' },
      status: {
        phase: 'Pending',
        conditions: [{ type: 'PodScheduled', status: 'True', lastTransitionTime: this.clock.nowIso() }],
        hostIP: '10.0.0.10',
        qosClass: 'Burstable',
        startTime: this.clock.nowIso(),
        containerStatuses: regular.map((n) => waiting(n)),
        ...(native.length || plainInit.length ? { initContainerStatuses: [...plainInit, ...native].map((n) => waiting(n, 'PodInitializing')) } : {}),
      },
    })
    const podName = pod.metadata.name
    this.event(ns, job, 'Normal', 'SuccessfulCreate', `Created pod: ${podName}`)
    this.updateJob(ns, jobName, (j) => (j.status.active = (j.status.active ?? 0) + 1))
    const setPod = (fn: (p: any) => void) => {
      const p = this.store.get(POD, ns, podName)
      if (!p) return false
      fn(p)
      this.store.update(POD, p)
      return true
    }
    const setContainer = (p: any, n: string, state: any, extra: any = {}) => {
      const list = native.includes(n) || plainInit.includes(n) ? p.status.initContainerStatuses : p.status.containerStatuses
      const s = list.find((c: any) => c.name === n)
      s.state = state
      Object.assign(s, extra)
    }
    const start = script.startDelayMs ?? 30
    const lineDelay = script.lineDelayMs ?? 10
    const outcome = script.outcome
    if (outcome.kind === 'image-pull') {
      const image = imageOf(regular[0])
      const { why, errImagePull } = pullFailure(image, outcome.reason)
      this.later(start, () => {
        setPod((p) => setContainer(p, regular[0], { waiting: { reason: 'ErrImagePull', message: errImagePull } }))
        this.event(ns, pod, 'Normal', 'Pulling', `Pulling image "${image}"`, 'kubelet')
        this.event(ns, pod, 'Warning', 'Failed', `Failed to pull image "${image}": ${why}`, 'kubelet')
        this.later(start, () => {
          setPod((p) => setContainer(p, regular[0], { waiting: { reason: 'ImagePullBackOff', message: `Back-off pulling image "${image}"` } }))
          this.event(ns, pod, 'Normal', 'BackOff', `Back-off pulling image "${image}"`, 'kubelet')
        })
      })
      return
    }
    this.later(start, () => {
      const startedAt = this.clock.nowIso()
      const ok = setPod((p) => {
        p.status.phase = 'Running'
        p.status.podIP = '10.244.0.' + (2 + Math.floor(Math.random() * 200))
        for (const n of plainInit) setContainer(p, n, { terminated: { exitCode: 0, reason: 'Completed', startedAt, finishedAt: startedAt } }, { ready: false, started: false })
        for (const n of native) setContainer(p, n, { running: { startedAt } }, { ready: true, started: true })
        for (const n of regular) setContainer(p, n, { running: { startedAt } }, { ready: true, started: true })
        p.status.conditions.push({ type: 'Initialized', status: 'True', lastTransitionTime: startedAt }, { type: 'Ready', status: 'True', lastTransitionTime: startedAt }, { type: 'ContainersReady', status: 'True', lastTransitionTime: startedAt })
      })
      if (!ok) return
      this.updateJob(ns, jobName, (j) => (j.status.ready = (j.status.ready ?? 0) + 1))
      for (const n of [...native, ...regular.slice(1)]) this.logs.append(ns, podName, n, `${n}: started`)
      for (const n of plainInit) this.logs.finish(ns, podName, n)
      const lines = script.logs ?? []
      let i = 0
      const step = () => {
        if (i < lines.length) {
          this.logs.append(ns, podName, regular[0], lines[i++])
          return this.later(lineDelay, step)
        }
        this.finishPod(ns, jobName, podName, outcome, regular, native, setPod, setContainer, index, attempt, onIndexDone)
      }
      this.later(lineDelay, step)
    })
  }

  private finishPod(
    ns: string,
    jobName: string,
    podName: string,
    outcome: Outcome,
    regular: string[],
    native: string[],
    setPod: (fn: (p: any) => void) => boolean,
    setContainer: (p: any, n: string, state: any, extra?: any) => void,
    index: number | undefined,
    attempt: number,
    onIndexDone?: () => void,
  ) {
    if (outcome.kind === 'hang') return
    const finishedAt = this.clock.nowIso()
    const term = (exitCode: number, reason: string) => ({ terminated: { exitCode, reason, startedAt: finishedAt, finishedAt } })
    if (outcome.kind === 'sidecar-never-exits') {
      setPod((p) => setContainer(p, regular[0], term(0, 'Completed'), { ready: false, started: false }))
      this.logs.finish(ns, podName, regular[0])
      return
    }
    const exitCode = outcome.kind === 'succeed' ? 0 : outcome.kind === 'oom' ? 137 : ((outcome as { exitCode?: number }).exitCode ?? 1)
    const reason = outcome.kind === 'succeed' ? 'Completed' : outcome.kind === 'oom' ? 'OOMKilled' : 'Error'
    const phase = exitCode === 0 ? 'Succeeded' : 'Failed'
    setPod((p) => {
      for (const n of regular) setContainer(p, n, term(n === regular[0] ? exitCode : 0, n === regular[0] ? reason : 'Completed'), { ready: false, started: false })
      for (const n of native) setContainer(p, n, term(0, 'Completed'), { ready: false, started: false })
      p.status.phase = phase
      p.status.conditions = p.status.conditions.map((c: any) => (c.type === 'Ready' || c.type === 'ContainersReady' ? { ...c, status: 'False', reason: 'PodCompleted' } : c))
      p.metadata.finalizers = []
    })
    for (const n of [...regular, ...native]) this.logs.finish(ns, podName, n)
    const job = this.updateJob(ns, jobName, (j) => {
      j.status.active = Math.max(0, (j.status.active ?? 1) - 1)
      j.status.ready = Math.max(0, (j.status.ready ?? 1) - 1)
      if (phase === 'Succeeded') {
        j.status.succeeded = (j.status.succeeded ?? 0) + 1
        if (index !== undefined) j.status.completedIndexes = compress([...expand(j.status.completedIndexes), index])
      } else j.status.failed = (j.status.failed ?? 0) + 1
    })
    if (!job) return
    const now = this.clock.nowIso()
    const completions = job.spec.completions ?? 1
    if ((job.status.succeeded ?? 0) >= completions) {
      this.updateJob(ns, jobName, (j) => {
        j.status.conditions = [
          { type: 'SuccessCriteriaMet', status: 'True', lastProbeTime: now, lastTransitionTime: now, reason: 'CompletionsReached', message: 'Reached expected number of succeeded pods' },
          { type: 'Complete', status: 'True', lastProbeTime: now, lastTransitionTime: now, reason: 'CompletionsReached', message: 'Reached expected number of succeeded pods' },
        ]
        j.status.completionTime = now
      })
      this.event(ns, job, 'Normal', 'Completed', 'Job completed')
      return
    }
    if (phase === 'Failed' && (job.status.failed ?? 0) > (job.spec.backoffLimit ?? 6)) {
      this.updateJob(ns, jobName, (j) => {
        j.status.conditions = [
          { type: 'FailureTarget', status: 'True', lastProbeTime: now, lastTransitionTime: now, reason: 'BackoffLimitExceeded', message: 'Job has reached the specified backoff limit' },
          { type: 'Failed', status: 'True', lastProbeTime: now, lastTransitionTime: now, reason: 'BackoffLimitExceeded', message: 'Job has reached the specified backoff limit' },
        ]
        j.status.active = 0
      })
      this.event(ns, job, 'Warning', 'BackoffLimitExceeded', 'Job has reached the specified backoff limit')
      return
    }
    if (phase === 'Failed') this.later(20, () => this.runPod(ns, jobName, index, attempt + 1, onIndexDone))
    else onIndexDone?.()
  }
}

/** What containerd and the kubelet say when an image cannot be pulled (the scripted `image-pull` outcome, for Jobs and Deployments alike). */
export function pullFailure(image: string, reason: 'not-found' | 'unauthorized' = 'not-found'): { why: string; errImagePull: string } {
  const why =
    reason === 'unauthorized'
      ? `failed to pull and unpack image "${image}": failed to resolve reference "${image}": pull access denied, repository does not exist or may require authorization: server message: insufficient_scope: authorization failed`
      : `failed to pull and unpack image "${image}": failed to resolve reference "${image}": ${image}: not found`
  return { why, errImagePull: `rpc error: code = ${reason === 'unauthorized' ? 'Unknown' : 'NotFound'} desc = ${why}` }
}

function expand(s: string | undefined): number[] {
  if (!s) return []
  return s.split(',').flatMap((part) => {
    const [a, b] = part.split('-').map(Number)
    return b === undefined ? [a] : Array.from({ length: b - a + 1 }, (_, i) => a + i)
  })
}

/** `0,1,2,4` → `0-2,4`, as `status.completedIndexes` reads. */
function compress(xs: number[]): string {
  const s = [...new Set(xs)].sort((a, b) => a - b)
  const out: string[] = []
  for (let i = 0; i < s.length; ) {
    let j = i
    while (j + 1 < s.length && s[j + 1] === s[j] + 1) j++
    out.push(j > i ? `${s[i]}-${s[j]}` : String(s[i]))
    i = j + 1
  }
  return out.join(',')
}
