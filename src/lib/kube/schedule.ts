import { PatchStrategy, setHeaderOptions, type V1CronJob } from '@kubernetes/client-node'
import { CronExpressionParser } from 'cron-parser'
import { usageError } from '../errors/index.js'
import type { KubeClients } from './client.js'
import { kubeCall, withConflictRetry } from './errors.js'
import { expectedCronJobs } from './expected.js'

/** CronJob schedules: read, validate (as the CronJob controller accepts them), patch, suspend/resume. */
export interface ScheduleInfo {
  name: string
  schedule: string
  timeZone: string
  suspend: boolean
  lastScheduleTime?: string
  lastSuccessfulTime?: string
  /** Next three runs, UTC ISO (empty when suspended). */
  nextRuns: string[]
}

const MACROS: Record<string, string> = {
  '@yearly': '0 0 1 1 *',
  '@annually': '0 0 1 1 *',
  '@monthly': '0 0 1 * *',
  '@weekly': '0 0 * * 0',
  '@daily': '0 0 * * *',
  '@midnight': '0 0 * * *',
  '@hourly': '0 * * * *',
}

/** Friendly names accepted by `schedule set`, besides cron and the @-macros. */
export const PRESETS: Record<string, string> = { hourly: '@hourly', daily: '@daily', weekly: '@weekly', monthly: '@monthly' }

/**
 * Resolves what the user typed to the schedule string stored on the CronJob: a 5-field cron
 * expression, an @-macro, a preset name, or `default` (the stage's schedule from k8s/).
 * Throws a usage error naming the problem for anything the CronJob controller would reject.
 */
export function resolveSchedule(input: string, cronjob?: string): string {
  const s = input.trim()
  if (s === 'default') {
    const exp = expectedCronJobs().find((c) => c.name === cronjob)
    if (!exp) throw usageError(`no default schedule for ${cronjob}: it is not one of ${expectedCronJobs().map((c) => c.name).join(', ')}`)
    return exp.schedule
  }
  if (PRESETS[s]) return PRESETS[s]
  if (s.startsWith('@')) {
    if (!MACROS[s]) throw usageError(`"${s}" is not a schedule macro`, [`Use one of ${Object.keys(MACROS).join(', ')}`])
    return s
  }
  if (/^(TZ|CRON_TZ)=/.test(s)) throw usageError('time zones go in the CronJob\'s timeZone field, not in the schedule', ['Schedules are interpreted in the CronJob\'s time zone (Etc/UTC in k8s/)'])
  const fields = s.split(/\s+/)
  if (fields.length !== 5) throw usageError(`"${s}" is not a cron schedule: expected 5 fields (minute hour day-of-month month day-of-week), found ${fields.length}`, ['Example: "15 1 * * *" (01:15 daily), "0 4 * * 1" (Mondays 04:00), or @daily, weekly, default'])
  try {
    CronExpressionParser.parse(s, { tz: 'UTC' })
  } catch (e) {
    throw usageError(`"${s}" is not a valid cron schedule: ${(e as Error).message}`, ['Example: "15 1 * * *" (01:15 daily)'])
  }
  return fields.join(' ')
}

export function nextRuns(schedule: string, timeZone = 'Etc/UTC', n = 3, from = new Date()): string[] {
  const expr = MACROS[schedule] ?? schedule
  const it = CronExpressionParser.parse(expr, { tz: timeZone, currentDate: from })
  return it.take(n).map((d) => d.toDate().toISOString())
}

function infoOf(cj: V1CronJob, now?: Date): ScheduleInfo {
  const schedule = cj.spec!.schedule
  const timeZone = cj.spec!.timeZone ?? 'Etc/UTC'
  const suspend = Boolean(cj.spec!.suspend)
  return {
    name: cj.metadata!.name!,
    schedule,
    timeZone,
    suspend,
    lastScheduleTime: cj.status?.lastScheduleTime ? new Date(cj.status.lastScheduleTime).toISOString() : undefined,
    lastSuccessfulTime: cj.status?.lastSuccessfulTime ? new Date(cj.status.lastSuccessfulTime).toISOString() : undefined,
    nextRuns: suspend ? [] : nextRuns(schedule, timeZone, 3, now),
  }
}

export async function getSchedules(k: KubeClients, name?: string, now?: Date): Promise<ScheduleInfo[]> {
  if (name) {
    const cj = await kubeCall(k, { verb: 'get', resource: 'cronjobs.batch', namespace: k.namespace, name }, () => k.batch.readNamespacedCronJob({ name, namespace: k.namespace }))
    return [infoOf(cj, now)]
  }
  const list = await kubeCall(k, { verb: 'list', resource: 'cronjobs.batch', namespace: k.namespace }, () => k.batch.listNamespacedCronJob({ namespace: k.namespace }))
  return list.items.map((cj) => infoOf(cj, now)).sort((a, b) => a.name.localeCompare(b.name))
}

export interface ScheduleChange {
  name: string
  before: ScheduleInfo
  after: ScheduleInfo
  changed: boolean
  dryRun: boolean
}

/** Prints what schedule set/suspend/resume changed (before, after, the next runs) on stdout. */
export function renderChange(c: ScheduleChange): void {
  const fmt = (i: ScheduleChange['before']) => `${i.schedule} (${i.timeZone})${i.suspend ? ' suspended' : ''}`
  if (!c.changed) {
    process.stdout.write(`${c.name}: unchanged, ${fmt(c.before)}\n`)
    return
  }
  process.stdout.write(`${c.name}${c.dryRun ? ' (dry run)' : ''}\n  before: ${fmt(c.before)}\n  after:  ${fmt(c.after)}\n`)
  if (c.after.nextRuns.length) process.stdout.write(`  next runs (UTC): ${c.after.nextRuns.join(', ')}\n`)
}

/** Merge patch of `spec.schedule` / `spec.suspend`, guarded by the resourceVersion read (409 → re-read and retry). */
export async function patchCronJob(k: KubeClients, name: string, change: { schedule?: string; suspend?: boolean }, opts: { dryRun?: boolean; now?: Date } = {}): Promise<ScheduleChange> {
  // What the first read saw: when a patch went through but its answer was lost (500, timeout), the
  // retried patch meets 409 and the re-read shows the change made; it is still reported as a change.
  let first: ScheduleInfo | undefined
  return withConflictRetry(async () => {
    const op = { verb: 'get' as const, resource: 'cronjobs.batch', namespace: k.namespace, name }
    const cur = await kubeCall(k, op, () => k.batch.readNamespacedCronJob({ name, namespace: k.namespace }))
    const now = infoOf(cur, opts.now)
    first ??= now
    const before = now
    const spec: Record<string, unknown> = {}
    if (change.schedule !== undefined && change.schedule !== before.schedule) spec.schedule = change.schedule
    if (change.suspend !== undefined && change.suspend !== before.suspend) spec.suspend = change.suspend
    if (!Object.keys(spec).length) {
      const changed = !opts.dryRun && (first.schedule !== now.schedule || first.suspend !== now.suspend)
      return { name, before: changed ? first : before, after: before, changed, dryRun: Boolean(opts.dryRun) }
    }
    const body = { metadata: { resourceVersion: cur.metadata!.resourceVersion }, spec }
    const updated = await kubeCall(k, { ...op, verb: 'patch' }, () =>
      k.batch.patchNamespacedCronJob({ name, namespace: k.namespace, body, fieldManager: 'seedops', dryRun: opts.dryRun ? 'All' : undefined }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch)),
    )
    return { name, before, after: infoOf(updated, opts.now), changed: true, dryRun: Boolean(opts.dryRun) }
  })
}
