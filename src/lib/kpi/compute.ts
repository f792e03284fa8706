import type pg from 'pg'
import { addDays, isoWeekStart, utcDayStart } from '../config/index.js'
import { computeKpis, TAU2_FLOOR, type KpiInputs, type KpiOptions, type Kpis } from './formulas.js'
import { KPI_INPUTS, UPSERT_KPIS, WEEKLY_THETA_CHANGE } from './sql.js'

type Q = Pick<pg.PoolClient, 'query'>

export interface KpiWeek {
  weekStart: string
  /** week_start + 6, the week's Sunday. */
  asOf: string
}

/** The ISO week of a date and its as-of (SPEC: as_of = week_start + 6). */
export function kpiWeek(date: string): KpiWeek {
  const weekStart = isoWeekStart(date)
  return { weekStart, asOf: addDays(weekStart, 6) }
}


/**
 * Per-user KPI inputs in one set-based statement. `users` undefined: every user with an attempt
 * in the lookback (the 56 KPI days or more); `active: false` with `users`: exactly those users,
 * active or not (detect-inactivity).
 */
export async function loadKpiInputs(q: Q, o: { asOf: string; lookbackDays: number; users?: string[]; active: boolean }): Promise<KpiInputs[]> {
  const span = Math.max(56, o.lookbackDays)
  const from = utcDayStart(addDays(o.asOf, -(span - 1)))
  const to = utcDayStart(addDays(o.asOf, 1))
  const r = await q.query<KpiInputs>(KPI_INPUTS, [o.asOf, from, to, o.lookbackDays, o.users ?? null, o.active])
  return r.rows
}

/** τ² (floor 0.01) and how many weekly changes it rests on. */
export async function loadTau2(q: Q, asOf: string): Promise<{ tau2: number; changes: number; estimated: number | null }> {
  const r = await q.query<{ n: number; var: number | null }>(WEEKLY_THETA_CHANGE, [utcDayStart(addDays(asOf, 1))])
  const est = r.rows[0]?.n && r.rows[0].n >= 2 ? r.rows[0].var : null
  return { tau2: Math.max(TAU2_FLOOR, est ?? 0), changes: r.rows[0]?.n ?? 0, estimated: est }
}

export interface UserKpis {
  user_id: string
  kpis: Kpis
  theta_source: KpiInputs['theta_source']
}

/** The formulas, vectorised over all users (plain loop over the rows the SQL returned). */
export function computeAll(rows: KpiInputs[], o: KpiOptions): UserKpis[] {
  const out: UserKpis[] = new Array(rows.length)
  for (let i = 0; i < rows.length; i++) out[i] = { user_id: rows[i]!.user_id, kpis: computeKpis(rows[i]!, o), theta_source: rows[i]!.theta_source }
  return out
}

/** One bulk upsert of {key: value} objects merged into weekly_kpi.kpis. Returns rows written. */
export async function upsertKpis(q: Q, weekStart: string, rows: { user_id: string; kpis: object }[]): Promise<number> {
  let n = 0
  // Chunks keep one statement's parameters reasonable at 100k+ users.
  for (let i = 0; i < rows.length; i += 50_000) {
    const chunk = rows.slice(i, i + 50_000)
    const r = await q.query(UPSERT_KPIS, [weekStart, chunk.map((x) => x.user_id), chunk.map((x) => JSON.stringify(x.kpis))])
    n += r.rowCount ?? 0
  }
  return n
}
