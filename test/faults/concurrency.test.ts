import { execFileSync } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync } from 'node:fs'
import { hostname, tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Db } from '../../src/lib/db/index.js'
import { openDb } from '../../src/lib/db/index.js'
import { runDemo } from '../../src/lib/demo/pipeline.js'
import { translateError } from '../../src/lib/errors/index.js'
import { silentLogger, type Logger } from '../../src/lib/output/index.js'
import { getStage, loadStages } from '../../src/lib/stages/all.js'
import { runWithPrerequisites } from '../../src/lib/stages/chain.js'
import { resolveStageParams } from '../../src/lib/stages/options.js'
import { runStage } from '../../src/lib/stages/runner.js'
import { runCli, spawnCli } from '../support/cli.js'
import { DB_KINDS, freshDatabase, type DbKind, type TestDatabase } from '../support/db.js'
import { waitForOutput } from '../support/fixtures.js'
import { tableChecksums } from './support/checksums.js'
import { record } from './support/table.js'

/**
 * Issue 13 item 3 (first half): two runs of every stage at once. The first holds its transaction
 * (SEEDOPS_TEST_HOLD_TX_MS) so the second surely starts while it runs: the second is refused at once
 * naming the holder (PostgreSQL: STAGE_LOCKED with run id, host, pid, start; embedded: the data
 * folder's lock naming the pid), the first succeeds, and the tables equal those of a single run.
 * And the stage lock when its holder's process is gone (item 1): the runner waits for it (--lock-wait),
 * refuses a live holder at once, and a killed run's statement does not keep the lock for its length.
 */

const AS_OF = '2026-03-18'
const NEXT = '2026-03-19'

const CASES: { id: string; args: (user: string, dir: string) => string[]; given: (user: string, dir: string) => Record<string, unknown> }[] = [
  { id: 'aggregate-features', args: () => [], given: () => ({}) },
  { id: 'calibrate-irt', args: () => ['--allow-non-converged'], given: () => ({ allowNonConverged: true }) },
  { id: 'compute-kpis', args: () => ['--target=0.5'], given: () => ({ target: 0.5 }) },
  { id: 'detect-inactivity', args: () => ['--threshold-days', '2', '--target=0.8'], given: () => ({ thresholdDays: 2, target: 0.8 }) },
  { id: 'generate-report', args: (_u, d) => ['--week', '2026-03-16', '--out-dir', d], given: (_u, d) => ({ week: '2026-03-16', outDir: d }) },
  { id: 'update-theta', args: (u) => ['--user', u], given: (u) => ({ user: u }) },
]

const env = process.env

async function demoDatabase(kind: DbKind): Promise<{ t: TestDatabase; user: string }> {
  const t = await freshDatabase(kind)
  const db = await t.open()
  try {
    await runDemo(db, { seed: { learners: 30, items: 30, days: 21, seed: 11 }, asOf: AS_OF, logger: silentLogger, historyWeeks: 0 })
    const user = (await db.pool.query<{ user_id: string }>(`SELECT user_id FROM exam_results ORDER BY user_id LIMIT 1`)).rows[0]!.user_id
    return { t, user }
  } finally {
    await db.close()
  }
}

/** A copy of a PostgreSQL test database (CREATE DATABASE … TEMPLATE), for "a single run" to compare with. */
async function pgCopy(url: string, suffix: string): Promise<string> {
  const base = new URL(url)
  const name = `${base.pathname.slice(1)}_${suffix}`
  const admin = new pg.Client({ connectionString: process.env.TEST_DATABASE_URL })
  await admin.connect()
  try {
    await admin.query(`CREATE DATABASE ${name} TEMPLATE ${base.pathname.slice(1)}`)
  } finally {
    await admin.end()
  }
  base.pathname = `/${name}`
  return base.toString()
}

