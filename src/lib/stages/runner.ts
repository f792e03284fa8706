import { hostname } from 'node:os'
import type pg from 'pg'
import type { Db } from '../db/index.js'
import { assertMigrated } from '../db/migrate.js'
import { chooseRunSource, DROP_RUN_SOURCE } from '../db/read-source.js'
import { EXIT, SeedopsError, translateError, redact } from '../errors/index.js'
import { pushIfConfigured, type RunOutcome } from '../metrics/push.js'
import { withBindings, type Logger } from '../output/index.js'
import { seedopsVersion } from '../paths.js'
import { resolveRunSettings, type RunnerOptions, type RunSettings } from './options.js'
import { runningRun, type StageRun } from './run-log.js'
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
  /** Install SIGTERM/SIGINT handlers for the run (default true; false inside a service that handles signals itself). */
  handleSignals?: boolean
  /** Push the run's metrics when PUSHGATEWAY_URL is set (default true; false inside a service that has its own /metrics). */
  pushMetrics?: boolean
  /** Lock wait and session timeouts as given (flags: `30s`, `2m`), resolved for each stage with its env twins and defaults (resolveRunSettings). */
  runnerOptions?: RunnerOptions
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

/** The session's name while it runs a stage: what pg_stat_activity shows, and how a waiting run finds the lock holder's run. */
const appName = (runId: number | string) => `seedops run#${runId} ${process.pid}@${hostname()}`.slice(0, 63)
const APP_RUN_ID = /^seedops run#(\d+) /

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'
  }
}

interface Holder {
  run?: StageRun
  /** The holder's backend on a real server (pg_locks). */
  backendPid?: number
  backendState?: string
  /** Why its process is known to be gone, or undefined when it may be alive. */
  gone?: string
}

/** The backend that holds an advisory lock on hashtext(key) (a bigint split into classid, objid in pg_locks). */
const HOLDER_SQL = `
SELECT l.pid, a.state, a.application_name
  FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
 WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
   AND ((l.classid::bigint << 32) | l.objid::bigint) = hashtext($1)::bigint
 LIMIT 1`

/**
 * Who holds the stage lock: the backend (a real server), its run in the log (by the session's
 * application_name, else the stage's newest 'running' row), and whether that run's process is gone.
 * Gone is only known for a run on this host (its pid no longer exists: killed, OOM, the container
 * restarted). On another host a disconnected client is found by the server, which ends its backend
 * within client_connection_check_interval when the holder set it (every stage session does).
 */
async function findHolder(db: Db, q: { query: Db['pool']['query'] }, stageId: string, key: string, scope?: string): Promise<Holder> {
  const h: Holder = {}
  let runId: string | undefined
  if (db.kind === 'postgres') {
    const b = (await q.query<{ pid: number; state: string | null; application_name: string | null }>(HOLDER_SQL, [key])).rows[0]
    if (b) {
      h.backendPid = b.pid
      h.backendState = b.state ?? undefined
      runId = APP_RUN_ID.exec(b.application_name ?? '')?.[1]
    }
  }
  const newest = await runningRun(q as Db['pool'], stageId, scope ?? null)
  h.run = newest && (runId === undefined || newest.id === runId) ? newest : undefined
  if (h.run?.pid != null && h.run.host === hostname() && h.run.pid !== process.pid && !pidAlive(h.run.pid)) {
    h.gone = `its process ${h.run.pid} on ${h.run.host} is gone`
  }
  return h
}

function describeHolder(h: Holder): string {
  const r = h.run
  const run = r ? `run #${r.id} on ${r.host ?? '?'} pid ${r.pid ?? '?'}, started ${r.startedAt.toISOString()}` : undefined
  const backend = h.backendPid !== undefined ? `backend ${h.backendPid}${h.backendState ? ` ${h.backendState}` : ''}` : undefined
  const parts = [run, backend].filter(Boolean)
  return parts.length ? ` (${parts.join('; ')})` : ''
}

/** "host:port/db" of a real server (never the user or password), or the embedded folder. */
export function targetOf(db: Pick<Db, 'kind' | 'target'>): string {
  if (db.kind !== 'postgres') return db.target
  try {
    const u = new URL(db.target)
    return `${u.hostname}:${u.port || '5432'}${u.pathname}`
  } catch {
    return 'the configured server'
  }
}

