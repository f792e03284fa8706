import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { openDb, type Db } from '../../src/lib/db/index.js'
import { runDemo } from '../../src/lib/demo/pipeline.js'
import { silentLogger, type Logger } from '../../src/lib/output/index.js'
import { getStage, loadStages } from '../../src/lib/stages/all.js'
import { runWithPrerequisites } from '../../src/lib/stages/chain.js'
import { resolveStageParams } from '../../src/lib/stages/options.js'
import { runningRun } from '../../src/lib/stages/run-log.js'
import { BIN, ROOT } from '../support/cli.js'
import { DB_KINDS, freshDatabase, type DbKind, type TestDatabase } from '../support/db.js'
import { classify, runStatus, tableChecksums } from './support/checksums.js'
import { scanRun, secretsOf } from './support/secret-scan.js'
import { record, trials } from './support/table.js'

/**
 * Issue 13 item 1: SIGKILL at random points of each stage's write. Per trial: a fresh copy of one
 * database (the demo's state as of AS_OF), the stage as of NEXT in a child process, SIGKILL either
 * after a random delay spread over the stage's measured window (from its "run #N" line to its exit)
 * or while it holds its transaction after the writes (SEEDOPS_TEST_HOLD_TX_MS). Then the tables
 * must be exactly the state before or exactly that of a complete run (checksums, test/faults/support/
 * checksums.ts), the run log must agree (before: no row or a 'running' one that the next run marks
 * 'abandoned'; after: 'succeeded', recorded in the same transaction), and the next run succeeds and
 * gives the complete run's tables.
 *
 * CI default: 25 trials per stage on PostgreSQL (cloning a template database is ~0.1 s); the child is
 * the CLI for one trial in five and otherwise a small script running the same runner (stage-child.mjs:
 * no oclif start, ~0.5 s less per trial); on the embedded database (a PGlite start per trial and per
 * reopen, ~3 s) 1 per stage (killed while holding its transaction), ceil(N / 25) with --trials N
 * (4 at 100, alternating hold and window).
 */

const AS_OF = '2026-03-18'
const NEXT = '2026-03-19'
const REPORT_WEEK = '2026-03-16'

interface StageCase {
  id: string
  cli: (user: string, outDir: string) => string[]
  given: (user: string, outDir: string) => Record<string, unknown>
}

const CASES: StageCase[] = [
  { id: 'aggregate-features', cli: () => [], given: () => ({}) },
  { id: 'calibrate-irt', cli: () => ['--allow-non-converged'], given: () => ({ allowNonConverged: true }) },
  // Another goal θ / threshold than the demo's runs: the KPIs the trial run writes differ from those before.
  { id: 'compute-kpis', cli: () => ['--target=0.5'], given: () => ({ target: 0.5 }) },
  { id: 'detect-inactivity', cli: () => ['--threshold-days', '2', '--target=0.8'], given: () => ({ thresholdDays: 2, target: 0.8 }) },
  { id: 'generate-report', cli: (_u, dir) => ['--week', REPORT_WEEK, '--out-dir', dir], given: (_u, dir) => ({ week: REPORT_WEEK, outDir: dir }) },
  { id: 'update-theta', cli: (u) => ['--user', u], given: (u) => ({ user: u }) },
]

const CHILD = join(ROOT, 'test', 'faults', 'support', 'stage-child.mjs')
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

type ChildKind = 'cli' | 'light'

