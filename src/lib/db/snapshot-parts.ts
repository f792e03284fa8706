import pg from 'pg'
import type { Db } from './index.js'

type Q = Pick<pg.ClientBase, 'query'>

/** What a part threw because another part failed first (never the error reported). */
export const STOPPED = new Error('stopped: another read part failed')
const QUERY_CANCELED = '57014'

export interface SnapshotPartsOptions {
  parts: number
  /** SIGTERM: cancels every part's statement on the server and fails the read with its reason. */
  signal: AbortSignal
  /**
   * 'pool': borrow the parts' connections from the pool (null when it has fewer than parts + 1
   * free: the runner keeps one for its own cancel). 'own': new connections with the pool's
   * settings, closed before this returns, so the pool's few stay free for the runner.
   */
  connections: 'pool' | 'own'
  /** application_name of 'own' connections (part numbers are appended). */
  name?: string
  /** Statements run in each part's transaction before `run` (SET LOCAL …). */
  settings?: string[]
}

/** Lets `run` stop the other parts (cancelAll) and notice that another part failed (check throws STOPPED). */
export interface PartControl {
  cancelAll(): void
  check(): void
}

/**
 * One big read split into `parts` at once, all reading exactly what the run's transaction `tx`
 * sees: `tx` exports its snapshot (pg_export_snapshot) and each part runs in a read-only
 * REPEATABLE READ transaction that imports it. The parts only read; the caller writes through its
 * one transaction, so a stage stays all-or-nothing. A failing part (or `signal`) cancels the
 * others' statements on the server; the error reported is the first real one, not the
 * cancellations it caused. Returns null when the split is not possible here: the runner's
 * session-local read source (a temp view the other connections cannot see), or, with pooled
 * connections, too few free ones. Used by compute-kpis and calibrate-irt.
 */
export async function inSnapshotParts<T>(db: Db, tx: Q, o: SnapshotPartsOptions, run: (c: Q, part: number, ctl: PartControl) => Promise<T>): Promise<T[] | null> {
  if (o.parts < 2 || db.kind !== 'postgres') return null
  const temp = await tx.query<{ t: boolean }>(`SELECT to_regclass('pg_temp.seedops_attempt_base') IS NOT NULL AS t`)
  if (temp.rows[0]?.t) return null
  const pool = db.pool
  if (o.connections === 'pool' && ((pool.options as { max?: number }).max ?? 4) - pool.totalCount + pool.idleCount < o.parts + 1) return null
  const snapshot = (await tx.query<{ s: string }>('SELECT pg_export_snapshot() AS s')).rows[0]!.s
  const pooled: pg.PoolClient[] = []
  const own: pg.Client[] = []
  const pids: number[] = []
  let cancelled = false
  const ctl: PartControl = {
    cancelAll() {
      if (cancelled) return
      cancelled = true
      for (const pid of pids) pool.query('SELECT pg_cancel_backend($1)', [pid]).catch(() => {})
    },
    // A cancel reaching an idle session is ignored by the server: parts check between statements.
    check() {
      if (cancelled) throw STOPPED
    },
  }
  const onAbort = () => ctl.cancelAll()
  o.signal.addEventListener('abort', onAbort)
  let failed = false
  try {
    const settled = await Promise.allSettled(
      Array.from({ length: o.parts }, async (_, part) => {
        try {
          let c: pg.ClientBase
          if (o.connections === 'pool') {
            const p = await pool.connect()
            pooled.push(p)
            c = p
          } else {
            const n = new pg.Client({ ...(pool.options as pg.ClientConfig), application_name: `${o.name ?? 'seedops read'} ${part + 1}/${o.parts}` })
            own.push(n)
            // An error on an idle connection (the server going away) surfaces on the next query instead.
            n.on('error', () => {})
            await n.connect()
            c = n
          }
          pids.push((await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid)
          ctl.check()
          await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY')
          // The snapshot id is the server's own output, never user input.
          await c.query(`SET TRANSACTION SNAPSHOT '${snapshot.replace(/'/g, "''")}'`)
          for (const s of o.settings ?? []) await c.query(s)
          ctl.check()
          if (o.signal.aborted) throw o.signal.reason
          const out = await run(c, part, ctl)
          await c.query('COMMIT')
          return out
        } catch (e) {
          // This part failed: the others' statements are pointless now.
          ctl.cancelAll()
          throw e
        }
      }),
    )
    if (o.signal.aborted) throw o.signal.reason
    const bad = settled.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason)
    if (bad.length) throw bad.find((e) => e !== STOPPED && (e as { code?: string }).code !== QUERY_CANCELED) ?? bad[0]
    return settled.map((r) => (r as PromiseFulfilledResult<T>).value)
  } catch (e) {
    failed = true
    throw e
  } finally {
    o.signal.removeEventListener('abort', onAbort)
    // A failed part may leave its transaction open: drop those pooled connections rather than reuse
    // them. Ending an own session rolls back whatever it left open; none outlives the read.
    for (const c of pooled) c.release(failed ? true : undefined)
    await Promise.allSettled(own.map((c) => c.end()))
  }
}
