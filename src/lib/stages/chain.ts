import { addDays, isoWeekStart, lastCompleteWeek, utcDayStart } from '../config/index.js'
import type { Db } from '../db/index.js'
import { SeedopsError, translateError, usageError } from '../errors/index.js'
import computeKpisStage from '../kpi/stage.js'
import type { KpiParams } from '../kpi/stage.js'
import { lastSuccess } from './run-log.js'
import { resolveStageParams } from './options.js'
import { runStage, type RunOptions } from './runner.js'
import { getStage, loadStages } from './all.js'
import type { Stage, StageRunReport } from './types.js'

/**
 * Which week, which day (SPEC 2). A week's KPIs are *final* once compute-kpis has computed them
 * as part of a later day's run (all of Sunday included): the daily 02:10 run of Sunday saw only
 * two hours of it. That run is recorded in the run log with params.final = true and as_of = the
 * week's Sunday. compute-kpis's first run of a new week finalises the previous week;
 * generate-report's default week (the last complete one) is finalised before it is reported.
 */

/** Any attempt in the week, or KPI rows for it: a week with neither needs no finalising. */
const WEEK_ACTIVE_SQL = `
SELECT EXISTS (SELECT 1 FROM seedops_attempt_base WHERE completed_at >= $1::timestamptz AND completed_at < $2::timestamptz)
    OR EXISTS (SELECT 1 FROM weekly_kpi WHERE week_start = $3::date) AS active`

export async function kpiWeekIsFinal(db: Db, weekStart: string): Promise<boolean> {
  const sunday = addDays(weekStart, 6)
  // A whole-population run (no users filter) as of the week's Sunday, marked final.
  return (await lastSuccess(db.pool, 'compute-kpis', { asOfFrom: sunday, asOfTo: sunday, params: { final: 'true', users: null } })) !== undefined
}

async function weekIsActive(db: Db, weekStart: string): Promise<boolean> {
  const r = await db.pool.query<{ active: boolean }>(WEEK_ACTIVE_SQL, [utcDayStart(weekStart), utcDayStart(addDays(weekStart, 7)), weekStart])
  return Boolean(r.rows[0]?.active)
}

/** compute-kpis for a whole past week, as of its Sunday, marked final in the run log. */
export async function finaliseKpiWeek(db: Db, weekStart: string, kpiParams: KpiParams, opts: RunOptions): Promise<StageRunReport> {
  opts.logger.info(`compute-kpis: finalising the week ${weekStart}..${addDays(weekStart, 6)} (its KPIs with all of Sunday)`)
  // `final` rides along in the params the run log keeps; the stage itself ignores it.
  const params = { ...kpiParams, users: undefined, final: true } as KpiParams
  return runStage(db, computeKpisStage, params, { ...opts, asOf: addDays(weekStart, 6) })
}

/**
 * Runs that must come first: compute-kpis finalises the previous week on the first run of a new
 * week; generate-report (its default, last complete week) makes that week's KPIs final first, or
 * refuses when asked to (requireFinalKpis). A dry run never writes them: it warns instead.
 */
async function prerequisites(db: Db, stage: Stage<any, any>, params: any, opts: RunOptions): Promise<StageRunReport[]> {
  if (stage.id === 'compute-kpis' && !params.users && !params.final) {
    const prev = addDays(isoWeekStart(opts.asOf), -7)
    if (!(await kpiWeekIsFinal(db, prev)) && (await weekIsActive(db, prev))) {
      if (opts.dryRun) {
        opts.logger.warn(`compute-kpis: the week ${prev} is not final yet; a real run would finalise it first`)
        return []
      }
      return [await finaliseKpiWeek(db, prev, params as KpiParams, opts)]
    }
  }
  if (stage.id === 'generate-report' && !params.week) {
    const week = lastCompleteWeek(opts.asOf)
    if (!(await kpiWeekIsFinal(db, week)) && (await weekIsActive(db, week))) {
      if (params.requireFinalKpis) {
        throw new SeedopsError(`the KPIs of the week ${week}..${addDays(week, 6)} are not final (no compute-kpis run has computed them since the week ended)`, {
          code: 'KPIS_NOT_FINAL',
          suggestions: [`Run: seedops run compute-kpis --date ${addDays(week, 7)}   # finalises the week it follows`, 'Or drop --require-final-kpis: generate-report then finalises them itself'],
        })
      }
      if (opts.dryRun) {
        opts.logger.warn(`generate-report: the KPIs of the week ${week} are not final; a real run would compute them first`)
        return []
      }
      return [await finaliseKpiWeek(db, week, resolveStageParams(computeKpisStage, {}, opts.env ?? process.env), opts)]
    }
  }
  return []
}

/** One stage run as the CronJobs, `run daily` and the demo run it: prerequisites, then the stage. */
export async function runWithPrerequisites<P, S>(db: Db, stage: Stage<P, S>, params: P, opts: RunOptions): Promise<{ before: StageRunReport[]; report: StageRunReport<S> }> {
  const before = await prerequisites(db, stage, params, opts)
  const report = await runStage(db, stage, params, opts)
  return { before, report }
}

export const MAX_RANGE_DAYS = 400

