import type { V1CronJob } from '@kubernetes/client-node'
import { CronExpressionParser } from 'cron-parser'
import type pg from 'pg'
import { EVENT_DRIVEN_STAGES, type ExpectedCronJob } from '../kube/expected.js'

/**
 * The stage run log (`seedops_stage_runs`) as its readers see it: the last run, the last
 * successful (real, not dry) run, the as-of of a stage, the latest failures, and how old a
 * success may be before it is stale — from each stage's CronJob schedule. Every read of the log
 * lives here; the runner (stages/runner.ts) writes it.
 */

type Queryable = Pick<pg.Pool, 'query'>

export interface StageRun {
  id: string
  stage: string
  status: 'running' | 'succeeded' | 'failed' | 'cancelled' | 'abandoned' | string
  /** YYYY-MM-DD, or null for a stage run without one. */
  asOf: string | null
  startedAt: Date
  finishedAt: Date | null
  dryRun: boolean
  params: Record<string, unknown>
  rows: Record<string, unknown> | null
  error: string | null
  host: string | null
  pid: number | null
}

const COLUMNS = `id::text AS id, stage, status, as_of::text AS as_of, started_at, finished_at, dry_run, params, rows, error, host, pid`

interface Row {
  id: string
  stage: string
  status: string
  as_of: string | null
  started_at: Date | string
  finished_at: Date | string | null
  dry_run: boolean
  params: Record<string, unknown> | null
  rows: Record<string, unknown> | null
  error: string | null
  host: string | null
  pid: number | null
}

const toRun = (r: Row): StageRun => ({
  id: r.id,
  stage: r.stage,
  status: r.status,
  asOf: r.as_of,
  startedAt: new Date(r.started_at),
  finishedAt: r.finished_at === null ? null : new Date(r.finished_at),
  dryRun: r.dry_run,
  params: r.params ?? {},
  rows: r.rows,
  error: r.error,
  host: r.host,
  pid: r.pid,
})

/** False before `seedops db migrate` has created the log (status says so instead of failing). */
export async function hasRunLog(q: Queryable): Promise<boolean> {
  const r = await q.query<{ t: string | null }>(`SELECT to_regclass('public.seedops_stage_runs')::text AS t`)
  return Boolean(r.rows[0]?.t)
}

/** The latest run of every stage, whatever its outcome (dry runs included: status shows them as such). */
export async function lastRuns(q: Queryable): Promise<Map<string, StageRun>> {
  const r = await q.query<Row>(`SELECT DISTINCT ON (stage) ${COLUMNS} FROM seedops_stage_runs ORDER BY stage, started_at DESC, id DESC`)
  return new Map(r.rows.map((x) => [x.stage, toRun(x)]))
}

export interface SuccessFilter {
  /** Only runs whose as-of lies in [from, to] (YYYY-MM-DD). */
  asOfFrom?: string
  asOfTo?: string
  /** Only runs whose params hold these values (compared as text); null: the key is absent or null. */
  params?: Record<string, string | null>
}

/** The last successful, real (not dry) run of a stage, optionally of an as-of range or with given params. */
export async function lastSuccess(q: Queryable, stage: string, f: SuccessFilter = {}): Promise<StageRun | undefined> {
  const where = [`stage = $1`, `status = 'succeeded'`, `NOT dry_run`, `finished_at IS NOT NULL`]
  const args: unknown[] = [stage]
  const arg = (v: unknown) => `$${args.push(v)}`
  if (f.asOfFrom) where.push(`as_of >= ${arg(f.asOfFrom)}::date`)
  if (f.asOfTo) where.push(`as_of <= ${arg(f.asOfTo)}::date`)
  for (const [k, v] of Object.entries(f.params ?? {})) {
    // Keys are parameters too; ::text picks jsonb's text-key operators (an untyped one is ambiguous with the array index).
    where.push(v === null ? `(params -> ${arg(k)}::text) IS NULL OR jsonb_typeof(params -> $${args.length}::text) = 'null'` : `params ->> ${arg(k)}::text = ${arg(v)}::text`)
  }
  const r = await q.query<Row>(`SELECT ${COLUMNS} FROM seedops_stage_runs WHERE ${where.map((w) => `(${w})`).join(' AND ')} ORDER BY finished_at DESC, id DESC LIMIT 1`, args)
  return r.rows[0] ? toRun(r.rows[0]) : undefined
}

