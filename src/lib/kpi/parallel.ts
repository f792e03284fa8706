import type pg from 'pg'
import { resolveInt } from '../config/index.js'
import type { Db } from '../db/index.js'

type Q = Pick<pg.PoolClient, 'query'>

/** Connections a stage may split one big read across (a real server only). SEEDOPS_PARALLEL_CONNECTIONS, default 2; 1 turns the split off. */
export function splitParts(db: Db, env: NodeJS.ProcessEnv): number {
  // A bad value is a usage error (exit 2) naming the variable, as for calibrate-irt, not a silent 1.
  const want = resolveInt(undefined, ['SEEDOPS_PARALLEL_CONNECTIONS'], 2, { min: 1, max: 16, label: 'SEEDOPS_PARALLEL_CONNECTIONS' }, env)
  if (db.kind !== 'postgres') return 1
  // The run's own connection stays busy, and one more must stay free: the runner cancels a
  // statement from a second session on SIGTERM, and so do we (below).
  const room = ((db.pool.options as { max?: number }).max ?? 4) - 2
  return Number.isInteger(want) && want > 1 ? Math.max(1, Math.min(want, room)) : 1
}

/**
 * Runs `run(client, part)` for part = 0..parts−1 at once, each on its own pooled connection inside
 * a read-only REPEATABLE READ transaction that imports the run's snapshot (pg_export_snapshot):
 * every part reads exactly what the run's transaction sees, so the split cannot mix two states of
 * the data. The parts only read; the caller writes through its one transaction, so the stage stays
 * all-or-nothing. On `signal` (SIGTERM) the parts' statements are cancelled on the server.
 * Returns null when the split is not possible here (a session-local read source the other
 * connections cannot see, or no free connections): the caller then reads on its own connection.
 */
export async function splitRead<T>(db: Db, tx: Q, o: { parts: number; signal: AbortSignal; settings?: string[] }, run: (c: Q, part: number) => Promise<T>): Promise<T[] | null> {
  if (o.parts < 2) return null
  // The runner's responses fallback is a temp view: only this session sees it.
  const temp = await tx.query<{ t: boolean }>(`SELECT to_regclass('pg_temp.seedops_attempt_base') IS NOT NULL AS t`)
  if (temp.rows[0]?.t) return null
  const pool = db.pool
  if (((pool.options as { max?: number }).max ?? 4) - pool.totalCount + pool.idleCount < o.parts + 1) return null
  const snapshot = (await tx.query<{ s: string }>('SELECT pg_export_snapshot() AS s')).rows[0]!.s
  const clients: pg.PoolClient[] = []
  const pids: number[] = []
  const onAbort = () => {
    for (const pid of pids) pool.query('SELECT pg_cancel_backend($1)', [pid]).catch(() => {})
  }
  o.signal.addEventListener('abort', onAbort)
  let failed = false
  try {
    for (let i = 0; i < o.parts; i++) clients.push(await pool.connect())
    const settled = await Promise.allSettled(
      clients.map(async (c, part) => {
        try {
          pids.push((await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid)
          await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY')
          // The snapshot id is the server's own output, never user input.
          await c.query(`SET TRANSACTION SNAPSHOT '${snapshot.replace(/'/g, "''")}'`)
          for (const s of o.settings ?? []) await c.query(s)
          if (o.signal.aborted) throw o.signal.reason
          const out = await run(c, part)
          await c.query('COMMIT')
          return out
        } catch (e) {
          // One part failed: the others' statements are pointless now.
          onAbort()
          throw e
        }
      }),
    )
    const bad = settled.find((r) => r.status === 'rejected')
    if (bad) throw bad.reason
    return settled.map((r) => (r as PromiseFulfilledResult<T>).value)
  } catch (e) {
    failed = true
    throw o.signal.aborted ? o.signal.reason : e
  } finally {
    o.signal.removeEventListener('abort', onAbort)
    // A failed part may leave its transaction open: drop those connections rather than reuse them.
    for (const c of clients) c.release(failed ? true : undefined)
  }
}
