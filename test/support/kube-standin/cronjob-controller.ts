import { CronExpressionParser } from 'cron-parser'
import { applyDefaults } from './admission.js'
import { isoSeconds, type Clock } from './clock.js'
import { recordEvent } from './events.js'
import { clone } from './patch.js'
import { findResource } from './resources.js'
import { StatusError, type Store } from './store.js'

/**
 * The CronJob controller (kube-controller-manager's cronjob-controller v2), ported from
 * kubernetes/kubernetes pkg/controller/cronjob/cronjob_controllerv2.go (sync, syncCronJob,
 * cleanupFinishedJobs) and utils.go (mostRecentScheduleTime, nextScheduleTime, getJobFromTemplate2),
 * driven by the stand-in's Clock. It runs only once started.
 */
const CRONJOB = findResource('batch', 'v1', 'cronjobs')!
const JOB = findResource('batch', 'v1', 'jobs')!
const COMPONENT = 'cronjob-controller'
export const SCHEDULED_ANNOTATION = 'batch.kubernetes.io/cronjob-scheduled-timestamp'

type Missed = 'none' | 'few' | 'many'

interface Schedule {
  /** The first fire time strictly after `t` (robfig/cron's Schedule.Next). */
  next(t: Date): Date
}

function parseSchedule(cj: any): Schedule {
  const tz = cj.spec.timeZone ?? 'UTC'
  // Parse once to fail early on a bad expression or zone, as cron.ParseStandard(formatSchedule(...)) does.
  CronExpressionParser.parse(cj.spec.schedule, { tz, currentDate: new Date(0) })
  return { next: (t) => CronExpressionParser.parse(cj.spec.schedule, { tz, currentDate: t }).next().toDate() }
}

function validZone(tz: string): string | undefined {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz })
    return undefined
  } catch (e) {
    return (e as Error).message
  }
}

/**
 * utils.go mostRecentScheduleTime: the schedule time to act on (the latest one due, however many
 * were missed: at most one catch-up run), and how many were missed ("many" is more than 100).
 */
export function mostRecentScheduleTime(cj: any, now: Date, sched: Schedule, includeStartingDeadline: boolean): { earliest: Date; mostRecent?: Date; missed: Missed } {
  let earliest = new Date(cj.status?.lastScheduleTime ?? cj.metadata.creationTimestamp)
  const deadline = cj.spec.startingDeadlineSeconds
  if (includeStartingDeadline && deadline !== undefined && deadline !== null) {
    const d = new Date(now.getTime() - deadline * 1000)
    if (d > earliest) earliest = d
  }
  const t1 = sched.next(earliest)
  const t2 = sched.next(t1)
  if (now < t1) return { earliest, missed: 'none' }
  if (now < t2) return { earliest, mostRecent: t1, missed: 'none' }
  const between = Math.round((t2.getTime() - t1.getTime()) / 1000)
  if (between < 1) throw new Error('time difference between two schedules is less than 1 second')
  // A rough count, as the real controller makes it: how many intervals fit between t1 and now.
  const count = Math.floor((now.getTime() - t1.getTime()) / 1000 / between) + 1
  let mostRecent: Date | undefined
  for (let t = sched.next(new Date(t1.getTime() + (count - 2) * between * 1000)); t <= now; t = sched.next(t)) mostRecent = t
  return { earliest, mostRecent, missed: count > 100 ? 'many' : count > 0 ? 'few' : 'none' }
}

/** utils.go nextScheduleTimeDuration: when to sync next (the real one adds 100 ms for NTP skew; the fake clock needs none). */
function nextWakeup(cj: any, now: Date, sched: Schedule): Date {
  let base: Date
  try {
    const r = mostRecentScheduleTime(cj, now, sched, false)
    base = r.mostRecent ?? (r.missed === 'none' ? r.earliest : now)
  } catch {
    base = now
  }
  return sched.next(base)
}

