import { hostname } from 'node:os'
import type { Db } from '../db/index.js'
import { assertMigrated } from '../db/migrate.js'
import { chooseRunSource, DROP_RUN_SOURCE } from '../db/read-source.js'
import { EXIT, SeedopsError, translateError, redact } from '../errors/index.js'
import { pushIfConfigured, type RunOutcome } from '../metrics/push.js'
import { withBindings, type Logger } from '../output/index.js'
import { seedopsVersion } from '../paths.js'
import type { Stage, StageRunReport } from './types.js'
import { runningRun } from './run-log.js'

/** Stages must do all their database work through ctx.tx (see runner). Same-process guard: on the embedded server all connections share one backend, where
 *  advisory locks cannot exclude each other. Cross-process exclusion there is the data-folder lock. */
const runningHere = new Set<string>()

export interface RunOptions {
  asOf: string
  dryRun: boolean
  logger: Logger
  env?: NodeJS.ProcessEnv
  signal?: AbortSignal
  /** Install SIGTERM/SIGINT handlers for the run (default true; false inside a service that handles signals itself). */
  handleSignals?: boolean
  /** Push the run's metrics when PUSHGATEWAY_URL is set (default true; false inside a service that has its own /metrics). */
  pushMetrics?: boolean
}

/** How long a stage gets to stop after SIGTERM/SIGINT before the runner ends the process itself (a pod's grace period is 30 s by default). */
export const CANCEL_GRACE_MS = 4000

const SIGNAL_EXIT = { SIGTERM: EXIT.SIGTERM, SIGINT: EXIT.SIGINT } as const

function cancelledError(stageId: string, runId: number | null, sig: 'SIGTERM' | 'SIGINT', how: string): SeedopsError {
  return new SeedopsError(`${stageId}${runId !== null ? ` run #${runId}` : ''} cancelled by ${sig}: ${how}`, {
    code: 'CANCELLED',
    exitCode: SIGNAL_EXIT[sig],
    suggestions: ['The previous results are intact; run the stage again when ready (seedops status shows the cancelled run)'],
  })
}

const LOCK_POLL_MS = 50
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

function lockKey(stageId: string, scope?: string): string {
  return scope === undefined ? `seedops:stage:${stageId}` : `seedops:stage:${stageId}:${scope}`
}

async function describeHolder(db: Db, stageId: string, scope?: string): Promise<string> {
  const h = await runningRun(db.pool, stageId, scope ?? null)
  return h ? ` (run #${h.id} on ${h.host ?? '?'} pid ${h.pid ?? '?'}, started ${h.startedAt.toISOString()})` : ''
}

function lockedError(stageId: string, holder: string): SeedopsError {
  return new SeedopsError(`another run of ${stageId} is in progress${holder}; refusing to run twice at once`, {
    code: 'STAGE_LOCKED',
    suggestions: [`Wait for it to finish, then check: seedops status`, `Stages take a Postgres advisory lock (the CronJobs' concurrencyPolicy: Forbid, for humans and CI too)`],
  })
}