/** The newest run of a stage still marked running under a lock scope (null: the stage's whole lock): who holds the lock. */
export async function runningRun(q: Queryable, stage: string, lockScope: string | null): Promise<StageRun | undefined> {
  const r = await q.query<Row>(
    `SELECT ${COLUMNS} FROM seedops_stage_runs WHERE stage = $1 AND status = 'running' AND params->>'lockScope' IS NOT DISTINCT FROM $2 ORDER BY started_at DESC, id DESC LIMIT 1`,
    [stage, lockScope],
  )
  return r.rows[0] ? toRun(r.rows[0]) : undefined
}

/** The last successful, real run of every stage. */
export async function lastSuccesses(q: Queryable): Promise<Map<string, StageRun>> {
  const r = await q.query<Row>(
    `SELECT DISTINCT ON (stage) ${COLUMNS} FROM seedops_stage_runs
      WHERE status = 'succeeded' AND NOT dry_run AND finished_at IS NOT NULL ORDER BY stage, finished_at DESC, id DESC`,
  )
  return new Map(r.rows.map((x) => [x.stage, toRun(x)]))
}

/** The latest failed or abandoned real run of every stage (doctor says when it is newer than the last success). */
export async function lastFailures(q: Queryable): Promise<Map<string, StageRun>> {
  const r = await q.query<Row>(
    `SELECT DISTINCT ON (stage) ${COLUMNS} FROM seedops_stage_runs
      WHERE status IN ('failed', 'abandoned') AND NOT dry_run ORDER BY stage, started_at DESC, id DESC`,
  )
  return new Map(r.rows.map((x) => [x.stage, toRun(x)]))
}

/** The as-of of a stage: that of its last successful real run, or undefined when it never succeeded. */
export async function stageAsOf(q: Queryable, stage: string): Promise<string | undefined> {
  return (await lastSuccess(q, stage))?.asOf ?? undefined
}

/** Hours since a run finished (one decimal), at `now`. */
export function ageHours(run: StageRun | undefined, now: Date): number | null {
  if (!run?.finishedAt) return null
  return Math.round(((now.getTime() - run.finishedAt.getTime()) / 3_600_000) * 10) / 10
}

// ---- cadence -------------------------------------------------------------------------------

export interface Cadence {
  stage: string
  schedule: string
  timeZone?: string
  /** Where the schedule was read: the deployed CronJob, or the k8s/ manifests seedops ships. */
  source: 'cluster' | 'manifests'
  /** The longest gap between two consecutive fires, in hours (over the next 8 days, or the next two fires beyond). */
  intervalHours: number
  /** intervalHours + grace: a last success older than this is stale. */
  maxAgeHours: number
  label: 'hourly' | 'daily' | 'weekly' | 'other'
}

const H = 3_600_000

/**
 * Grace on top of the longest gap between fires, so a run that starts on time and takes a while
 * is not stale: a twelfth of the gap for schedules up to daily (daily: 24 h + 2 h = 26 h, the limit
 * verify always used), at least 30 min (hourly: 1.5 h); one day beyond daily (weekly: 7 d + 1 d =
 * 192 h, the former weekly constant), because a weekly run may be sharded and slow.
 */
export function graceHours(intervalHours: number): number {
  return intervalHours <= 24 ? Math.max(0.5, intervalHours / 12) : 24
}

/**
 * The cadence of a cron schedule with cron-parser: the longest gap between consecutive fires from
 * `from` on (covering at least 8 days, so a weekday-only or weekly schedule shows its real gap),
 * evaluated in the CronJob's timeZone (UTC when none, as the CronJob controller does).
 */