/** Errors that mean the session (or the server) went away, not that a statement was wrong. */
const CONNECTION_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND', '57P01', '57P02', '57P03'])
function isConnectionError(e: unknown): boolean {
  const x = e as { code?: string; message?: string } | null
  if (!x || typeof x !== 'object') return false
  if (x.code && (CONNECTION_CODES.has(x.code) || x.code.startsWith('08'))) return true
  return /Connection terminated|terminating connection|Client has encountered a connection error|Client was closed|not queryable/i.test(x.message ?? '')
}

const fmtMs = (ms: number) => (ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`)

/**
 * What went wrong, said for a stage run: a timeout names the setting and how to change it; a lost
 * or refused connection names the server (host:port/db, no password) and what happened to the writes.
 */
export function explainFailure(e: unknown, stageId: string, db: Db, settings: RunSettings, phase: 'connect' | 'run' | 'commit'): SeedopsError | undefined {
  if (e instanceof SeedopsError) return undefined
  const x = e as { code?: string; message?: string } | null
  const own = stageId.toUpperCase().replace(/[^A-Z0-9]+/g, '_')
  const msg = redact(x?.message ?? String(e))
  if (x?.code === '57014' && /statement timeout/i.test(msg)) {
    return new SeedopsError(`${stageId}: a statement ran longer than statement_timeout ${settings.statementTimeoutMs !== undefined ? fmtMs(settings.statementTimeoutMs) : '(the server\'s setting)'}; rolled back, nothing written`, {
      code: 'STATEMENT_TIMEOUT',
      suggestions: [`Allow longer: --statement-timeout 10m, or env SEEDOPS_${own}_STATEMENT_TIMEOUT / SEEDOPS_STATEMENT_TIMEOUT (0: no limit)`, 'The previous results are intact; re-run when ready'],
      cause: e,
    })
  }
  if (x?.code === '55P03' && /lock timeout/i.test(msg)) {
    return new SeedopsError(`${stageId}: waited longer than lock_timeout ${settings.lockTimeoutMs !== undefined ? fmtMs(settings.lockTimeoutMs) : '(the server\'s setting)'} for a table lock another session holds; rolled back, nothing written`, {
      code: 'LOCK_TIMEOUT',
      suggestions: [`See who holds it: SELECT * FROM pg_locks WHERE NOT granted`, `Allow longer: --lock-timeout 1m, or env SEEDOPS_${own}_LOCK_TIMEOUT / SEEDOPS_LOCK_TIMEOUT`],
      cause: e,
    })
  }
  if (!isConnectionError(e)) return undefined
  const where = targetOf(db)
  if (phase === 'connect') {
    return new SeedopsError(`${stageId}: database unreachable at ${where}: ${msg}`, {
      code: 'DB_UNREACHABLE',
      suggestions: ['Check DATABASE_URL (host, port, database) and that the server is up and accepting connections', 'From the cluster: seedops doctor --only database'],
      cause: e,
    })
  }
  const writes = phase === 'commit' ? 'the connection was lost during COMMIT, so the server either committed the whole run or none of it' : 'the transaction was not committed, so the server rolled it back: nothing written'
  return new SeedopsError(`${stageId}: lost the connection to the database at ${where} (${msg}); ${writes}`, {
    code: 'DB_CONNECTION_LOST',
    suggestions: ['Re-run the stage once the server is back (runs are idempotent; the next run marks this one abandoned)', 'seedops status shows the last successful run'],
    cause: e,
  })
}

function lockedError(stageId: string, holder: string): SeedopsError {
  return new SeedopsError(`another run of ${stageId} is in progress${holder}; refusing to run twice at once`, {
    code: 'STAGE_LOCKED',
    suggestions: [`Wait for it to finish, then check: seedops status`, `Stages take a Postgres advisory lock (the CronJobs' concurrencyPolicy: Forbid, for humans and CI too)`],
  })
}

/** How often the server checks, while a stage's statement runs, that the client is still there (PG ≥ 14). */
export const CLIENT_CHECK_INTERVAL_MS = 1000

const RESET_SESSION = 'RESET statement_timeout; RESET lock_timeout; RESET application_name; RESET client_connection_check_interval'