/**
 * Runs one stage: advisory lock (session-level on the run's one connection, taken before the
 * transaction and released after it, so a killed process can never leave it held), one transaction for every write (rolled back for --dry-run or on any error, so the
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
  const waitUntil = Date.now() + (stage.lockWaitMs ?? 0)
  while (runningHere.has(key)) {
    if (Date.now() >= waitUntil) throw lockedError(stage.id, ' in this process')
    await sleep(LOCK_POLL_MS)
  }
  runningHere.add(key)
  const started = new Date()
  // JSON log lines carry the stage, and the run id once there is one.
  let log = withBindings(opts.logger, { stage: stage.id })
  // One client for everything: on the embedded server a second connection cannot even start
  // while a transaction is open, so the lock, the run log and the writes share this session.
  const tx = await db.pool.connect()
  let runId: number | null = null
  let locked = false
  let shadowed = false
  // SIGTERM (a pod being stopped) and SIGINT (Ctrl-C): abort the stage, cancel its statement,
  // roll back, record the run as cancelled, exit 143/130. Node's default would kill the process
  // with the run left 'running' until the next run marks it abandoned.
  let cancelled: 'SIGTERM' | 'SIGINT' | undefined
  let backendPid: number | undefined
  let watchdog: NodeJS.Timeout | undefined
  const controller = new AbortController()
  const onSignal = (sig: 'SIGTERM' | 'SIGINT') => {
    if (cancelled) return
    cancelled = sig
    log.warn(`${stage.id}: ${sig} received: cancelling${runId !== null ? ` run #${runId}` : ''} and rolling back`)
    controller.abort(cancelledError(stage.id, runId, sig, 'rolled back'))
    // The statement in flight is cancelled from a second session (a real server only: the
    // embedded one runs each statement to its end on this process's one backend).
    if (db.kind === 'postgres' && backendPid !== undefined) db.pool.query('SELECT pg_cancel_backend($1)', [backendPid]).catch(() => {})
    watchdog = setTimeout(() => void forceExit(sig), CANCEL_GRACE_MS)
    watchdog.unref()
  }
  /** The stage did not stop in time (a long computation between statements): end the session and the process. */
  const forceExit = async (sig: 'SIGTERM' | 'SIGINT') => {
    log.warn(`${stage.id}: did not stop within ${CANCEL_GRACE_MS / 1000} s of ${sig}; ending the session (the server rolls back) and exiting`)
    if (db.kind === 'postgres' && backendPid !== undefined) {
      await db.pool.query('SELECT pg_terminate_backend($1)', [backendPid]).catch(() => {})
      if (runId !== null) {
        await db.pool
          .query(`UPDATE seedops_stage_runs SET status = 'cancelled', finished_at = now(), error = $2 WHERE id = $1 AND status = 'running'`, [runId, `cancelled by ${sig} (session ended after ${CANCEL_GRACE_MS / 1000} s)`])
          .catch(() => {})
      }
    }
    process.exit(SIGNAL_EXIT[sig])
  }
  const onTerm = () => onSignal('SIGTERM')
  const onInt = () => onSignal('SIGINT')
  if (opts.handleSignals !== false) {
    process.on('SIGTERM', onTerm)
    process.on('SIGINT', onInt)
  }
  // After a signal every further statement of the stage fails at once instead of running.
  const guarded = new Proxy(tx, {
    get(target, prop, receiver) {
      if (prop === 'query') {
        return (...args: unknown[]) => (cancelled ? Promise.reject(controller.signal.reason) : (target.query as (...a: unknown[]) => unknown)(...args))
      }
      const v = Reflect.get(target, prop, receiver) as unknown
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v
    },
  })
  // Statements a stage queued with ctx.recordAfter: run after COMMIT/ROLLBACK, each in autocommit.
  const after: { sql: string; values?: unknown[] }[] = []
  /** After the run log row is final: a JSON log record of the outcome, and the Pushgateway push (a failure there only warns). */
  const finish = async (outcome: RunOutcome, finishedAt: Date, rows?: Record<string, number>) => {
    log.event?.(`${stage.id}: run #${runId} ${outcome}`, { outcome, dryRun: opts.dryRun, durationMs: finishedAt.getTime() - started.getTime(), ...(rows ? { rows } : {}) })
    if (opts.pushMetrics === false) return
    await pushIfConfigured({ stage: stage.id, outcome, startedAt: started, finishedAt, rows, lockScope: scope }, { logger: log, env: opts.env, dryRun: opts.dryRun })
  }
  const flushAfter = async () => {
    if (opts.dryRun || cancelled) return
    for (const a of after.splice(0)) {
      await tx.query(a.sql, a.values).catch((e: unknown) => log.warn(`${stage.id}: could not record after the transaction: ${translateError(e).message}`))
    }
  }
  try {
    backendPid = (await tx.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]?.pid
    // pg_try_advisory_lock is session-level, not transaction-scoped: taken before BEGIN on this one
    // connection, it outlives COMMIT/ROLLBACK (the run-log updates after the transaction still run
    // under it) and is released by pg_advisory_unlock in `finally`, or by the server when the
    // session ends (a killed process). Polled, not blocking, so lockWaitMs bounds the wait.
    for (;;) {
      const lock = await tx.query<{ ok: boolean }>(`SELECT pg_try_advisory_lock(hashtext($1)) AS ok`, [key])
      if (lock.rows[0]?.ok) break
      if (Date.now() >= waitUntil) throw lockedError(stage.id, await describeHolder(db, stage.id, scope))
      await sleep(LOCK_POLL_MS)
    }
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
    log = withBindings(opts.logger, { stage: stage.id, runId })
    await tx.query('BEGIN')
    log.progress(`${stage.id}: run #${runId}, as of ${opts.asOf}${opts.dryRun ? ' (dry run: nothing will be written)' : ''}`)
    // SPEC's read order: the attempt read model over exam_results, else the platform's responses.
    const source = await chooseRunSource(tx)
    shadowed = source.shadow
    if (source.source === 'responses') log.progress(`${stage.id}: reading attempts from responses (exam_results holds no rows): a learner's day is a session; no times, hints or topics but question.topic_id`)
    else log.debug(`${stage.id}: reading attempts from exam_results.result_json (the attempt read model)`)
    opts.signal?.addEventListener('abort', () => controller.abort(opts.signal?.reason))
    const result = await stage.run(params, {
      db,
      tx: guarded,
      logger: log,
      signal: controller.signal,
      asOf: opts.asOf,
      dryRun: opts.dryRun,
      env: opts.env ?? process.env,
      runId,
      recordAfter: (sql, values) => void after.push({ sql, values }),
    })
    const sleepSql = Number(process.env.SEEDOPS_TEST_SLEEP_SQL_S ?? 0)
    if (sleepSql > 0) {
      // Test aid only: a long statement inside the transaction, for the signal test's cancel path.
      log.progress(`${stage.id}: running a ${sleepSql} s statement (SEEDOPS_TEST_SLEEP_SQL_S)`)
      await guarded.query('SELECT pg_sleep($1)', [sleepSql])
    }
    const hold = Number(process.env.SEEDOPS_TEST_HOLD_TX_MS ?? 0)
    if (hold > 0) {
      // Test aid only: keeps the transaction open after the writes so a test can kill the process mid-write.
      log.progress(`${stage.id}: holding transaction ${hold} ms (SEEDOPS_TEST_HOLD_TX_MS)`)
      await new Promise<void>((r) => {
        const t = setTimeout(r, hold)
        controller.signal.addEventListener('abort', () => (clearTimeout(t), r()))
      })
    }
    // A signal that came while the stage finished still wins: nothing is committed.
    if (cancelled) throw controller.signal.reason
    await tx.query(opts.dryRun ? 'ROLLBACK' : 'COMMIT')
    await flushAfter()
    const finished = new Date()
    const status = result.failed ? 'failed' : 'succeeded'
    await tx.query(`UPDATE seedops_stage_runs SET status = $4, finished_at = $2, rows = $3, error = $5 WHERE id = $1`, [
      runId,
      finished,
      JSON.stringify(result.rows),
      status,
      result.failed ? redact(result.failed).slice(0, 4000) : null,
    ])
    for (const w of result.warnings ?? []) log.warn(w)
    await finish(status, finished, result.rows)
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
    await flushAfter()
    if (cancelled) {
      if (runId !== null) {
        await tx.query(`UPDATE seedops_stage_runs SET status = 'cancelled', finished_at = now(), error = $2 WHERE id = $1`, [runId, `cancelled by ${cancelled}`]).catch(() => {})
        // The stage has stopped: the watchdog's work is done, and the push has its own timeout.
        if (watchdog) clearTimeout(watchdog)
        await finish('cancelled', new Date())
      }
      throw cancelledError(stage.id, runId, cancelled, 'rolled back, the previous results are intact')
    }
    const err = translateError(e)
    if (runId !== null) {
      await tx
        .query(`UPDATE seedops_stage_runs SET status = 'failed', finished_at = now(), error = $2 WHERE id = $1`, [runId, redact(err.message).slice(0, 4000)])
        .catch(() => {})
      await finish('failed', new Date())
    }
    throw err
  } finally {
    if (watchdog) clearTimeout(watchdog)
    process.off('SIGTERM', onTerm)
    process.off('SIGINT', onInt)
    // The session-local view must not outlive the run (the embedded server has one session for all).
    if (shadowed) await tx.query(DROP_RUN_SOURCE).catch(() => {})
    if (locked) await tx.query(`SELECT pg_advisory_unlock(hashtext($1))`, [key]).catch(() => {})
    tx.release()
    runningHere.delete(key)
  }
}
