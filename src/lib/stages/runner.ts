import { hostname } from 'node:os'
import type { Db } from '../db/index.js'
import { assertMigrated } from '../db/migrate.js'
import { SeedopsError, translateError, redact } from '../errors/index.js'
import type { Logger } from '../output/index.js'
import { seedopsVersion } from '../paths.js'
import type { Stage, StageRunReport } from './types.js'

/** Stages must do all their database work through ctx.tx (see runner). Same-process guard: on the embedded server all connections share one backend, where
 *  advisory locks cannot exclude each other. Cross-process exclusion there is the data-folder lock. */
const runningHere = new Set<string>()

export interface RunOptions {
  asOf: string
  dryRun: boolean
  logger: Logger
  env?: NodeJS.ProcessEnv
  signal?: AbortSignal
}

function lockKey(stageId: string, scope?: string): string {
  return scope === undefined ? `seedops:stage:${stageId}` : `seedops:stage:${stageId}:${scope}`
}

async function describeHolder(db: Db, stageId: string, scope?: string): Promise<string> {
  const r = await db.pool.query<{ id: number; host: string | null; pid: number | null; started_at: Date }>(
    `SELECT id, host, pid, started_at FROM seedops_stage_runs WHERE stage = $1 AND status = 'running' AND params->>'lockScope' IS NOT DISTINCT FROM $2 ORDER BY started_at DESC LIMIT 1`,
    [stageId, scope ?? null],
  )
  const h = r.rows[0]
  return h ? ` (run #${h.id} on ${h.host ?? '?'} pid ${h.pid ?? '?'}, started ${new Date(h.started_at).toISOString()})` : ''
}

function lockedError(stageId: string, holder: string): SeedopsError {
  return new SeedopsError(`another run of ${stageId} is in progress${holder}; refusing to run twice at once`, {
    code: 'STAGE_LOCKED',
    suggestions: [`Wait for it to finish, then check: seedops status`, `Stages take a Postgres advisory lock (the CronJobs' concurrencyPolicy: Forbid, for humans and CI too)`],
  })
}

/**
 * Runs one stage: advisory lock (transaction-scoped, so a killed process can never leave it
 * held), one transaction for every write (rolled back for --dry-run or on any error, so the
 * previous results stay intact), and a row in the run log with params, counts, status, error.
 */
export async function runStage<P, S>(db: Db, stage: Stage<P, S>, params: P, opts: RunOptions): Promise<StageRunReport<S>> {
  if (opts.dryRun && !stage.supportsDryRun) {
    throw new SeedopsError(`${stage.id} does not support --dry-run`, { code: 'USAGE', exitCode: 2 })
  }
  await assertMigrated(db)
  // A scoped lock (stage.lockScope) lets e.g. report shards run at once; the run log keeps the scope in params.lockScope.
  const scope = stage.lockScope?.(params)
  const key = lockKey(stage.id, scope)
  if (runningHere.has(key)) throw lockedError(stage.id, ' in this process')
  runningHere.add(key)
  const started = new Date()
  // One client for everything: on the embedded server a second connection cannot even start
  // while a transaction is open, so the lock, the run log and the writes share this session.
  const tx = await db.pool.connect()
  let runId: number | null = null
  let locked = false
  try {
    // Session-level lock: held for the whole run, released by the server if the process dies.
    const lock = await tx.query<{ ok: boolean }>(`SELECT pg_try_advisory_lock(hashtext($1)) AS ok`, [key])
    if (!lock.rows[0]?.ok) throw lockedError(stage.id, await describeHolder(db, stage.id, scope))
    locked = true
    // We hold the lock, so any 'running' row left for this stage (and scope) is from a killed process.
    await tx.query(
      `UPDATE seedops_stage_runs SET status = 'abandoned', finished_at = now(), error = 'process ended without finishing (killed?)' WHERE stage = $1 AND status = 'running' AND params->>'lockScope' IS NOT DISTINCT FROM $2`,
      [stage.id, scope ?? null],
    )
    const ins = await tx.query<{ id: number }>(
      `INSERT INTO seedops_stage_runs (stage, params, as_of, dry_run, status, host, pid, seedops_version)
       VALUES ($1, $2, $3, $4, 'running', $5, $6, $7) RETURNING id`,
      [stage.id, JSON.stringify(scope === undefined ? (params ?? {}) : { ...params, lockScope: scope }), opts.asOf, opts.dryRun, hostname(), process.pid, seedopsVersion()],
    )
    runId = ins.rows[0]!.id
    await tx.query('BEGIN')
    opts.logger.progress(`${stage.id}: run #${runId}, as of ${opts.asOf}${opts.dryRun ? ' (dry run: nothing will be written)' : ''}`)
    const controller = new AbortController()
    opts.signal?.addEventListener('abort', () => controller.abort(opts.signal?.reason))
    const result = await stage.run(params, {
      db,
      tx,
      logger: opts.logger,
      signal: controller.signal,
      asOf: opts.asOf,
      dryRun: opts.dryRun,
      env: opts.env ?? process.env,
      runId,
    })
    const hold = Number(process.env.SEEDOPS_TEST_HOLD_TX_MS ?? 0)
    if (hold > 0) {
      // Test aid only: keeps the transaction open after the writes so a test can kill the process mid-write.
      opts.logger.progress(`${stage.id}: holding transaction ${hold} ms (SEEDOPS_TEST_HOLD_TX_MS)`)
      await new Promise((r) => setTimeout(r, hold))
    }
    await tx.query(opts.dryRun ? 'ROLLBACK' : 'COMMIT')
    const finished = new Date()
    const status = result.failed ? 'failed' : 'succeeded'
    await tx.query(`UPDATE seedops_stage_runs SET status = $4, finished_at = $2, rows = $3, error = $5 WHERE id = $1`, [
      runId,
      finished,
      JSON.stringify(result.rows),
      status,
      result.failed ? redact(result.failed).slice(0, 4000) : null,
    ])
    for (const w of result.warnings ?? []) opts.logger.warn(w)
    return {
      stage: stage.id,
      runId,
      asOf: opts.asOf,
      dryRun: opts.dryRun,
      params,
      status,
      startedAt: started.toISOString(),
      finishedAt: finished.toISOString(),
      durationMs: finished.getTime() - started.getTime(),
      rows: result.rows,
      summary: result.summary,
      table: result.table,
      warnings: result.warnings ?? [],
    }
  } catch (e) {
    await tx.query('ROLLBACK').catch(() => {})
    const err = translateError(e)
    if (runId !== null) {
      await tx
        .query(`UPDATE seedops_stage_runs SET status = 'failed', finished_at = now(), error = $2 WHERE id = $1`, [runId, redact(err.message).slice(0, 4000)])
        .catch(() => {})
    }
    throw err
  } finally {
    if (locked) await tx.query(`SELECT pg_advisory_unlock(hashtext($1))`, [key]).catch(() => {})
    tx.release()
    runningHere.delete(key)
  }
}
