import { z } from 'zod'
import { addDays, utcDayStart } from '../config/index.js'
import type { Stage } from '../stages/types.js'
import { computeAll, kpiWeek, loadKpiInputs, loadTau2, upsertKpis } from './compute.js'
import { KpiParams } from './stage.js'

/**
 * detect-inactivity's options: compute-kpis' P and S knobs, its own threshold and lookback. Here
 * --lookback-days is the inactivity lookback; the KPI lookback keeps its env twin and default.
 */
export const InactivityParams = KpiParams.extend({
  lookbackDays: KpiParams.shape.lookbackDays.meta({ env: ['KPI_LOOKBACK_DAYS'] }),
  thresholdDays: z.number().int().min(1).max(365).default(7).meta({ flag: 'threshold-days', env: ['INACTIVITY_THRESHOLD_DAYS'] }),
  inactivityLookbackDays: z.number().int().min(2).max(730).default(56).meta({ flag: 'lookback-days', env: ['INACTIVITY_LOOKBACK_DAYS'] }),
}).refine((p) => p.thresholdDays < p.inactivityLookbackDays, {
  path: ['thresholdDays'],
  error: (i) => {
    const p = i.input as { thresholdDays: number; inactivityLookbackDays: number }
    return `the inactivity threshold (${p.thresholdDays} days) must be shorter than the lookback (${p.inactivityLookbackDays} days, --lookback-days)`
  },
})
export type InactivityParams = z.infer<typeof InactivityParams>

/**
 * Activity sources. Each yields (user_id, last activity instant) inside [$1, $2). exam_results is
 * always there (the `attempt` read model is built from it: its completed_at is
 * COALESCE(updated_at, created_at), so it adds nothing and is not unnested again); the others are
 * read only when the table and its columns exist. Fixed SQL, never built from input.
 */
const SOURCES: { id: string; table: string; columns: string[]; sql: string }[] = [
  {
    id: 'exam_results',
    table: 'exam_results',
    columns: ['user_id', 'created_at', 'updated_at'],
    sql: `SELECT user_id::text AS user_id, max(COALESCE(updated_at, created_at)) AS at FROM exam_results
          WHERE COALESCE(updated_at, created_at) >= $1::timestamptz AND COALESCE(updated_at, created_at) < $2::timestamptz GROUP BY 1`,
  },
  {
    id: 'responses',
    table: 'responses',
    columns: ['user_id', 'responded_at'],
    sql: `SELECT user_id::text AS user_id, max(responded_at) AS at FROM responses
          WHERE responded_at >= $1::timestamptz AND responded_at < $2::timestamptz GROUP BY 1`,
  },
  {
    id: 'features_topic_daily',
    table: 'features_topic_daily',
    columns: ['user_id', 'last_seen_at'],
    sql: `SELECT user_id::text AS user_id, max(last_seen_at) AS at FROM features_topic_daily
          WHERE last_seen_at >= $1::timestamptz AND last_seen_at < $2::timestamptz GROUP BY 1`,
  },
  {
    id: 'session',
    table: 'session',
    columns: ['user_id', 'ended_at'],
    sql: `SELECT user_id::text AS user_id, max(ended_at) AS at FROM session
          WHERE ended_at >= $1::timestamptz AND ended_at < $2::timestamptz GROUP BY 1`,
  },
]

/**
 * Sources combine by the LATEST activity over all of them: a user is flagged only when no
 * source shows activity in the threshold's days (the predecessor unioned per-source inactive
 * lists, so a user active in `session` but idle in exam_results was flagged).
 * $1 lookback start, $2 end of as_of, $3 cutoff (start of the threshold window), $4 as_of.
 */
function flaggedSql(sources: string[]): string {
  const union = SOURCES.filter((s) => sources.includes(s.id))
    .map((s) => `SELECT user_id, '${s.id}'::text AS source, at FROM (${s.sql}) x`)
    .join('\n  UNION ALL\n  ')
  return `
WITH src AS (
  ${union}
), per_user AS (
  SELECT user_id, max(at) AS last_at, jsonb_object_agg(source, at ORDER BY source) AS by_source,
         (array_agg(source ORDER BY at DESC, source))[1] AS last_source
  FROM src WHERE user_id IS NOT NULL GROUP BY user_id
)
SELECT user_id, last_at, last_source, by_source,
       ($4::date - (last_at AT TIME ZONE 'UTC')::date)::int AS days_inactive
FROM per_user WHERE last_at < $3::timestamptz
ORDER BY last_at, user_id`
}

export interface FlaggedUser {
  user_id: string
  last_at: Date
  last_source: string
  by_source: Record<string, string>
  days_inactive: number
}