/**
 * A stage session's settings on a real server: the timeouts asked for, and client_connection_check_interval
 * so that a killed client's backend stops its statement (and frees the stage lock) within a second
 * instead of running it to its end. PG < 14 has no such setting: there the backend runs on.
 */
async function applySessionSettings(tx: pg.PoolClient, settings: RunSettings): Promise<void> {
  const v = Number((await tx.query<{ v: string }>(`SELECT current_setting('server_version_num') AS v`)).rows[0]?.v ?? 0)
  if (v >= 140000) await tx.query(`SELECT set_config('client_connection_check_interval', $1, false)`, [String(CLIENT_CHECK_INTERVAL_MS)])
  if (settings.statementTimeoutMs !== undefined) await tx.query(`SELECT set_config('statement_timeout', $1, false)`, [String(settings.statementTimeoutMs)])
  if (settings.lockTimeoutMs !== undefined) await tx.query(`SELECT set_config('lock_timeout', $1, false)`, [String(settings.lockTimeoutMs)])
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
  const settings = resolveRunSettings(stage.id, opts.runnerOptions ?? {}, opts.env ?? process.env)
  try {
    await assertMigrated(db)
  } catch (e) {
    throw explainFailure(e, stage.id, db, settings, 'connect') ?? e
  }
  // A scoped lock (stage.lockScope) lets e.g. report shards run at once; the run log keeps the scope in params.lockScope.
  const scope = stage.lockScope?.(params)
  const key = lockKey(stage.id, scope)
  const waitUntil = Date.now() + (stage.lockWaitMs ?? 0)
  const goneWaitUntil = Date.now() + settings.lockWaitMs
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
  let tx: pg.PoolClient
  try {
    tx = await db.pool.connect()
  } catch (e) {
    runningHere.delete(key)
    throw explainFailure(e, stage.id, db, settings, 'connect') ?? e
  }
  // A lost connection is an error of the statement in flight; without a listener the client's own
  // 'error' event would end the process before the run could say what happened.
  let connectionLost = false
  const onClientError = () => void (connectionLost = true)
  tx.on('error', onClientError)
  let phase: 'run' | 'commit' = 'run'
  let sessionSet = false
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
    if (db.kind === 'postgres') {
      await applySessionSettings(tx, settings)
      sessionSet = true
    } else if (settings.statementTimeoutMs || settings.lockTimeoutMs) {
      log.debug(`${stage.id}: statement_timeout/lock_timeout are not enforced by the embedded database`)
    }
    // pg_try_advisory_lock is session-level, not transaction-scoped: taken before BEGIN on this one
    // connection, it outlives COMMIT/ROLLBACK (the run-log updates after the transaction still run
    // under it) and is released by pg_advisory_unlock in `finally`, or by the server when the
    // session ends (a killed process). Polled, not blocking, so lockWaitMs bounds the wait.
    // A killed client's backend goes on with its statement (the server notices the client is gone
    // at the next client_connection_check_interval, or only when the statement ends on PG < 14) and
    // holds the lock meanwhile: when the holder's process is known to be gone, wait for it up to
    // settings.lockWaitMs (--lock-wait) instead of refusing a retry; a live holder is refused at once.
    let waitingFor: string | undefined
    let recheck = 0
    for (;;) {
      const lock = await tx.query<{ ok: boolean }>(`SELECT pg_try_advisory_lock(hashtext($1)) AS ok`, [key])
      if (lock.rows[0]?.ok) break
      const now = Date.now()
      if (now < waitUntil) {
        await sleep(LOCK_POLL_MS)
        continue
      }
      const holder = await findHolder(db, tx, stage.id, key, scope)
      // The holder finished between our try and our look (no run left 'running'): try the lock again before refusing.
      if (!holder.run && recheck++ < 3) continue
      if (holder.gone && now < goneWaitUntil) {
        const id = `${holder.run?.id}/${holder.backendPid}`
        if (waitingFor !== id) {
          waitingFor = id
          log.warn(
            `${stage.id}: the lock is held by run #${holder.run?.id}, but ${holder.gone}${holder.backendPid !== undefined ? ` (its backend ${holder.backendPid} is still ${holder.backendState ?? 'finishing'})` : ''}: waiting up to ${fmtMs(settings.lockWaitMs)} for the server to release it (--lock-wait)`,
          )
        }
        await sleep(LOCK_POLL_MS * 4)
        continue
      }
      const why = holder.gone ? `; ${holder.gone}, but the lock was still held after waiting ${fmtMs(settings.lockWaitMs)} (--lock-wait)` : ''
      throw lockedError(stage.id, describeHolder(holder) + why)
    }
    locked = true
    if (waitingFor) log.info(`${stage.id}: lock released by the gone run; going on`)
    // We hold the lock, so any 'running' row left for this stage (and scope) is from a process that
    // is gone (killed, or its connection lost): its session, and so its lock and its transaction, ended.
    await tx.query(
      `UPDATE seedops_stage_runs SET status = 'abandoned', finished_at = now(),
              error = 'process ' || coalesce(pid::text, '?') || ' on ' || coalesce(host, '?') || ' ended without finishing (killed, or its connection was lost); found by the next run, which held the lock: nothing of it was committed'
        WHERE stage = $1 AND status = 'running' AND params->>'lockScope' IS NOT DISTINCT FROM $2`,
      [stage.id, scope ?? null],
    )
    const ins = await tx.query<{ id: number }>(
      `INSERT INTO seedops_stage_runs (stage, params, as_of, dry_run, status, host, pid, seedops_version)
       VALUES ($1, $2, $3, $4, 'running', $5, $6, $7) RETURNING id`,
      [stage.id, JSON.stringify(scope === undefined ? (params ?? {}) : { ...params, lockScope: scope }), opts.asOf, opts.dryRun, hostname(), process.pid, seedopsVersion()],
    )
    runId = ins.rows[0]!.id
    if (db.kind === 'postgres') await tx.query(`SELECT set_config('application_name', $1, false)`, [appName(runId)])
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
    const status = result.failed ? 'failed' : 'succeeded'
    let finished = new Date()
    const markDone = () =>
      tx.query(`UPDATE seedops_stage_runs SET status = $4, finished_at = $2, rows = $3, error = $5 WHERE id = $1`, [
        runId,
        finished,
        JSON.stringify(result.rows),
        status,
        result.failed ? redact(result.failed).slice(0, 4000) : null,
      ])
    // Only a connection that was alive when COMMIT went out leaves the outcome in doubt.
    if (!connectionLost) phase = 'commit'
    if (opts.dryRun) {
      await tx.query('ROLLBACK')
      await markDone()
    } else {
      // The run's row says succeeded in the same transaction as its writes: a process killed after
      // COMMIT leaves a 'succeeded' run, one killed before leaves 'running' (abandoned by the next run).
      await markDone()
      await tx.query('COMMIT')
    }
    phase = 'run'
    await flushAfter()
    finished = new Date()
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
    const err = explainFailure(e, stage.id, db, settings, phase) ?? translateError(e)
    if (err.code === 'DB_CONNECTION_LOST' || err.code === 'DB_UNREACHABLE') connectionLost = true
    if (runId !== null) {
      const markSql = `UPDATE seedops_stage_runs SET status = 'failed', finished_at = now(), error = $2 WHERE id = $1 AND status = 'running'`
      const markValues = [runId, redact(err.message).slice(0, 4000)]
      // The run's session is gone: try a new one (the server may be back already); else the next run marks it abandoned.
      const marked = await (connectionLost ? db.pool.query(markSql, markValues) : tx.query(markSql, markValues)).then(() => true, () => false)
      if (!marked && connectionLost) log.warn(`${stage.id}: could not record run #${runId} as failed (the database is not reachable); the next run will mark it abandoned`)
      await finish('failed', new Date())
    }
    throw err
  } finally {
    if (watchdog) clearTimeout(watchdog)
    process.off('SIGTERM', onTerm)
    process.off('SIGINT', onInt)
    // The session-local view must not outlive the run (the embedded server has one session for all).
    if (!connectionLost) {
      if (shadowed) await tx.query(DROP_RUN_SOURCE).catch(() => {})
      if (locked) await tx.query(`SELECT pg_advisory_unlock(hashtext($1))`, [key]).catch(() => {})
      // The pooled connection goes back as it came (the service runs many stages on one pool).
      if (sessionSet) await tx.query(RESET_SESSION).catch(() => {})
    }
    tx.off('error', onClientError)
    // A broken connection is closed, not handed back to the pool.
    tx.release(connectionLost ? true : undefined)
    runningHere.delete(key)
  }
}