describe.each(DB_KINDS)('two runs of every stage at once (%s)', (kind) => {
  let t: TestDatabase
  let user: string
  const dir = mkdtempSync(join(tmpdir(), 'seedops-conc-'))

  beforeAll(async () => {
    await loadStages()
    ;({ t, user } = await demoDatabase(kind))
  }, 300_000)
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  it('one is refused naming the holder, the other succeeds, the tables equal a single run', { timeout: 600_000 }, async () => {
    const started = Date.now()
    let ok = 0
    let waited = 0
    const problems: string[] = []
    // Embedded: the data folder's lock is the same for every stage; one stage shows it.
    for (const c of kind === 'postgres' ? CASES : CASES.filter((x) => x.id === 'compute-kpis')) {
      // The single run: the same stage on a copy (PostgreSQL), or the state the first run must reach.
      let single: Record<string, string> | undefined
      if (kind === 'postgres') {
        const url = await pgCopy(t.env.DATABASE_URL!, `c${CASES.indexOf(c)}`)
        const db = await openDb({ databaseUrl: url })
        try {
          const stage = getStage(c.id)!
          await runWithPrerequisites(db, stage, resolveStageParams(stage, c.given(user, dir), env), { asOf: NEXT, dryRun: false, logger: silentLogger, env, handleSignals: false, pushMetrics: false })
          single = await tableChecksums(db.pool)
        } finally {
          await db.close()
        }
      }
      const args = ['run', c.id, '--date', NEXT, ...c.args(user, dir)]
      // The second run must start while the first holds: a run in this process starts at once; a second CLI on the
      // embedded database (its data folder is one process's) needs the first to hold past its start (seconds on a busy machine).
      const first = spawnCli(args, { ...t.env, SEEDOPS_TEST_HOLD_TX_MS: kind === 'postgres' ? '4000' : '15000' })
      const firstClosed = once(first, 'close') as Promise<[number]>
      let firstErr = ''
      first.stderr.on('data', (d) => (firstErr += d))
      await waitForOutput(first.stderr, (s) => s.includes('holding transaction'), 180_000)
      const runId = /run #(\d+)/.exec(firstErr)?.[1]
      let second: { code: number | null; stderr: string }
      if (kind === 'postgres') {
        const db = await t.open()
        const stage = getStage(c.id)!
        try {
          const r = await runWithPrerequisites(db, stage, resolveStageParams(stage, c.given(user, dir), env), { asOf: NEXT, dryRun: false, logger: silentLogger, env, handleSignals: false, pushMetrics: false })
          second = { code: r.report.status === 'succeeded' ? 0 : 1, stderr: '' }
        } catch (e) {
          const err = translateError(e)
          second = { code: err.exitCode, stderr: `${err.code}: ${err.message}` }
        } finally {
          await db.close()
        }
      } else second = await runCli(args, { env: t.env })
      const [code] = await firstClosed
      const holder = kind === 'postgres' ? new RegExp(`STAGE_LOCKED[\\s\\S]*another run of ${c.id} is in progress \\(run #${runId} on ${hostname()} pid ${first.pid}, started \\d{4}-\\d\\d-\\d\\dT`) : new RegExp(`in use by another seedops process \\(pid ${first.pid}:`)
      const mine: string[] = []
      if (code !== 0) mine.push(`first exited ${code}: ${firstErr.slice(-300)}`)
      // update-theta waits for a learner's lock (the service's concurrent calls): the second runs after the first.
      if (c.id === 'update-theta' && kind === 'postgres') {
        if (second.code !== 0) mine.push(`second update-theta exited ${second.code}: ${second.stderr.slice(-300)}`)
        else waited++
      } else {
        if (second.code !== 1) mine.push(`second exited ${second.code}`)
        if (!holder.test(second.stderr)) mine.push(`second did not name the holder: ${second.stderr.slice(0, 300)}`)
      }
      if (single) {
        const db = await t.open()
        const now = await tableChecksums(db.pool)
        await db.close()
        if (JSON.stringify(now) !== JSON.stringify(single)) mine.push('tables differ from a single run')
      }
      if (mine.length) problems.push(`${c.id}: ${mine.join('; ')}`)
      else ok++
    }
    const n = kind === 'postgres' ? CASES.length : 1
    record({
      scenario: kind === 'postgres' ? 'two runs of every stage at once (PostgreSQL)' : 'two runs of compute-kpis at once (embedded)',
      trials: n,
      ok,
      lost: n - ok,
      outcome: `${ok - waited} refused ${kind === 'postgres' ? 'STAGE_LOCKED' : 'LOCKED (data folder)'} naming the holder while the other succeeded${waited ? `, ${waited} (update-theta) waited for the learner's lock and ran after` : ''}${kind === 'postgres' ? ', tables = a single run' : ''}, ${((Date.now() - started) / 1000).toFixed(0)} s`,
    })
    expect(problems).toEqual([])
  })
})

/** A pid that surely is not running any more: a process that has ended. */
function deadPid(): number {
  const out = execFileSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' })
  return Number(out)
}

function warningsLogger(): Logger & { warnings: string[] } {
  const warnings: string[] = []
  return { ...silentLogger, warn: (m: string) => void warnings.push(m), warnings }
}

