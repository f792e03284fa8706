import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { registerSecret } from '../../src/lib/errors/index.js'
import { createLogger } from '../../src/lib/output/index.js'
import { runCli } from '../support/cli.js'
import { DB_KINDS, freshDatabase, type TestDatabase } from '../support/db.js'
import { insertTwoLearners } from '../support/fixtures.js'
import { freePort } from '../support/prometheus.js'

const AS_OF = '2026-03-15'
const PUSH_SECRET = 'Pl4nted-Push-Pw'
const URL_SECRET = 'Pl4nted-Url-Pw'
const DB_SECRET = 'Pl4nted-Db-Pw'
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/

interface LogLine {
  time: string
  level: string
  message: string
  stage?: string
  runId?: number
  [k: string]: unknown
}

/** Every stderr line must be one JSON object with time, level and message. */
function parseLines(stderr: string): LogLine[] {
  const lines = stderr.split('\n').filter((l) => l !== '')
  expect(lines.length).toBeGreaterThan(0)
  return lines.map((l) => {
    let o: LogLine
    try {
      o = JSON.parse(l) as LogLine
    } catch {
      throw new Error(`stderr line is not JSON: ${l}`)
    }
    expect(o.time, l).toMatch(ISO)
    expect(['debug', 'info', 'warn', 'error'], l).toContain(o.level)
    expect(typeof o.message, l).toBe('string')
    return o
  })
}


async function lastRun(t: TestDatabase): Promise<{ id: number; status: string }> {
  const db = await t.open()
  try {
    return (await db.pool.query<{ id: number; status: string }>(`SELECT id, status FROM seedops_stage_runs ORDER BY id DESC LIMIT 1`)).rows[0]!
  } finally {
    await db.close()
  }
}

describe.each(DB_KINDS)('LOG_FORMAT=json on %s', (kind) => {
  let t: TestDatabase
  let env: Record<string, string>
  beforeAll(async () => {
    t = await freshDatabase(kind)
    const db = await t.open()
    await insertTwoLearners(db.pool)
    await db.close()
    env = { ...t.env }
    // On the real server the URL carries a password (trust auth ignores it): a registered secret.
    if (env.DATABASE_URL) {
      const u = new URL(env.DATABASE_URL)
      u.password = DB_SECRET
      env.DATABASE_URL = u.toString()
    }
  })

  it('a successful run: one JSON object per line with time, level, stage and run id; a warning is level warn; no secret', async () => {
    const port = await freePort() // no Pushgateway there: the push fails with a warning quoting the URL
    const r = await runCli(['run', 'aggregate-features', '--date', AS_OF], { env: { ...env, LOG_FORMAT: 'json', PUSHGATEWAY_URL: `http://pusher:${PUSH_SECRET}@127.0.0.1:${port}` } })
    expect(r.code, r.stderr).toBe(0)
    const run = await lastRun(t)
    expect(run.status).toBe('succeeded')
    const lines = parseLines(r.stderr)
    for (const l of lines) {
      expect(l.stage, JSON.stringify(l)).toBe('aggregate-features')
      expect(l.runId, JSON.stringify(l)).toBe(run.id)
    }
    expect(lines[0]).toMatchObject({ level: 'info', message: `aggregate-features: run #${run.id}, as of ${AS_OF}` })
    const warn = lines.filter((l) => l.level === 'warn')
    expect(warn).toHaveLength(1)
    expect(warn[0]!.message).toContain(`could not push metrics to the Pushgateway http://pusher:[REDACTED]@127.0.0.1:${port}`)
    // The outcome as a record: fields, not only words.
    const outcome = lines.find((l) => l.outcome !== undefined)
    expect(outcome).toMatchObject({ level: 'info', outcome: 'succeeded', dryRun: false, rows: { features_topic_daily: 3 } })
    expect(typeof outcome!.durationMs).toBe('number')
    for (const s of [PUSH_SECRET, DB_SECRET]) {
      expect(r.stderr).not.toContain(s)
      expect(r.stdout).not.toContain(s)
    }
  })

  it('a failed run: the outcome record carries the run id, the error is an error-level line, exit 1; secrets in the error are masked', async () => {
    let db = await t.open()
    // The failure message quotes a URL with a password, and on the real server the DATABASE_URL password.
    const quoted = `planted failure: postgres://app:${URL_SECRET}@db.internal/seedtest ${kind === 'postgres' ? DB_SECRET : ''}`
    await db.pool.query(`CREATE OR REPLACE FUNCTION seedops_test_fail() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION '${quoted}'; END $$`)
    await db.pool.query(`CREATE TRIGGER seedops_test_fail BEFORE INSERT ON features_topic_daily FOR EACH ROW EXECUTE FUNCTION seedops_test_fail()`)
    await db.close()
    try {
      const r = await runCli(['run', 'aggregate-features', '--date', AS_OF], { env: { ...env, LOG_FORMAT: 'json' } })
      expect(r.code, r.stderr).toBe(1)
      const run = await lastRun(t)
      expect(run.status).toBe('failed')
      const lines = parseLines(r.stderr)
      const outcome = lines.find((l) => l.outcome !== undefined)
      expect(outcome).toMatchObject({ stage: 'aggregate-features', runId: run.id, outcome: 'failed' })
      const last = lines.at(-1)!
      expect(last).toMatchObject({ level: 'error', code: 'DB_ERROR', exitCode: 1 })
      expect(last.message).toContain('planted failure: postgres://app:[REDACTED]@db.internal/seedtest')
      for (const s of [URL_SECRET, DB_SECRET]) expect(r.stderr).not.toContain(s)
    } finally {
      db = await t.open()
      await db.pool.query(`DROP TRIGGER IF EXISTS seedops_test_fail ON features_topic_daily`)
      await db.close()
    }
  })

  it('without LOG_FORMAT the terminal output is exactly as before', async () => {
    const r = await runCli(['run', 'aggregate-features', '--date', AS_OF], { env })
    expect(r.code, r.stderr).toBe(0)
    const run = await lastRun(t)
    expect(r.stderr).toBe(
      [`aggregate-features: run #${run.id}, as of ${AS_OF}`, 'aggregate-features: days 2026-03-09..2026-03-15, reading attempts since 2026-02-24', 'aggregate-features: 3 rows written (3 replaced)', ''].join('\n'),
    )
    expect(r.stdout).toMatch(new RegExp(`^aggregate-features run #${run.id} as of ${AS_OF}: succeeded in \\d+\\.\\d s \\(features_topic_daily=3, replaced=3, malformed_exam_results=0\\)\n`))
  })
})