export interface InactivitySummary {
  asOf: string
  weekStart: string
  kpiAsOf: string
  thresholdDays: number
  /** No activity at or after this instant (the threshold's days ending at as_of). */
  inactiveSince: string
  lookbackFrom: string
  sources: string[]
  sourcesMissing: string[]
  flagged: { user_id: string; last_activity: string; days_inactive: number; last_source: string; sources: Record<string, string>; P: number | null; S: number | null }[]
}

/**
 * detect-inactivity (SPEC 2): users with activity in the lookback and none in the
 * `threshold` days ending at as_of in any source; for them, P and S of the current week are
 * recomputed (same formulas and as_of = the week's Sunday as compute-kpis) and merged into
 * weekly_kpi, keeping I/E/R/A and every other key.
 */
export const detectInactivityStage: Stage<InactivityParams, InactivitySummary> = {
  id: 'detect-inactivity',
  description: 'Flag users inactive for INACTIVITY_THRESHOLD_DAYS in every source; recompute their P and S for the week.',
  supportsDryRun: true,
  options: InactivityParams,
  async run(params, ctx) {
    const { tx, logger } = ctx
    const asOf = ctx.asOf
    const { weekStart, asOf: kpiAsOf } = kpiWeek(asOf)
    const end = utcDayStart(addDays(asOf, 1))
    const cutoff = utcDayStart(addDays(asOf, -(params.thresholdDays - 1)))
    const from = utcDayStart(addDays(asOf, -(params.inactivityLookbackDays - 1)))

    const present = await tx.query<{ table_name: string; column_name: string }>(
      `SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = ANY ($1::text[])`,
      [SOURCES.map((s) => s.table)],
    )
    const have = new Set(present.rows.map((r) => `${r.table_name}.${r.column_name}`))
    const sources = SOURCES.filter((s) => s.columns.every((c) => have.has(`${s.table}.${c}`))).map((s) => s.id)
    const missing = SOURCES.map((s) => s.id).filter((s) => !sources.includes(s))
    logger.progress(`detect-inactivity: no activity since ${cutoff.slice(0, 10)} (${params.thresholdDays} days ending ${asOf}) in any of ${sources.join(', ')}${missing.length ? ` (absent: ${missing.join(', ')})` : ''}`)

    const flagged = (await tx.query<FlaggedUser>(flaggedSql(sources), [from, end, cutoff, asOf])).rows
    const users = params.users ? flagged.filter((f) => params.users!.includes(f.user_id)) : flagged
    logger.progress(`detect-inactivity: ${users.length} user(s) flagged; recomputing P and S for week ${weekStart}`)

    const inputs = users.length ? await loadKpiInputs(tx, { asOf: kpiAsOf, lookbackDays: params.lookbackDays, users: users.map((u) => u.user_id), active: false }) : []
    const tau = params.bayesian && users.length ? await loadTau2(tx, kpiAsOf) : null
    const results = computeAll(inputs, { ...params, tau2: tau?.tau2 ?? 0 })
    // P and S only (with the keys that belong to P); I/E/R/A and everything else stay as they are.
    const written = await upsertKpis(
      tx,
      weekStart,
      results.map((r) => {
        const { P, S, P_mode, P_target, sigma, P_ci } = r.kpis
        return { user_id: r.user_id, kpis: params.bayesian ? { P, S, P_mode, P_target, sigma, P_ci } : { P, S, P_mode, P_target } }
      }),
    )
    const byUser = new Map(results.map((r) => [r.user_id, r.kpis]))
    const list = users.map((u) => ({
      user_id: u.user_id,
      last_activity: new Date(u.last_at).toISOString(),
      days_inactive: u.days_inactive,
      last_source: u.last_source,
      sources: Object.fromEntries(Object.entries(u.by_source).map(([k, v]) => [k, new Date(v).toISOString()])),
      P: byUser.get(u.user_id)?.P ?? null,
      S: byUser.get(u.user_id)?.S ?? null,
    }))
    return {
      rows: { flagged: users.length, weekly_kpi: written },
      summary: { asOf, weekStart, kpiAsOf, thresholdDays: params.thresholdDays, inactiveSince: cutoff, lookbackFrom: from, sources, sourcesMissing: missing, flagged: list },
      table: {
        head: ['user_id', 'last_activity', 'days_inactive', 'why (last seen per source)', 'P', 'S'],
        rows: list.map((f) => [
          f.user_id,
          f.last_activity,
          f.days_inactive,
          Object.entries(f.sources).map(([k, v]) => `${k} ${v.slice(0, 16).replace('T', ' ')}`).join('; '),
          f.P === null ? null : Math.round(f.P * 10000) / 10000,
          f.S === null ? null : Math.round(f.S * 10000) / 10000,
        ]),
      },
      warnings: [],
    }
  },
}

export default detectInactivityStage
