import { addDays, utcDayStart } from '../config/index.js'
import { usageError } from '../errors/index.js'
import { kpiWeek } from '../kpi/compute.js'
import { lastSuccess } from '../stages/run-log.js'
import { stageFreshness } from './freshness.js'
import type { Check, CheckGroup, VerifyContext } from './types.js'

const KEYS = ['I_t', 'E_t', 'R_t', 'A_t', 'P', 'S'] as const

/**
 * Default maximum share of null per KPI among the week's active users (override with
 * --max-null KPI=rate). Nulls are expected by design (E_t needs a previous 28 days, R_t a wrong
 * answer, P a θ), so the defaults catch a broken stage rather than sparse data.
 */
export const DEFAULT_MAX_NULL: Record<(typeof KEYS)[number], number> = { I_t: 0.6, E_t: 0.7, R_t: 0.9, A_t: 0.1, P: 0.5, S: 0.05 }

interface LastRun {
  started_at: Date | null
  as_of: string | null
  lookback: number | null
}

async function lastRun(q: VerifyContext['q']): Promise<LastRun> {
  const run = await lastSuccess(q, 'compute-kpis')
  const lookback = Number(run?.params.lookbackDays)
  return { started_at: run?.startedAt ?? null, as_of: run?.asOf ?? null, lookback: Number.isInteger(lookback) && lookback > 0 ? lookback : null }
}

/**
 * The users compute-kpis must have covered for the week of as_of: an attempt in the lookback
 * days ending at the week's Sunday, seen by then — up to as_of's end, and no later than the last
 * run of that week started (attempts that arrived after it are the next run's).
 */
async function activeWindow(ctx: VerifyContext): Promise<{ weekStart: string; from: string; to: string; lookback: number }> {
  const { weekStart, asOf: kpiAsOf } = kpiWeek(ctx.asOf)
  const run = await lastRun(ctx.q)
  const lookback = run.lookback ?? ctx.options.lookbackDays ?? 30
  let to = new Date(utcDayStart(addDays(ctx.asOf, 1)))
  const sunday = new Date(utcDayStart(addDays(kpiAsOf, 1)))
  if (sunday < to) to = sunday
  if (run.as_of && kpiWeek(run.as_of).weekStart === weekStart && run.started_at && new Date(run.started_at) < to) to = new Date(run.started_at)
  return { weekStart, from: utcDayStart(addDays(kpiAsOf, -(lookback - 1))), to: to.toISOString(), lookback }
}

const ACTIVE_USERS = `SELECT DISTINCT user_id FROM seedops_attempt_base WHERE completed_at >= $1::timestamptz AND completed_at < $2::timestamptz`