describe.runIf(DB_KINDS.includes('postgres'))('the stage lock when its holder is gone (PostgreSQL)', () => {
  let t: TestDatabase
  let user: string
  let db: Db

  beforeAll(async () => {
    await loadStages()
    ;({ t, user } = await demoDatabase('postgres'))
    db = await t.open()
  }, 300_000)
  afterAll(async () => db?.close())

  /** Holds aggregate-features' lock in a session of its own, as a run row of (host, pid) would. */
  async function holdLock(pid: number): Promise<{ release(): Promise<void>; runId: string }> {
    const c = new pg.Client({ connectionString: t.env.DATABASE_URL })
    await c.connect()
    const ins = await c.query<{ id: string }>(
      `INSERT INTO seedops_stage_runs (stage, params, as_of, dry_run, status, host, pid, seedops_version) VALUES ('aggregate-features', '{}', $1, false, 'running', $2, $3, 'test') RETURNING id::text`,
      [NEXT, hostname(), pid],
    )
    const runId = ins.rows[0]!.id
    await c.query(`SELECT set_config('application_name', $1, false)`, [`seedops run#${runId} ${pid}@${hostname()}`])
    await c.query(`SELECT pg_advisory_lock(hashtext('seedops:stage:aggregate-features'))`)
    return { runId, release: () => c.end() }
  }

  const run = (lockWait: string, logger: Logger = silentLogger) => {
    const stage = getStage('aggregate-features')!
    return runStage(db, stage, resolveStageParams(stage, {}, env), { asOf: NEXT, dryRun: false, logger, env, handleSignals: false, pushMetrics: false, runnerOptions: { lockWait } })
  }

  it('a live holder is refused at once, naming it', async () => {
    const h = await holdLock(process.pid)
    try {
      const t0 = Date.now()
      const e = await run('60s').then(() => undefined, translateError)
      expect(Date.now() - t0).toBeLessThan(2000)
      expect(e?.code).toBe('STAGE_LOCKED')
      expect(e?.message).toContain(`run #${h.runId} on ${hostname()} pid ${process.pid}`)
      expect(e?.message).not.toContain('gone')
    } finally {
      await h.release()
    }
  })

  it('a gone holder is waited for up to --lock-wait, saying so, then refused naming it', async () => {
    const pid = deadPid()
    const h = await holdLock(pid)
    try {
      const log = warningsLogger()
      const t0 = Date.now()
      const e = await run('1500ms', log).then(() => undefined, translateError)
      expect(Date.now() - t0).toBeGreaterThanOrEqual(1400)
      expect(e?.code).toBe('STAGE_LOCKED')
      expect(e?.message).toContain(`its process ${pid} on ${hostname()} is gone, but the lock was still held after waiting 1500 ms (--lock-wait)`)
      expect(log.warnings.join('\n')).toContain(`the lock is held by run #${h.runId}, but its process ${pid} on ${hostname()} is gone`)
    } finally {
      await h.release()
    }
  })

  it('a gone holder that lets go within --lock-wait: the run goes on and marks it abandoned', async () => {
    const pid = deadPid()
    const h = await holdLock(pid)
    setTimeout(() => void h.release(), 800)
    const log = warningsLogger()
    const r = await run('30s', log)
    expect(r.status).toBe('succeeded')
    expect(log.warnings.join('\n')).toContain('waiting up to 30 s')
    const s = await db.pool.query<{ status: string; error: string }>(`SELECT status, error FROM seedops_stage_runs WHERE id = $1`, [h.runId])
    expect(s.rows[0]!.status).toBe('abandoned')
    expect(s.rows[0]!.error).toContain(`process ${pid} on ${hostname()} ended without finishing`)
  })

  it('a killed run in a 30 s statement: its backend ends within seconds (client_connection_check_interval), the next run succeeds', { timeout: 240_000 }, async () => {
    const child = spawnCli(['run', 'aggregate-features', '--date', NEXT], { ...t.env, SEEDOPS_TEST_SLEEP_SQL_S: '30' })
    const closed = once(child, 'close')
    await waitForOutput(child.stderr, (s) => s.includes('30 s statement'), 180_000)
    await new Promise((r) => setTimeout(r, 300))
    child.kill('SIGKILL')
    await closed
    const killedAt = Date.now()
    const log = warningsLogger()
    const r = await run('60s', log)
    expect(r.status).toBe('succeeded')
    // Without the check the backend would sleep out its 30 s holding the lock.
    expect(Date.now() - killedAt).toBeLessThan(10_000)
    const busy = await db.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep%' AND state = 'active'`)
    expect(busy.rows[0]!.n).toBe(0)
    record({
      scenario: 'SIGKILL in a 30 s statement, then the next run (PostgreSQL)',
      trials: 1,
      ok: 1,
      lost: 0,
      outcome: `next run succeeded ${((Date.now() - killedAt) / 1000).toFixed(1)} s after the kill${log.warnings.some((w) => w.includes('waiting up to')) ? ', after waiting for the gone holder' : ''}`,
    })
    void user
  })
})
