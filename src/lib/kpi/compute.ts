import type pg from 'pg'
import type { Db } from '../db/index.js'
import { addDays, isoWeekStart, utcDayStart } from '../config/index.js'
import { computeKpis, TAU2_FLOOR, type KpiInputs, type KpiOptions, type Kpis } from './formulas.js'
import { splitRead } from './parallel.js'
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
 * active or not (detect-inactivity). `split`: only hash part `part` of `parts` (see KPI_INPUTS).
 */
export async function loadKpiInputs(q: Q, o: KpiInputsQuery, split = { parts: 1, part: 0 }): Promise<KpiInputs[]> {
  const span = Math.max(56, o.lookbackDays)
  const from = utcDayStart(addDays(o.asOf, -(span - 1)))
  const to = utcDayStart(addDays(o.asOf, 1))
  const last28 = utcDayStart(addDays(o.asOf, -27))
  const r = await q.query<KpiInputs>(KPI_INPUTS, [o.asOf, from, to, o.lookbackDays, o.users ?? null, o.active, split.parts, split.part, last28])
  return r.rows
}

export interface KpiInputsQuery {
  asOf: string
  lookbackDays: number
  users?: string[]
  active: boolean
}

/** Settings for the one big read (transaction-local). */
export const BIG_READ_SETTINGS = [
  // The answers held for the reductions (`a` in KPI_INPUTS: ~300 MB for 2.2 M answers, one part
  // at 100k learners), the sessions' hash and the medians' sort stay in memory: EXPLAIN (ANALYZE,
  // BUFFERS) shows no temp reads or writes at 512MB (at 256MB `a` spills 180 MB). Transaction-
  // local, only on the big read's connections, and a cap, not an allocation: past it PostgreSQL
  // spills to disk as before. Not applied to the embedded server (its memory is the process's own).
  `SET LOCAL work_mem = '512MB'`,
  // JIT compiled this statement's ~170 expressions in 10.6 s of a 52 s run (EXPLAIN ANALYZE, 100k learners): more than it saves.
  `SET LOCAL jit = off`,
]

/**
 * The same inputs, read in `parts` hash parts at once on as many connections (splitRead: one
 * snapshot, read-only), then put back in the single statement's order (user_id in the database's
 * collation, which the server sorts). null when the split is not possible: read with loadKpiInputs.
 */
export async function loadKpiInputsSplit(db: Db, tx: Q, o: KpiInputsQuery, s: { parts: number; signal: AbortSignal }): Promise<KpiInputs[] | null> {
  // Each part is one backend: the split itself is the parallelism, so no parallel workers on top.
  const parts = await splitRead(db, tx, { ...s, settings: [...BIG_READ_SETTINGS, 'SET LOCAL max_parallel_workers_per_gather = 0'] }, (c, part) =>
    loadKpiInputs(c, o, { parts: s.parts, part }),
  )
  if (!parts) return null
  const rows = parts.flat()
  const order = await tx.query<{ i: number }>(`SELECT (o - 1)::int AS i FROM unnest($1::text[]) WITH ORDINALITY t(u, o) ORDER BY u`, [rows.map((r) => r.user_id)])
  return order.rows.map((r) => rows[r.i]!)
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
