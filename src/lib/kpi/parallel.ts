import type pg from 'pg'
import { resolveInt } from '../config/index.js'
import { inSnapshotParts } from '../db/snapshot-parts.js'
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
 * Runs `run(client, part)` for part = 0..parts−1 at once on pooled connections, each in a
 * read-only transaction on the run's snapshot (db/snapshot-parts.ts). Returns null when the split
 * is not possible here (a session-local read source, or no free connections): the caller then
 * reads on its own connection.
 */
export async function splitRead<T>(db: Db, tx: Q, o: { parts: number; signal: AbortSignal; settings?: string[] }, run: (c: Q, part: number) => Promise<T>): Promise<T[] | null> {
  return inSnapshotParts(db, tx, { ...o, connections: 'pool' }, (c, part) => run(c, part))
}