export const kpiChecks: Check[] = [
  {
    id: 'freshness',
    description: 'compute-kpis succeeded recently and weekly_kpi rows of the week were updated by it',
    async run(ctx) {
      const { q, now } = ctx
      const f = await stageFreshness(ctx, 'compute-kpis', 26)
      const { ageH, maxAgeH } = f
      const run = { as_of: f.run?.asOf ?? null }
      const { weekStart } = kpiWeek(ctx.asOf)
      const w = (await q.query<{ rows: number; last: Date | null }>(`SELECT count(*)::int AS rows, max(updated_at) AS last FROM weekly_kpi WHERE week_start = $1`, [weekStart])).rows[0]!
      const rowAgeH = w.last ? (now.getTime() - new Date(w.last).getTime()) / 3_600_000 : null
      const r1 = (v: number | null) => (v === null ? null : Math.round(v * 10) / 10)
      const numbers = { ...f.numbers, week_start: weekStart, rows_this_week: w.rows, newest_row_age_hours: r1(rowAgeH) }
      if (ageH === null) return { status: 'fail', message: 'compute-kpis has never succeeded (run: seedops run compute-kpis)', numbers }
      if (ageH > maxAgeH) return { status: 'fail', message: `last successful compute-kpis ${numbers.last_success_age_hours} h ago (> ${maxAgeH} h)`, numbers }
      if (w.rows === 0) return { status: 'fail', message: `no weekly_kpi rows for the week ${weekStart} (run: seedops run compute-kpis --date ${ctx.asOf})`, numbers }
      if (rowAgeH !== null && rowAgeH > maxAgeH) return { status: 'warn', message: `newest weekly_kpi row of ${weekStart} is ${numbers.newest_row_age_hours} h old (> ${maxAgeH} h)`, numbers }
      return { status: 'ok', message: `last success ${numbers.last_success_age_hours} h ago (as of ${run.as_of}); ${w.rows} rows for ${weekStart}, newest ${numbers.newest_row_age_hours} h old`, numbers }
    },
  },
  {
    id: 'coverage',
    description: 'every user active in the KPI lookback has a weekly_kpi row for the week',
    async run(ctx) {
      const { weekStart, from, to, lookback } = await activeWindow(ctx)
      const r = await ctx.q.query<{ active: number; covered: number }>(
        `WITH act AS (${ACTIVE_USERS})
         SELECT count(*)::int AS active, count(w.user_id)::int AS covered
         FROM act LEFT JOIN weekly_kpi w ON w.user_id = act.user_id AND w.week_start = $3::date`,
        [from, to, weekStart],
      )
      const n = r.rows[0]!
      const minPct = ctx.options.minCoveragePct ?? 100
      const pct = n.active ? Math.round((n.covered / n.active) * 10000) / 100 : 100
      const numbers = { week_start: weekStart, active_from: from, active_to: to, lookback_days: lookback, active_users: n.active, covered: n.covered, missing: n.active - n.covered, coverage_pct: pct, min_coverage_pct: minPct }
      if (n.active === 0) return { status: 'warn', message: `no user active in ${from.slice(0, 10)}..${to.slice(0, 16)}: nothing to cover`, numbers }
      if (pct < minPct) {
        const rows = (
          await ctx.q.query(
            `WITH act AS (${ACTIVE_USERS}) SELECT act.user_id FROM act LEFT JOIN weekly_kpi w ON w.user_id = act.user_id AND w.week_start = $3::date
             WHERE w.user_id IS NULL ORDER BY 1 LIMIT 5`,
            [from, to, weekStart],
          )
        ).rows
        return { status: 'fail', message: `${numbers.missing} of ${n.active} active users have no row for ${weekStart} (${pct}% < ${minPct}%; run: seedops run compute-kpis --date ${ctx.asOf})`, numbers, rows }
      }
      return { status: 'ok', message: `${n.covered}/${n.active} active users have a row for ${weekStart} (${pct}%)`, numbers }
    },
  },
  {
    id: 'ranges',
    description: 'KPI values are numbers in range or null: I_t in [-1,1], E_t/R_t/A_t/P/S in [0,1], P_ci within [0,1] with lo ≤ hi',
    async run(ctx) {
      const { weekStart } = kpiWeek(ctx.asOf)
      // A value that is not a JSON number (a string "NaN", say) is out of range too.
      const inRange = (k: string, lo: number) =>
        `(NOT (kpis ? '${k}') OR jsonb_typeof(kpis -> '${k}') = 'null' OR (jsonb_typeof(kpis -> '${k}') = 'number' AND (kpis ->> '${k}')::float8 BETWEEN ${lo} AND 1))`
      const ok = [inRange('I_t', -1), ...KEYS.slice(1).map((k) => inRange(k, 0)),
        `(NOT (kpis ? 'P_ci') OR jsonb_typeof(kpis -> 'P_ci') = 'null' OR (jsonb_typeof(kpis -> 'P_ci') = 'array' AND jsonb_array_length(kpis -> 'P_ci') = 2
           AND jsonb_typeof(kpis -> 'P_ci' -> 0) = 'number' AND jsonb_typeof(kpis -> 'P_ci' -> 1) = 'number'
           AND (kpis -> 'P_ci' ->> 0)::float8 BETWEEN 0 AND 1 AND (kpis -> 'P_ci' ->> 1)::float8 BETWEEN 0 AND 1
           AND (kpis -> 'P_ci' ->> 0)::float8 <= (kpis -> 'P_ci' ->> 1)::float8))`,
        `(NOT (kpis ? 'sigma') OR jsonb_typeof(kpis -> 'sigma') = 'null' OR (jsonb_typeof(kpis -> 'sigma') = 'number' AND (kpis ->> 'sigma')::float8 > 0))`,
      ].join(' AND ')
      const r = await ctx.q.query(
        `SELECT user_id, kpis, count(*) OVER ()::int AS total FROM weekly_kpi WHERE week_start = $1 AND NOT (${ok}) ORDER BY user_id LIMIT 5`,
        [weekStart],
      )
      const bad = (r.rows[0] as { total?: number } | undefined)?.total ?? 0
      const total = (await ctx.q.query<{ n: number }>(`SELECT count(*)::int AS n FROM weekly_kpi WHERE week_start = $1`, [weekStart])).rows[0]!.n
      const numbers = { week_start: weekStart, rows_checked: total, out_of_range: bad }
      if (bad > 0) return { status: 'fail', message: `${bad} of ${total} rows of ${weekStart} have a KPI out of range or not a number`, numbers, rows: r.rows.map(({ total: _t, ...x }) => x) }
      return { status: 'ok', message: `${total} rows of ${weekStart} in range`, numbers }
    },
  },
  {
    id: 'null-rates',
    description: 'share of null per KPI among the week’s active users is under its threshold',
    async run(ctx) {
      const { weekStart, from, to } = await activeWindow(ctx)
      const r = await ctx.q.query<Record<string, number>>(
        `WITH act AS (${ACTIVE_USERS})
         SELECT count(*)::int AS rows, ${KEYS.map((k) => `count(*) FILTER (WHERE jsonb_typeof(w.kpis -> '${k}') IS DISTINCT FROM 'number')::int AS "${k}"`).join(', ')}
         FROM act JOIN weekly_kpi w ON w.user_id = act.user_id AND w.week_start = $3::date`,
        [from, to, weekStart],
      )
      const n = r.rows[0]!
      const numbers: Record<string, number | string | null> = { week_start: weekStart, rows: n.rows }
      const over: string[] = []
      for (const k of KEYS) {
        const rate = n.rows ? n[k]! / n.rows : 0
        const max = ctx.options[`maxNull.${k}`] ?? DEFAULT_MAX_NULL[k]
        numbers[`${k}_null_rate`] = Math.round(rate * 10000) / 10000
        numbers[`${k}_max`] = max
        if (rate > max) over.push(`${k} ${(rate * 100).toFixed(1)}% > ${(max * 100).toFixed(0)}%`)
      }
      const rates = KEYS.map((k) => `${k} ${((numbers[`${k}_null_rate`] as number) * 100).toFixed(1)}%`).join(', ')
      if (n.rows === 0) return { status: 'warn', message: `no rows of active users for ${weekStart}: no null rates`, numbers }
      if (over.length) {
        const noTheta = over.some((o) => o.startsWith('P ')) ? ' (P needs θ: run seedops run calibrate-irt)' : ''
        return { status: 'fail', message: `null rate over threshold: ${over.join(', ')}${noTheta}; all: ${rates}`, numbers }
      }
      return { status: 'ok', message: `null rates ${rates} (n = ${n.rows})`, numbers }
    },
  },
]

export const kpisGroup: CheckGroup = { id: 'kpis', description: 'weekly_kpi', checks: kpiChecks }

/** `--max-null P=0.8 --max-null I_t=0.5` → verify options; names and rates validated. */
export function maxNullOptions(values: string[] | undefined): Record<string, number> {
  const out: Record<string, number> = {}
  for (const v of values ?? []) {
    const m = /^([A-Za-z_]+)=([0-9]*\.?[0-9]+)$/.exec(v.trim())
    const key = m?.[1]
    if (!m || !key || !(KEYS as readonly string[]).includes(key) || Number(m[2]) > 1) {
      throw usageError(`--max-null ${JSON.stringify(v)} is not KPI=rate`, [`KPI is one of ${KEYS.join(', ')}; rate in [0, 1], e.g. --max-null P=0.8`])
    }
    out[`maxNull.${key}`] = Number(m[2])
  }
  return out
}
