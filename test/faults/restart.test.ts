import { execFileSync } from 'node:child_process'
import { once } from 'node:events'
import { chmodSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { openDb } from '../../src/lib/db/index.js'
import { runDemo } from '../../src/lib/demo/pipeline.js'
import { silentLogger } from '../../src/lib/output/index.js'
import { getStage, loadStages } from '../../src/lib/stages/all.js'
import { runWithPrerequisites } from '../../src/lib/stages/chain.js'
import { resolveStageParams } from '../../src/lib/stages/options.js'
import { ROOT, runCli, spawnCli } from '../support/cli.js'
import { DB_KINDS } from '../support/db.js'
import { waitForOutput } from '../support/fixtures.js'
import { PLANTED } from './support/secret-scan.js'
import { classify, runStatus, tableChecksums } from './support/checksums.js'
import { record } from './support/table.js'

/**
 * Issue 13 item 2: PostgreSQL restarted mid-stage (pg_ctl restart -m immediate on a throwaway server
 * this file starts with scripts/test-postgres.sh on its own folder and port, never the shared one),
 * refusing connections at start, and statement_timeout / lock_timeout per stage. Every failure must
 * name the server as host:port/db without the password, exit 1, and leave the tables exactly as they
 * were; the next run succeeds.
 */

const AS_OF = '2026-03-18'
const NEXT = '2026-03-19'
const PG_BIN = '/usr/lib/postgresql/15/bin'
const HAVE_PG = DB_KINDS.includes('postgres')

const CASES: { id: string; args: (user: string, dir: string) => string[]; given: (user: string, dir: string) => Record<string, unknown> }[] = [
  { id: 'aggregate-features', args: () => [], given: () => ({}) },
  { id: 'calibrate-irt', args: () => ['--allow-non-converged'], given: () => ({ allowNonConverged: true }) },
  { id: 'compute-kpis', args: () => ['--target=0.5'], given: () => ({ target: 0.5 }) },
  { id: 'detect-inactivity', args: () => ['--threshold-days', '2', '--target=0.8'], given: () => ({ thresholdDays: 2, target: 0.8 }) },
  { id: 'generate-report', args: (_u, d) => ['--week', '2026-03-16', '--out-dir', d], given: (_u, d) => ({ week: '2026-03-16', outDir: d }) },
  { id: 'update-theta', args: (u) => ['--user', u], given: (u) => ({ user: u }) },
]

/** The server's own commands run as its owner (initdb and pg_ctl refuse root). */
function asOwner(cmd: string): string {
  const sh = process.getuid?.() === 0 ? ['su', 'postgres', '-s', '/bin/bash', '-c', cmd] : ['bash', '-c', cmd]
  return execFileSync(sh[0]!, sh.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
}

describe.runIf(HAVE_PG)('PostgreSQL restarted mid-stage, refusing connections, timeouts (throwaway server)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'seedops-restart-'))
  const dataDir = join(dir, 'pg')
  const port = 56000 + (process.pid % 900)
  const reports = join(dir, 'reports')
  let admin = ''
  let url = ''
  let user = ''

  beforeAll(async () => {
    await loadStages()
    chmodSync(dir, 0o755) // the server runs as postgres
    const out = execFileSync('bash', [join(ROOT, 'scripts', 'test-postgres.sh'), dataDir, String(port)], { encoding: 'utf8' })
    admin = /TEST_DATABASE_URL=(\S+)/.exec(out)![1]!
    const c = new pg.Client({ connectionString: admin })
    await c.connect()
    await c.query('CREATE DATABASE restart_t')
    await c.end()
    const u = new URL(admin)
    u.pathname = '/restart_t'
    // A planted password (the throwaway server trusts 127.0.0.1): no error may print it.
    u.password = PLANTED.DB_PASSWORD
    url = u.toString()
    const db = await openDb({ databaseUrl: url })
    try {
      await runDemo(db, { seed: { learners: 30, items: 30, days: 21, seed: 11 }, asOf: AS_OF, logger: silentLogger, historyWeeks: 0 })
      user = (await db.pool.query<{ user_id: string }>(`SELECT user_id FROM exam_results ORDER BY user_id LIMIT 1`)).rows[0]!.user_id
    } finally {
      await db.close()
    }
  }, 300_000)

  afterAll(() => {
    try {
      asOwner(`${PG_BIN}/pg_ctl -D ${dataDir} -m immediate stop`)
    } catch {
      /* not running */
    }
    rmSync(dir, { recursive: true, force: true })
  })

  const checksums = async () => {
    const db = await openDb({ databaseUrl: url })
    try {
      return await tableChecksums(db.pool)
    } finally {
      await db.close()
    }
  }
  const target = () => `127.0.0.1:${port}/restart_t`

  it('restart -m immediate while each stage holds its transaction: exit 1 naming the server, nothing written, the next run succeeds', { timeout: 600_000 }, async () => {
    const started = Date.now()
    const problems: string[] = []
    let ok = 0
    for (const c of CASES) {
      const before = await checksums()
      const child = spawnCli(['run', c.id, '--date', NEXT, ...c.args(user, reports)], { DATABASE_URL: url, SEEDOPS_TEST_HOLD_TX_MS: '3000' })
      let err = ''
      child.stderr.on('data', (d) => (err += d))
      let out = ''
      child.stdout.on('data', (d) => (out += d))
      const closed = once(child, 'close') as Promise<[number]>
      await waitForOutput(child.stderr, (s) => s.includes('holding transaction'), 180_000)
      const runId = /run #(\d+)/.exec(err)?.[1]
      asOwner(`${PG_BIN}/pg_ctl -D ${dataDir} -m immediate -w restart >/dev/null`)
      const [code] = await closed
      const mine: string[] = []
      if (code !== 1) mine.push(`exit ${code}`)
      if (!err.includes(`lost the connection to the database at ${target()}`)) mine.push(`error does not name ${target()}: ${err.slice(-400)}`)
      if (!err.includes('nothing written')) mine.push('error does not say nothing was written')
      if ((err + out).includes(PLANTED.DB_PASSWORD)) mine.push('the password was printed')
      if (JSON.stringify(await checksums()) !== JSON.stringify(before)) mine.push('tables changed')
      // The next run (in this process) succeeds and marks the lost one (failed already, or abandoned).
      const db = await openDb({ databaseUrl: url })
      try {
        const stage = getStage(c.id)!
        const { report } = await runWithPrerequisites(db, stage, resolveStageParams(stage, c.given(user, reports), process.env), { asOf: NEXT, dryRun: false, logger: silentLogger, env: process.env, handleSignals: false, pushMetrics: false })
        if (report.status !== 'succeeded') mine.push(`next run ${report.status}`)
        const s = runId ? await runStatus(db.pool, runId) : undefined
        if (!s || !['failed', 'abandoned'].includes(s.status)) mine.push(`lost run #${runId} is ${s?.status}`)
      } finally {
        await db.close()
      }
      if (classify(await checksums(), before, before) === 'before') mine.push('the next run changed nothing')
      if (mine.length) problems.push(`${c.id}: ${mine.join('; ')}`)
      else ok++
    }
    record({ scenario: 'PostgreSQL restarted (-m immediate) mid-stage, every stage', trials: CASES.length, ok, lost: CASES.length - ok, outcome: `${ok} exit 1 naming ${'host:port/db'}, tables unchanged, next run ok; ${((Date.now() - started) / 1000).toFixed(0)} s` })
    expect(problems).toEqual([])
  })

  it('refusing connections at start: every stage exits 1 naming host:port/db, no password', { timeout: 300_000 }, async () => {
    // A port nothing listens on (the throwaway server's, stopped for this test, then started again).
    asOwner(`${PG_BIN}/pg_ctl -D ${dataDir} -m fast -w stop >/dev/null`)
    const problems: string[] = []
    try {
      for (const c of CASES) {
        const r = await runCli(['run', c.id, '--date', NEXT, ...c.args(user, reports)], { env: { DATABASE_URL: url } })
        if (r.code !== 1) problems.push(`${c.id}: exit ${r.code}`)
        if (!r.stderr.includes(`database unreachable at ${target()}`)) problems.push(`${c.id}: ${r.stderr.slice(0, 300)}`)
        if (r.stderr.includes(PLANTED.DB_PASSWORD)) problems.push(`${c.id}: password printed`)
      }
    } finally {
      asOwner(`${PG_BIN}/pg_ctl -D ${dataDir} -o '-p ${port} -k ${dataDir} -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=off' -l ${dataDir}/log -w start >/dev/null`)
    }
    record({ scenario: 'PostgreSQL refusing connections at start, every stage', trials: CASES.length, ok: CASES.length - problems.length, lost: 0, outcome: `exit 1, "database unreachable at 127.0.0.1:PORT/db", no password` })
    expect(problems).toEqual([])
  })

  it('statement_timeout and lock_timeout per stage: a tiny one fails the stage cleanly naming it, nothing written', { timeout: 300_000 }, async () => {
    const before = await checksums()
    // A flag: the stage's 2 s test statement outlives a 200 ms statement_timeout.
    const a = await runCli(['run', 'aggregate-features', '--date', NEXT, '--statement-timeout', '200ms'], { env: { DATABASE_URL: url, SEEDOPS_TEST_SLEEP_SQL_S: '2' } })
    expect(a.code).toBe(1)
    expect(a.stderr).toContain('STATEMENT_TIMEOUT')
    expect(a.stderr).toContain('aggregate-features: a statement ran longer than statement_timeout 200 ms; rolled back, nothing written')
    // The stage's own env twin, over the one for every stage.
    const b = await runCli(['run', 'compute-kpis', '--date', NEXT], { env: { DATABASE_URL: url, SEEDOPS_TEST_SLEEP_SQL_S: '2', SEEDOPS_COMPUTE_KPIS_STATEMENT_TIMEOUT: '300ms', SEEDOPS_STATEMENT_TIMEOUT: '1h' } })
    expect(b.code).toBe(1)
    expect(b.stderr).toContain('statement_timeout 300 ms')
    // lock_timeout: another session holds weekly_kpi.
    const holder = new pg.Client({ connectionString: url })
    await holder.connect()
    try {
      await holder.query('BEGIN')
      await holder.query('LOCK TABLE weekly_kpi IN EXCLUSIVE MODE')
      const l = await runCli(['run', 'compute-kpis', '--date', NEXT, '--lock-timeout', '300ms'], { env: { DATABASE_URL: url } })
      expect(l.code).toBe(1)
      expect(l.stderr).toContain('LOCK_TIMEOUT')
      expect(l.stderr).toContain('waited longer than lock_timeout 300 ms')
    } finally {
      await holder.end()
    }
    // A bad value is a usage error naming the option and its source.
    const u = await runCli(['run', 'compute-kpis', '--date', NEXT], { env: { DATABASE_URL: url, SEEDOPS_STATEMENT_TIMEOUT: 'soon' } })
    expect(u.code).toBe(2)
    expect(u.stderr).toContain('statementTimeout from env SEEDOPS_STATEMENT_TIMEOUT="soon"')
    expect(await checksums()).toEqual(before)
    record({ scenario: 'statement_timeout / lock_timeout per stage (flag, stage env twin)', trials: 3, ok: 3, lost: 0, outcome: 'exit 1 STATEMENT_TIMEOUT / LOCK_TIMEOUT naming the value, nothing written; bad value exit 2' })
  })
})
