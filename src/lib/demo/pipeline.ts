import type { Db } from '../db/index.js'
import { withTransaction } from '../db/index.js'
import { migrate } from '../db/migrate.js'
import { silentLogger, type Logger } from '../output/index.js'
import { addDays } from '../config/index.js'
import { translateError } from '../errors/index.js'
import { loadStages, getStage } from '../stages/all.js'
import { runStage } from '../stages/runner.js'
import { runWithPrerequisites } from '../stages/chain.js'
import { resolveStageParams } from '../stages/options.js'
import { seedDemo, type SeedParams, type SeedSummary } from './seed.js'

/**
 * The demo's order. On the cluster calibrate-irt runs at 03:00, after the day's features and KPIs
 * (which then use the previous night's parameters); on a fresh demo database there is no previous
 * night, so the demo calibrates first and every later stage sees θ.
 */
export const PIPELINE_ORDER = ['calibrate-irt', 'aggregate-features', 'compute-kpis', 'detect-inactivity', 'generate-report'] as const

/** Per-stage options the demo sets beyond the defaults. */
const DEMO_STAGE_OPTIONS: Record<string, Record<string, unknown>> = {
  'aggregate-features': { includeTheta: true },
}

export interface DemoResult {
  target: string
  seeded: SeedSummary | null
  asOf: string
  stages: { stage: string; status: string; durationMs: number; rows: Record<string, number>; runId: number | null; error?: string }[]
  tables: Record<string, number>
  /** A report to open, when generate-report ran. */
  sampleReport?: string
}

export async function runDemo(
  db: Db,
  opts: { seed: Omit<SeedParams, 'endDate'> & { days: number }; asOf: string; logger: Logger; historyWeeks?: number },
): Promise<DemoResult> {
  const { logger } = opts
  await migrate(db, logger)
  const n = (await db.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM exam_results`)).rows[0]!.n
  let seeded: SeedSummary | null = null
  if (n === 0) {
    logger.info(`demo: seeding ${opts.seed.learners} learners × ${opts.seed.days} days (seed ${opts.seed.seed})`)
    seeded = await withTransaction(db.pool, (c) => seedDemo(c, { ...opts.seed, endDate: opts.asOf }, logger))
  } else {
    logger.info(`demo: database already holds ${n} exam_results rows; using them`)
  }
  await loadStages()
  const stages: DemoResult['stages'] = []
  let sampleReport: string | undefined
  // A fresh demo has no past: calibrate as of each of the previous weeks first, so the ability
  // history has a trend (θ mode of I_t, the report's θ chart), as weeks of nightly runs would leave.
  const calib = getStage('calibrate-irt')
  if (seeded && calib && opts.historyWeeks !== 0) {
    const weeks = Math.min(opts.historyWeeks ?? 6, Math.floor((opts.seed.days - 14) / 7))
    const t0 = Date.now()
    let calibrated = 0
    for (let k = weeks; k >= 1; k--) {
      const asOf = addDays(opts.asOf, -7 * k)
      // Best effort: early weeks of a small demo may be too thin to calibrate; the history just starts later.
      await runStage(db, calib, resolveStageParams(calib, {}, process.env), { asOf, dryRun: false, logger: silentLogger }).then(
        () => calibrated++,
        (e: Error) => logger.warn(`demo: calibration as of ${asOf} skipped: ${e.message}`),
      )
    }
    if (weeks > 0) {
      logger.info(`demo: calibrated as of the ${weeks} previous week(s) for the ability history`)
      stages.push({ stage: `calibrate-irt (${weeks} past weeks)`, status: 'succeeded', durationMs: Date.now() - t0, rows: { weeks, calibrated }, runId: null })
    }
  }
  for (const id of PIPELINE_ORDER) {
    const stage = getStage(id)
    if (!stage) continue
    const params = resolveStageParams(stage, DEMO_STAGE_OPTIONS[id] ?? {}, process.env)
    const t0 = Date.now()
    let r: Awaited<ReturnType<typeof runStage>>
    try {
      // As the CronJobs run them: compute-kpis finalises last week first, generate-report reports it.
      const out = await runWithPrerequisites(db, stage, params, { asOf: opts.asOf, dryRun: false, logger })
      for (const b of out.before) stages.push({ stage: `${b.stage} (week ${addDays(b.asOf, -6)}, final)`, status: b.status, durationMs: b.durationMs, rows: b.rows, runId: b.runId })
      r = out.report
    } catch (e) {
      // Keep going: the summary shows which stage failed and why, and the command exits 1.
      const err = translateError(e)
      logger.warn(`demo: ${id} failed: ${err.message}`)
      stages.push({ stage: id, status: 'failed', durationMs: Date.now() - t0, rows: {}, runId: null, error: `${err.code}: ${err.message}` })
      continue
    }
    stages.push({ stage: id, status: r.status, durationMs: r.durationMs, rows: r.rows, runId: r.runId })
    if (id === 'generate-report') {
      const sample = (r.summary as { sample?: { path?: string; url: string } } | undefined)?.sample
      sampleReport = sample?.path ?? sample?.url
    }
  }
  const tables: Record<string, number> = {}
  for (const t of ['exam_results', 'question', 'features_topic_daily', 'weekly_kpi', 'mirt_item_params', 'mirt_ability', 'seedops_ability_history', 'report_artifacts']) {
    tables[t] = (await db.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${t}`)).rows[0]!.n
  }
  return { target: db.target, seeded, asOf: opts.asOf, stages, tables, sampleReport }
}