describe('LOG_FORMAT', () => {
  it('anything but text or json is a usage error (exit 2), said in the terminal format', async () => {
    const r = await runCli(['run', 'aggregate-features', '--dry-run'], { env: { LOG_FORMAT: 'xml' } })
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('Error (USAGE): LOG_FORMAT="xml" is not a log format')
  })

  describe('the JSON logger', () => {
    const written: string[] = []
    const realWrite = process.stderr.write.bind(process.stderr)
    const capture = () => {
      written.length = 0
      process.stderr.write = ((s: string) => (written.push(s), true)) as typeof process.stderr.write
    }
    afterEach(() => {
      process.stderr.write = realWrite
    })

    it('masks a registered secret in the message, in nested fields and in bindings, and values of secret-named keys', () => {
      registerSecret('Regist3red-Secret')
      const log = createLogger({ format: 'json' }).child!({ stage: 'compute-kpis', runId: 7, note: 'bound Regist3red-Secret' })
      capture()
      log.info('token is Regist3red-Secret', { nested: { list: ['x Regist3red-Secret y'] }, password: 'plain-but-named', err: new Error('failed with Regist3red-Secret') })
      log.warn('careful', { time: 'not overridable', message: 'nor this' })
      process.stderr.write = realWrite
      expect(written).toHaveLength(2)
      expect(written.every((w) => w.endsWith('\n') && w.indexOf('\n') === w.length - 1)).toBe(true)
      const [a, b] = written.map((w) => JSON.parse(w) as LogLine)
      expect(a).toMatchObject({
        level: 'info',
        stage: 'compute-kpis',
        runId: 7,
        note: 'bound [REDACTED]',
        message: 'token is [REDACTED]',
        nested: { list: ['x [REDACTED] y'] },
        password: '[REDACTED]',
        err: 'failed with [REDACTED]',
      })
      expect(b).toMatchObject({ level: 'warn', message: 'careful', stage: 'compute-kpis' })
      expect(b!.time).toMatch(ISO)
      expect(written.join('')).not.toContain('Regist3red-Secret')
      expect(written.join('')).not.toContain('plain-but-named')
    })

    it('--quiet keeps warnings, drops info; debug only with --verbose', () => {
      capture()
      const quiet = createLogger({ format: 'json', quiet: true })
      quiet.info('hidden')
      quiet.progress('hidden')
      quiet.debug('hidden')
      quiet.warn('shown')
      createLogger({ format: 'json', verbose: true }).debug('details')
      process.stderr.write = realWrite
      expect(written.map((w) => (JSON.parse(w) as LogLine).level)).toEqual(['warn', 'debug'])
    })
  })
})