function startChild(kind: ChildKind, c: StageCase, user: string, outDir: string, env: Record<string, string>): ChildProcess & { err: () => string } {
  const args = kind === 'cli' ? [BIN, 'run', c.id, '--date', NEXT, ...c.cli(user, outDir)] : [CHILD, c.id, NEXT, JSON.stringify(c.given(user, outDir))]
  const full: Record<string, string | undefined> = { ...process.env, NO_COLOR: '1', DATABASE_URL: undefined, SEEDOPS_HOME: undefined, ...env }
  for (const k of Object.keys(full)) if (full[k] === undefined) delete full[k]
  const child = spawn(process.execPath, args, { env: full as NodeJS.ProcessEnv, cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  child.stdout!.on('data', (d) => (out += d))
  child.stderr!.on('data', (d) => (err += d))
  // What a killed run printed is scanned for secrets like every other run.
  child.on('close', () => scanRun({ stdout: out, stderr: err }, secretsOf(full, args), args, { count: false }))
  return Object.assign(child, { err: () => err })
}

/** Resolves when stderr has shown `text` (true), or the process ended first (false). */
function seen(child: ChildProcess & { err: () => string }, text: string): Promise<boolean> {
  return new Promise((resolve) => {
    if (child.err().includes(text)) return resolve(true)
    const onData = () => {
      if (child.err().includes(text)) done(true)
    }
    const onClose = () => done(child.err().includes(text))
    const done = (v: boolean) => {
      child.stderr!.off('data', onData)
      child.off('close', onClose)
      resolve(v)
    }
    child.stderr!.on('data', onData)
    child.on('close', onClose)
  })
}

const exited = (child: ChildProcess) => (child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : once(child, 'close').then(() => undefined))

/** A logger that keeps the warnings (the runner says when it waits for a gone holder). */
function keepWarnings(): Logger & { warnings: string[] } {
  const warnings: string[] = []
  return { ...silentLogger, warn: (m: string) => void warnings.push(m), warnings }
}

interface Tally {
  trials: number
  ok: number
  lost: number
  before: number
  after: number
  abandoned: number
  succeeded: number
  noRow: number
  waited: number
  nextOk: number
  problems: string[]
}

/** One database kind's way of making a fresh copy of the base state per trial. */
interface Copies {
  make(): Promise<{ env: Record<string, string>; open(): Promise<Db>; drop(): Promise<void> }>
  close(): Promise<void>
}

async function pgCopies(base: TestDatabase): Promise<Copies> {
  const baseUrl = new URL(base.env.DATABASE_URL!)
  const baseName = baseUrl.pathname.slice(1)
  const admin = new pg.Client({ connectionString: process.env.TEST_DATABASE_URL })
  await admin.connect()
  let n = 0
  return {
    async make() {
      const name = `${baseName}_k${++n}`
      await admin.query(`CREATE DATABASE ${name} TEMPLATE ${baseName}`)
      const u = new URL(baseUrl)
      u.pathname = `/${name}`
      return {
        env: { DATABASE_URL: u.toString() },
        open: () => openDb({ databaseUrl: u.toString() }),
        drop: async () => void (await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)),
      }
    },
    close: () => admin.end(),
  }
}

function embeddedCopies(base: TestDatabase): Copies {
  const home = base.env.SEEDOPS_HOME!
  return {
    async make() {
      const copy = mkdtempSync(`${home}-k`)
      cpSync(home, copy, { recursive: true, filter: (src) => !src.endsWith('seedops.pid') })
      return { env: { SEEDOPS_HOME: copy }, open: () => openDb({ home: copy, databaseUrl: undefined }), drop: async () => rmSync(copy, { recursive: true, force: true }) }
    },
    close: async () => {},
  }
}

describe.each(DB_KINDS)('SIGKILL during each stage (%s)', (kind: DbKind) => {
  let base: TestDatabase
  let copies: Copies
  let user: string
  const outDir = mkdtempSync(join(tmpdir(), 'seedops-kill-reports-'))

  beforeAll(async () => {
    await loadStages()
    base = await freshDatabase(kind)
    const db = await base.open()
    try {
      await runDemo(db, { seed: { learners: 30, items: 30, days: 21, seed: 11 }, asOf: AS_OF, logger: silentLogger, historyWeeks: 0 })
      user = (await db.pool.query<{ user_id: string }>(`SELECT user_id FROM exam_results ORDER BY user_id LIMIT 1`)).rows[0]!.user_id
    } finally {
      await db.close()
    }
    copies = kind === 'postgres' ? await pgCopies(base) : embeddedCopies(base)
  }, 300_000)

  afterAll(async () => {
    await copies?.close()
    rmSync(outDir, { recursive: true, force: true })
  })

  const n = kind === 'postgres' ? trials(25) : Math.ceil(trials(25) / 25)

  it.each(CASES)(`$id: ${n} kills leave the tables before or after, the run log agrees, the next run succeeds`, { timeout: 900_000 }, async (c) => {
    const stage = getStage(c.id)!
    const env = { ...process.env, SEEDOPS_LOG_LEVEL: undefined } as NodeJS.ProcessEnv
    const nextRun = async (db: Db, logger: Logger) =>
      (await runWithPrerequisites(db, stage, resolveStageParams(stage, c.given(user, outDir), env), { asOf: NEXT, dryRun: false, logger, env, handleSignals: false, pushMetrics: false })).report

    // Before, and a complete run twice (CLI and script) to measure the window and show that the checksums see only data.
    const started = Date.now()
    let before: Record<string, string> = {}
    let after: Record<string, string> = {}
    const windowMs: Record<ChildKind, number> = { cli: 0, light: 0 }
    for (const k of (kind === 'postgres' ? ['cli', 'light'] : ['cli']) as ChildKind[]) {
      const copy = await copies.make()
      rmSync(outDir, { recursive: true, force: true })
      let db = await copy.open()
      const b = await tableChecksums(db.pool)
      await db.close()
      const child = startChild(k, c, user, outDir, copy.env)
      expect(await seen(child, 'run #')).toBe(true)
      const t0 = Date.now()
      await exited(child)
      windowMs[k] = Date.now() - t0
      expect(child.exitCode, child.err()).toBe(0)
      db = await copy.open()
      const a = await tableChecksums(db.pool)
      await db.close()
      await copy.drop()
      if (k === 'cli') {
        before = b
        after = a
      } else {
        expect(b).toEqual(before)
        expect(a).toEqual(after)
      }
    }
    // The trials tell before from after only when the run changes something.
    expect(after).not.toEqual(before)

    const t: Tally = { trials: n, ok: 0, lost: 0, before: 0, after: 0, abandoned: 0, succeeded: 0, noRow: 0, waited: 0, nextOk: 0, problems: [] }
    for (let i = 0; i < n; i++) {
      const childKind: ChildKind = kind === 'embedded' || i % 5 === 0 ? 'cli' : 'light'
      const hold = i % 4 === 3 || (kind === 'embedded' && i % 2 === 0)
      const copy = await copies.make()
      rmSync(outDir, { recursive: true, force: true })
      const problems: string[] = []
      try {
        const child = startChild(childKind, c, user, outDir, { ...copy.env, ...(hold ? { SEEDOPS_TEST_HOLD_TX_MS: '60000' } : {}) })
        if (hold) {
          if (!(await seen(child, 'holding transaction'))) problems.push(`ended before holding its transaction: ${child.err().slice(-300)}`)
          await sleep(Math.random() * 20)
        } else if (await seen(child, 'run #')) {
          await sleep(Math.random() * windowMs[childKind])
        } else problems.push(`ended before its run started (exit ${child.exitCode}): ${child.err().slice(-300)}`)
        child.kill('SIGKILL')
        await exited(child)

        let db = await copy.open()
        try {
          const state = classify(await tableChecksums(db.pool), before, after)
          const scope = stage.lockScope?.(resolveStageParams(stage, c.given(user, outDir), env) as never) ?? null
          const left = await runningRun(db.pool, c.id, scope)
          const last = (await db.pool.query<{ id: string; status: string }>(`SELECT id::text, status FROM seedops_stage_runs WHERE stage = $1 AND as_of = $2 ORDER BY id DESC LIMIT 1`, [c.id, NEXT])).rows[0]
          if (state === 'neither') problems.push('tables are neither the state before nor that of a complete run')
          else t[state]++
          // The run log agrees with the tables: after ⇔ its run says succeeded.
          if (state === 'after' && last?.status !== 'succeeded') problems.push(`tables are after, the run log says ${last?.status ?? 'nothing'}`)
          if (state === 'before' && last && last.status !== 'running') problems.push(`tables are before, the run log says ${last.status}`)
          if (state === 'after') t.succeeded++
          if (state === 'before' && !left) t.noRow++
          if (generateReport(c) && existsSync(outDir)) problems.push(...reportsWithoutObjects(await db.pool.query<{ url: string }>(`SELECT url FROM report_artifacts WHERE week_start = $1`, [REPORT_WEEK])))

          const logger = keepWarnings()
          const report = await nextRun(db, logger)
          if (report.status === 'succeeded') t.nextOk++
          else problems.push(`next run ${report.status}`)
          if (logger.warnings.some((w) => w.includes('waiting up to'))) t.waited++
          if (left) {
            const s = await runStatus(db.pool, left.id)
            if (s?.status === 'abandoned') t.abandoned++
            else problems.push(`killed run #${left.id} is ${s?.status} after the next run, not abandoned`)
          }
          await db.close()
          db = await copy.open()
          if (classify(await tableChecksums(db.pool), before, after) !== 'after') problems.push('after the next run the tables are not those of a complete run')
        } finally {
          await db.close()
        }
      } catch (e) {
        problems.push(`trial failed: ${(e as Error).message}`)
      } finally {
        await copy.drop().catch(() => {})
      }
      if (problems.length) {
        t.lost++
        t.problems.push(`trial ${i} (${childKind}${hold ? ', hold' : ''}): ${problems.join('; ')}`)
      } else t.ok++
    }
    const secs = ((Date.now() - started) / 1000).toFixed(0)
    const where = kind === 'postgres' ? 'PostgreSQL' : 'embedded'
    record({
      scenario: `SIGKILL during ${c.id} (${where})`,
      trials: t.trials,
      ok: t.ok,
      lost: t.lost,
      outcome: `${t.before} before / ${t.after} after, ${t.abandoned} abandoned, ${t.succeeded} succeeded, ${t.noRow} before the run row, ${t.waited} waited for a gone holder, next run ok ${t.nextOk}/${t.trials}, ${secs} s`,
    })
    expect(t.problems).toEqual([])
    expect(t.ok).toBe(n)
    expect(t.nextOk).toBe(n)
  })
})

const generateReport = (c: StageCase) => c.id === 'generate-report'

/** A committed report_artifacts row must point at a complete stored object. */
function reportsWithoutObjects(r: pg.QueryResult<{ url: string }>): string[] {
  const bad: string[] = []
  for (const { url } of r.rows) {
    const path = url.startsWith('file://') ? new URL(url).pathname : url
    if (!existsSync(path)) bad.push(`row for ${path} without its object`)
    else if (!readFileSync(path, 'utf8').trimEnd().endsWith('</html>')) bad.push(`object ${path} is incomplete`)
  }
  return bad
}