const isFinished = (j: any): 'Complete' | 'Failed' | undefined => j.status?.conditions?.find((c: any) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True')?.type
const controllerOf = (o: any) => (o.metadata.ownerReferences ?? []).find((r: any) => r.controller)

/** utils.go getJobFromTemplate2's annotation value: the scheduled time in the CronJob's zone, RFC 3339 (Go writes Z for a zero offset). */
export function scheduledTimestamp(t: Date, tz: string | undefined): string {
  if (!tz) return isoSeconds(t)
  const parts = Object.fromEntries(new Intl.DateTimeFormat('en-US', { timeZone: tz, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', timeZoneName: 'longOffset' }).formatToParts(t).map((p) => [p.type, p.value]))
  const off = parts.timeZoneName === 'GMT' ? 'Z' : parts.timeZoneName.replace('GMT', '')
  return `${parts.year}-${parts.month}-${parts.day}T${parts.hour}:${parts.minute}:${parts.second}${off === '+00:00' ? 'Z' : off}`
}

export class CronJobController {
  private unsubs: (() => void)[] = []
  private wakeups = new Map<string, () => void>()
  private queue = new Set<string>()
  private draining = false
  private running = false

  constructor(
    private store: Store,
    private clock: Clock,
  ) {}

  get started(): boolean {
    return this.running
  }

  /** Watches CronJobs and their Jobs and syncs every CronJob now. */
  start(): this {
    if (this.running) return this
    this.running = true
    this.unsubs.push(
      this.store.subscribe((e) => {
        if (e.rt === CRONJOB) {
          if (e.type === 'DELETED') this.cancel(key(e.object))
          else this.enqueue(key(e.object))
        } else if (e.rt === JOB) {
          // cronjob_controllerv2.go addJob/updateJob/deleteJob: a Job wakes the CronJob that controls it.
          const ref = controllerOf(e.object)
          if (ref?.kind === 'CronJob') this.enqueue(`${e.object.metadata.namespace}/${ref.name}`)
        }
      }),
      this.clock.onJump(() => this.syncAll()),
    )
    this.syncAll()
    return this
  }

  stop(): void {
    this.running = false
    for (const u of this.unsubs) u()
    this.unsubs = []
    for (const c of this.wakeups.values()) c()
    this.wakeups.clear()
    this.queue.clear()
  }

  private syncAll() {
    for (const cj of this.store.list(CRONJOB)) this.queue.add(key(cj))
    this.drain()
  }

  private enqueue(k: string) {
    this.queue.add(k)
    // Store events arrive inside another write; sync after it, not in the middle of it.
    if (!this.draining) queueMicrotask(() => this.drain())
  }

  private cancel(k: string) {
    this.wakeups.get(k)?.()
    this.wakeups.delete(k)
  }

  private drain() {
    if (this.draining || !this.running) return
    this.draining = true
    try {
      // Each sync converges (a no-op status write emits nothing); the bound only guards against a bug looping.
      for (let i = 0; this.queue.size && i < 1000; i++) {
        const k = this.queue.values().next().value!
        this.queue.delete(k)
        this.sync(k)
      }
    } finally {
      this.draining = false
    }
  }

  /** cronjob_controllerv2.go sync: cleanup, then syncCronJob, one status write, requeue at the next schedule. */
  private sync(k: string) {
    const [ns, name] = k.split('/')
    const cj = this.store.get(CRONJOB, ns, name)
    this.cancel(k)
    if (!cj) return
    // getJobsToBeReconciled: every Job whose controllerRef names this CronJob.
    const jobs = this.store.list(JOB, ns).filter((j) => controllerOf(j)?.name === name && controllerOf(j)?.kind === 'CronJob')
    const copy = clone(cj)
    copy.status ??= {}
    const cleaned = this.cleanupFinishedJobs(copy, jobs)
    const { requeueAt, changed } = this.syncCronJob(copy, jobs)
    if (cleaned || changed) {
      if (copy.status.active && !copy.status.active.length) delete copy.status.active
      const latest = this.store.get(CRONJOB, ns, name)
      if (latest) this.store.update(CRONJOB, { ...latest, status: copy.status })
    }
    if (requeueAt && this.running) this.wakeups.set(k, this.clock.at(requeueAt, () => (this.queue.add(k), this.drain())))
  }

  private event(cj: any, type: 'Normal' | 'Warning', reason: string, message: string) {
    recordEvent(this.store, this.clock, cj, type, reason, message, COMPONENT)
  }

  private syncCronJob(cj: any, jobs: any[]): { requeueAt?: Date; changed: boolean } {
    const now = this.clock.now()
    let changed = false
    const active = () => (cj.status.active ??= []) as any[]
    const inActive = (uid: string) => active().some((a) => a.uid === uid)
    const dropActive = (uid: string) => (cj.status.active = active().filter((a) => a.uid !== uid))
    for (const j of jobs) {
      const found = inActive(j.metadata.uid)
      const finished = isFinished(j)
      if (!found && !finished) {
        this.event(cj, 'Warning', 'UnexpectedJob', `Saw a job that the controller did not create or forgot: ${j.metadata.name}`)
      } else if (found && finished) {
        dropActive(j.metadata.uid)
        this.event(cj, 'Normal', 'SawCompletedJob', `Saw completed job: ${j.metadata.name}, status: ${finished}`)
        changed = true
      } else if (finished === 'Complete' && j.status?.completionTime) {
        // A finished Job outside the active list: its completion moves lastSuccessfulTime forward.
        if (!cj.status.lastSuccessfulTime || new Date(j.status.completionTime) > new Date(cj.status.lastSuccessfulTime)) {
          cj.status.lastSuccessfulTime = j.status.completionTime
          changed = true
        }
      }
    }
    // An active reference whose Job is gone: MissingJob.
    for (const a of [...active()]) {
      if (jobs.some((j) => j.metadata.uid === a.uid) || this.store.get(JOB, a.namespace, a.name)) continue
      this.event(cj, 'Normal', 'MissingJob', `Active job went missing: ${a.name}`)
      dropActive(a.uid)
      changed = true
    }
    if (cj.metadata.deletionTimestamp) return { changed }
    if (cj.spec.timeZone) {
      const err = validZone(cj.spec.timeZone)
      if (err) {
        this.event(cj, 'Warning', 'UnknownTimeZone', `invalid timeZone: "${cj.spec.timeZone}": ${err}`)
        return { changed }
      }
    }
    if (cj.spec.suspend) return { changed }
    let sched: Schedule
    try {
      sched = parseSchedule(cj)
    } catch (e) {
      this.event(cj, 'Warning', 'UnparseableSchedule', `unparseable schedule: "${cj.spec.schedule}" : ${(e as Error).message}`)
      return { changed }
    }
    let scheduled: Date | undefined
    try {
      const r = mostRecentScheduleTime(cj, now, sched, true)
      scheduled = r.mostRecent
      // utils.go nextScheduleTime: too many missed is a warning; the most recent one still runs.
      if (scheduled && r.missed === 'many') this.event(cj, 'Warning', 'TooManyMissedTimes', 'too many missed start times. Set or decrease .spec.startingDeadlineSeconds or check clock skew')
    } catch (e) {
      this.event(cj, 'Warning', 'InvalidSchedule', `invalid schedule: ${cj.spec.schedule} : ${(e as Error).message}`)
      return { changed }
    }
    const requeueAt = () => nextWakeup(cj, now, sched)
    if (!scheduled) return { requeueAt: requeueAt(), changed }
    const deadline = cj.spec.startingDeadlineSeconds
    if (deadline !== undefined && deadline !== null && scheduled.getTime() + deadline * 1000 < now.getTime()) {
      this.event(cj, 'Warning', 'MissSchedule', `Missed scheduled time to start a job: ${rfc1123z(scheduled)}`)
      return { requeueAt: requeueAt(), changed }
    }
    const jobName = `${cj.metadata.name}-${Math.floor(scheduled.getTime() / 60_000)}`
    if (active().some((a) => a.name === jobName) || (cj.status.lastScheduleTime && new Date(cj.status.lastScheduleTime).getTime() === scheduled.getTime())) {
      return { requeueAt: requeueAt(), changed }
    }
    if (cj.spec.concurrencyPolicy === 'Forbid' && active().length) {
      this.event(cj, 'Normal', 'JobAlreadyActive', 'Not starting job because prior execution is running and concurrency policy is Forbid')
      return { requeueAt: requeueAt(), changed }
    }
    if (cj.spec.concurrencyPolicy === 'Replace') {
      for (const a of [...active()]) {
        const j = this.store.get(JOB, a.namespace, a.name)
        if (j) this.deleteJob(cj, j)
        dropActive(a.uid)
        changed = true
      }
    }
    let job: any
    try {
      job = this.store.create(JOB, this.jobFromTemplate(cj, scheduled), {
        prepare: (o) => {
          applyDefaults(JOB, o, o.metadata.uid)
          o.status ??= {}
        },
      })
      this.event(cj, 'Normal', 'SuccessfulCreate', `Created job ${job.metadata.name}`)
    } catch (e) {
      if (!(e instanceof StatusError && e.code === 409)) {
        this.event(cj, 'Warning', 'FailedCreate', `Error creating job: ${(e as Error).message}`)
        return { changed }
      }
      // Made before but not recorded: adopt it when it is ours, else leave it to whoever made it.
      job = this.store.get(JOB, cj.metadata.namespace, jobName)
      if (!job || controllerOf(job)?.uid !== cj.metadata.uid || inActive(job.metadata.uid)) return { changed }
    }
    active().push({ kind: 'Job', namespace: job.metadata.namespace, name: job.metadata.name, uid: job.metadata.uid, apiVersion: 'batch/v1', resourceVersion: job.metadata.resourceVersion })
    cj.status.lastScheduleTime = isoSeconds(scheduled)
    return { requeueAt: requeueAt(), changed: true }
  }

  /** utils.go getJobFromTemplate2: template labels and annotations, the scheduled-time annotation, a controller reference. */
  private jobFromTemplate(cj: any, scheduled: Date) {
    const tpl = cj.spec.jobTemplate ?? {}
    return {
      apiVersion: 'batch/v1',
      kind: 'Job',
      metadata: {
        name: `${cj.metadata.name}-${Math.floor(scheduled.getTime() / 60_000)}`,
        namespace: cj.metadata.namespace,
        labels: { ...(tpl.metadata?.labels ?? {}) },
        annotations: { ...(tpl.metadata?.annotations ?? {}), [SCHEDULED_ANNOTATION]: scheduledTimestamp(scheduled, cj.spec.timeZone) },
        ownerReferences: [{ apiVersion: 'batch/v1', kind: 'CronJob', name: cj.metadata.name, uid: cj.metadata.uid, controller: true, blockOwnerDeletion: true }],
      },
      spec: clone(tpl.spec ?? {}),
    }
  }

  /** cleanupFinishedJobs/removeOldestJobs: per outcome, delete the oldest finished Jobs (by startTime, then name) beyond the limit. */
  private cleanupFinishedJobs(cj: any, jobs: any[]): boolean {
    let changed = false
    const prune = (list: any[], limit: number | undefined) => {
      if (limit === undefined || limit === null || list.length <= limit) return
      const sorted = [...list].sort(byStartTime)
      for (const j of sorted.slice(0, list.length - limit)) {
        this.deleteJob(cj, j)
        changed = true
      }
    }
    prune(
      jobs.filter((j) => isFinished(j) === 'Complete'),
      cj.spec.successfulJobsHistoryLimit,
    )
    prune(
      jobs.filter((j) => isFinished(j) === 'Failed'),
      cj.spec.failedJobsHistoryLimit,
    )
    return changed
  }

  /** deleteJob: the Job (its pods follow by garbage collection) and its active reference. */
  private deleteJob(cj: any, job: any) {
    try {
      this.store.delete(JOB, job.metadata.namespace, job.metadata.name)
    } catch (e) {
      this.event(cj, 'Warning', 'FailedDelete', `Deleted job: ${(e as Error).message}`)
      return
    }
    cj.status.active = (cj.status.active ?? []).filter((a: any) => a.uid !== job.metadata.uid)
    this.event(cj, 'Normal', 'SuccessfulDelete', `Deleted job ${job.metadata.name}`)
  }
}

const key = (o: any) => `${o.metadata.namespace}/${o.metadata.name}`

/** utils.go byJobStartTime: Jobs without a startTime last, ties by name. */
function byStartTime(a: any, b: any): number {
  const sa = a.status?.startTime
  const sb = b.status?.startTime
  if (!sa && sb) return 1
  if (sa && !sb) return -1
  if (sa === sb || (sa && sb && Date.parse(sa) === Date.parse(sb))) return a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0
  return Date.parse(sa) - Date.parse(sb)
}

/** Go's time.RFC1123Z in UTC: `Mon, 02 Jan 2006 15:04:05 +0000`. */
function rfc1123z(t: Date): string {
  return t.toUTCString().replace('GMT', '+0000')
}
