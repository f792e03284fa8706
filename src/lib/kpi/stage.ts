import { z } from 'zod'
import type { Stage } from '../stages/types.js'
import { BIG_READ_SETTINGS, computeAll, kpiWeek, loadKpiInputs, loadKpiInputsSplit, loadTau2, upsertKpis } from './compute.js'
import { splitParts } from './parallel.js'
import type { Kpis } from './formulas.js'

/** Learner ids from repeated --user: each once, none = every active learner. */
export const usersOption = z
  .array(z.string().min(1))
  .optional()
  .transform((u) => (u?.length ? [...new Set(u)] : undefined))
  .meta({ flag: 'user' })

/** compute-kpis' options (flag, env twin, default): see stages/options.ts. detect-inactivity shares the P and S ones. */
export const KpiParams = z.object({
  lookbackDays: z.number().int().min(1).max(366).default(30).meta({ flag: 'lookback-days', env: ['KPI_LOOKBACK_DAYS'] }),
  target: z.number().finite().default(0).meta({ flag: 'target', env: ['METRICS_DEFAULT_TARGET'] }),
  bayesian: z.boolean().default(false).meta({ flag: 'bayesian', env: ['METRICS_USE_BAYESIAN'] }),
  horizonWeeks: z.number().positive().finite().default(1).meta({ flag: 'goal-weeks', env: ['METRICS_GOAL_WEEKS'] }),
  churnHorizonDays: z.number().int().min(1).max(365).default(14).meta({ flag: 'churn-horizon-days', env: ['METRICS_CHURN_HORIZON_DAYS'] }),
  users: usersOption,
})
export type KpiParams = z.infer<typeof KpiParams>

export interface KpiSummary {
  weekStart: string
  asOf: string
  users: number
  written: number
  /** Users per I_t mode. */
  iMode: { theta: number; accuracy: number; none: number }
  /** null count per KPI. */
  nulls: Record<'I_t' | 'E_t' | 'R_t' | 'A_t' | 'P' | 'S', number>
  thetaSource: { history: number; mirt_ability: number; none: number }
  bayesian: { tau2: number; weeklyChanges: number } | null
  usersNotActive?: string[]
}

export const KPI_KEYS = ['I_t', 'E_t', 'R_t', 'A_t', 'P', 'S'] as const
const TABLE_LIMIT = 200

/**
 * compute-kpis (SPEC 2): the six KPIs for every user active in the lookback, for the ISO week of
 * --date (as_of = its Sunday), merged into weekly_kpi.kpis. Inputs come from one set-based SQL
 * statement, formulas run in TS over the rows, one bulk upsert writes them.
 */
export const computeKpisStage: Stage<KpiParams, KpiSummary> = {
  id: 'compute-kpis',
  description: 'Weekly KPIs (I_t, E_t, R_t, A_t, P, S) per active user into weekly_kpi.',
  supportsDryRun: true,
  options: KpiParams,
  async run(params, ctx) {
    const { tx, logger } = ctx
    const { weekStart, asOf } = kpiWeek(ctx.asOf)
    logger.progress(`compute-kpis: week ${weekStart} (as of ${asOf}), users active in the ${params.lookbackDays} days ending ${asOf}${params.users ? `, restricted to ${params.users.length} user(s)` : ''}`)
    for (const setting of ctx.db.kind === 'postgres' ? BIG_READ_SETTINGS : []) await tx.query(setting)
    const t0 = Date.now()
    const query = { asOf, lookbackDays: params.lookbackDays, users: params.users, active: true }
    // A real server: the read split by user hash across connections (one snapshot); else, or when
    // that is not possible, the one statement on the run's connection. Same rows either way.
    const parts = splitParts(ctx.db, ctx.env)
    const split = parts > 1 ? await loadKpiInputsSplit(ctx.db, tx, query, { parts, signal: ctx.signal }) : null
    const inputs = split ?? (await loadKpiInputs(tx, query))
    logger.progress(`compute-kpis: inputs for ${inputs.length} users in ${((Date.now() - t0) / 1000).toFixed(1)} s${split ? ` (${parts} connections)` : ''}`)
    const tau = params.bayesian ? await loadTau2(tx, asOf) : null
    const results = computeAll(inputs, { ...params, tau2: tau?.tau2 ?? 0 })
    const written = await upsertKpis(tx, weekStart, results)
    logger.progress(`compute-kpis: ${written} weekly_kpi rows upserted`)

    const summary = summarise(results, { weekStart, asOf, written, tau })
    const warnings: string[] = []
    if (params.users) {
      const seen = new Set(results.map((r) => r.user_id))
      const missing = params.users.filter((u) => !seen.has(u))
      if (missing.length) {
        summary.usersNotActive = missing
        warnings.push(`${missing.length} requested user(s) had no attempt in the ${params.lookbackDays} days ending ${asOf}, no KPIs: ${missing.slice(0, 10).join(', ')}${missing.length > 10 ? ', …' : ''}`)
      }
    }
    if (results.length === 0) warnings.push(`no user has an attempt in the ${params.lookbackDays} days ending ${asOf}: nothing written`)
    return {
      rows: { weekly_kpi: written, users: results.length },
      summary,
      table: ctx.dryRun ? kpiTable(results.slice(0, TABLE_LIMIT), weekStart) : undefined,
      warnings: ctx.dryRun && results.length > TABLE_LIMIT ? [...warnings, `dry run: showing the first ${TABLE_LIMIT} of ${results.length} rows`] : warnings,
    }
  },
}

export function summarise(
  results: { kpis: Partial<Kpis>; theta_source: string | null }[],
  o: { weekStart: string; asOf: string; written: number; tau: { tau2: number; changes: number } | null },
): KpiSummary {
  const nulls = { I_t: 0, E_t: 0, R_t: 0, A_t: 0, P: 0, S: 0 }
  const iMode = { theta: 0, accuracy: 0, none: 0 }
  const thetaSource = { history: 0, mirt_ability: 0, none: 0 }
  for (const r of results) {
    for (const k of KPI_KEYS) if (r.kpis[k] === null) nulls[k]++
    iMode[(r.kpis.I_mode ?? 'none') as keyof typeof iMode]++
    thetaSource[(r.theta_source ?? 'none') as keyof typeof thetaSource]++
  }
  return {
    weekStart: o.weekStart,
    asOf: o.asOf,
    users: results.length,
    written: o.written,
    iMode,
    nulls,
    thetaSource,
    bayesian: o.tau ? { tau2: o.tau.tau2, weeklyChanges: o.tau.changes } : null,
  }
}

function kpiTable(rows: { user_id: string; kpis: Partial<Kpis> }[], weekStart: string): { head: string[]; rows: unknown[][] } {
  const round = (v: unknown) => (typeof v === 'number' ? Math.round(v * 10000) / 10000 : v ?? null)
  return {
    head: ['user_id', 'week_start', ...KPI_KEYS, 'I_mode', 'P_ci'],
    rows: rows.map((r) => [r.user_id, weekStart, ...KPI_KEYS.map((k) => round(r.kpis[k])), r.kpis.I_mode ?? null, r.kpis.P_ci ? r.kpis.P_ci.map((v) => round(v)) : null]),
  }
}

export default computeKpisStage