export function cadenceOf(schedule: string, opts: { timeZone?: string; from?: Date; stage?: string; source?: Cadence['source'] } = {}): Cadence {
  const from = opts.from ?? new Date()
  const it = CronExpressionParser.parse(schedule.trim(), { tz: opts.timeZone ?? 'UTC', currentDate: from })
  const horizon = from.getTime() + 8 * 24 * H
  let prev = it.next().toDate().getTime()
  let maxGap = 0
  // Stop after the horizon and one more fire beyond it (a monthly schedule needs that one), or 2,000 fires (every minute).
  for (let i = 0; i < 2000; i++) {
    const t = it.next().toDate().getTime()
    maxGap = Math.max(maxGap, t - prev)
    prev = t
    if (t > horizon) break
  }
  const intervalHours = Math.round((maxGap / H) * 1000) / 1000
  const label = intervalHours <= 1 ? 'hourly' : intervalHours === 24 ? 'daily' : intervalHours === 168 ? 'weekly' : 'other'
  return {
    stage: opts.stage ?? '',
    schedule,
    ...(opts.timeZone ? { timeZone: opts.timeZone } : {}),
    source: opts.source ?? 'manifests',
    intervalHours,
    maxAgeHours: Math.round((intervalHours + graceHours(intervalHours)) * 1000) / 1000,
    label,
  }
}

/**
 * Each scheduled stage's cadence: from its deployed CronJob (label seedops.io/stage, else the
 * expected name) when `deployed` is given (the cluster was readable), else from the manifests.
 * Event-driven stages (update-theta) have none.
 */
export function stageCadences(expected: ExpectedCronJob[], deployed?: V1CronJob[], from = new Date()): Map<string, Cadence> {
  const out = new Map<string, Cadence>()
  for (const e of expected) {
    if ((EVENT_DRIVEN_STAGES as readonly string[]).includes(e.stage)) continue
    const cj = deployed?.find((c) => c.metadata?.labels?.['seedops.io/stage'] === e.stage && c.spec?.schedule) ?? deployed?.find((c) => c.metadata?.name === e.name && c.spec?.schedule)
    const fromCluster = cj ? { schedule: cj.spec!.schedule, timeZone: cj.spec!.timeZone ?? undefined } : undefined
    const pick = fromCluster ?? { schedule: e.schedule, timeZone: e.timeZone }
    try {
      out.set(e.stage, cadenceOf(pick.schedule, { timeZone: pick.timeZone, from, stage: e.stage, source: fromCluster ? 'cluster' : 'manifests' }))
    } catch {
      // A schedule the cluster holds but cron-parser refuses (doctor's cronjobs.spec reports it): the shipped one.
      if (fromCluster) out.set(e.stage, cadenceOf(e.schedule, { timeZone: e.timeZone, from, stage: e.stage, source: 'manifests' }))
    }
  }
  return out
}

/** The freshness limit in hours: the explicit flag when given, else the cadence's, else `fallback`. */
export function freshnessLimit(explicit: number | undefined, cadence: Cadence | undefined, fallback: number): { maxAgeHours: number; source: 'flag' | Cadence['source'] | 'default' } {
  if (explicit !== undefined) return { maxAgeHours: explicit, source: 'flag' }
  if (cadence) return { maxAgeHours: cadence.maxAgeHours, source: cadence.source }
  return { maxAgeHours: fallback, source: 'default' }
}

/**
 * The cadences with the cluster when it answers: `listCronJobs` (the namespace's CronJobs) is
 * tried once; any error (no kubeconfig, unreachable, forbidden) falls back to the manifests.
 */
export async function resolveCadences(expected: ExpectedCronJob[], listCronJobs?: () => Promise<V1CronJob[]>, from = new Date()): Promise<Map<string, Cadence>> {
  let deployed: V1CronJob[] | undefined
  if (listCronJobs) deployed = await listCronJobs().catch(() => undefined)
  return stageCadences(expected, deployed, from)
}