/** Every day from..to inclusive (UTC), checked. */
export function dayRange(from: string, to: string): string[] {
  if (to < from) throw usageError(`--to ${to} is before --from ${from}`)
  const days: string[] = []
  for (let d = from; d <= to; d = addDays(d, 1)) {
    days.push(d)
    if (days.length > MAX_RANGE_DAYS) throw usageError(`--from ${from} --to ${to} spans more than ${MAX_RANGE_DAYS} days`, ['Split the range into several runs'])
  }
  return days
}

export interface DayFailure {
  asOf: string
  stage: string
  code: string
  message: string
}

export interface RangeReport<S = unknown> {
  stage: string
  from: string
  to: string
  dryRun: boolean
  status: 'succeeded' | 'failed'
  /** Every run, prerequisites (finalising runs) included, in order. */
  runs: StageRunReport<S>[]
  failures: DayFailure[]
  /** Days not run because an earlier day failed (without --keep-going). */
  notRun: string[]
}

/**
 * Recovery: a stage for each as-of in a range, in order, one run-log row each. Stops at the first
 * failure (naming the day) unless keepGoing; a cancelled run (SIGTERM/SIGINT) always stops it.
 */
export async function runRange<P, S>(db: Db, stage: Stage<P, S>, params: P, o: { days: string[]; keepGoing: boolean } & Omit<RunOptions, 'asOf'>): Promise<RangeReport<S>> {
  const runs: StageRunReport<S>[] = []
  const failures: DayFailure[] = []
  let notRun: string[] = []
  for (const [i, asOf] of o.days.entries()) {
    let failed = false
    try {
      const { before, report } = await runWithPrerequisites(db, stage, params, { ...o, asOf })
      runs.push(...(before as StageRunReport<S>[]), report)
      if (report.status === 'failed') {
        failed = true
        failures.push({ asOf, stage: stage.id, code: 'STAGE_FAILED', message: `run #${report.runId} failed` })
      }
    } catch (e) {
      const err = translateError(e)
      if (err.code === 'CANCELLED') throw err
      failed = true
      failures.push({ asOf, stage: stage.id, code: err.code, message: err.message })
      o.logger.warn(`${stage.id} as of ${asOf} failed: ${err.message}`)
    }
    if (failed && !o.keepGoing) {
      notRun = o.days.slice(i + 1)
      break
    }
  }
  return { stage: stage.id, from: o.days[0]!, to: o.days.at(-1)!, dryRun: o.dryRun, status: failures.length ? 'failed' : 'succeeded', runs, failures, notRun }
}

/** The daily chain in dependency order (the CronJobs' order); generate-report on the weekly boundary (Monday). */
export const DAILY_CHAIN = ['aggregate-features', 'calibrate-irt', 'compute-kpis', 'detect-inactivity'] as const

export interface DailyReport {
  from: string
  to: string
  dryRun: boolean
  status: 'succeeded' | 'failed'
  runs: StageRunReport[]
  failures: DayFailure[]
  notRun: { asOf: string; stage: string }[]
}

/**
 * `seedops run daily`: for each day, features → calibrate-irt → compute-kpis → detect-inactivity,
 * and on a Monday generate-report for the week that just ended; each stage with its CronJob's
 * configuration (environment, defaults). Stops at the first failure unless keepGoing.
 */
export async function runDaily(db: Db, o: { days: string[]; keepGoing: boolean; env: NodeJS.ProcessEnv } & Omit<RunOptions, 'asOf' | 'env'>): Promise<DailyReport> {
  await loadStages()
  const runs: StageRunReport[] = []
  const failures: DayFailure[] = []
  const notRun: { asOf: string; stage: string }[] = []
  const plan = o.days.flatMap((asOf) => [...DAILY_CHAIN, ...(isoWeekStart(asOf) === asOf ? ['generate-report'] : [])].map((id) => ({ asOf, id })))
  // Every stage's options from the environment before anything runs: a bad value is a usage error
  // (exit 2) naming it, not a failure in the middle of the chain.
  const params = new Map([...new Set(plan.map((s) => s.id))].map((id) => [id, resolveStageParams(getStage(id)!, {}, o.env)]))
  for (const [i, step] of plan.entries()) {
    const stage = getStage(step.id)!
    try {
      const { before, report } = await runWithPrerequisites(db, stage, params.get(step.id), { ...o, asOf: step.asOf })
      runs.push(...before, report)
      if (report.status === 'failed') failures.push({ asOf: step.asOf, stage: step.id, code: 'STAGE_FAILED', message: `run #${report.runId} failed` })
    } catch (e) {
      const err = translateError(e)
      if (err.code === 'CANCELLED') throw err
      failures.push({ asOf: step.asOf, stage: step.id, code: err.code, message: err.message })
      o.logger.warn(`${step.id} as of ${step.asOf} failed: ${err.message}`)
    }
    if (failures.length && !o.keepGoing) {
      notRun.push(...plan.slice(i + 1).map((x) => ({ asOf: x.asOf, stage: x.id })))
      break
    }
  }
  return { from: o.days[0]!, to: o.days.at(-1)!, dryRun: o.dryRun, status: failures.length ? 'failed' : 'succeeded', runs, failures, notRun }
}
