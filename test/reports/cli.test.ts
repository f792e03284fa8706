import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { findChromium, findExecutable } from '../../src/lib/reports/tools.js'
import { runCli } from '../support/cli.js'
import { DB_KINDS, freshDatabase, type TestDatabase } from '../support/db.js'
import { DATE, EVIL, WEEK, seedReportFixture } from './fixture.js'
import { startS3, type TestS3 } from './s3.js'

const kind = DB_KINDS.includes('postgres') ? 'postgres' : 'embedded'

/** The CLI as a CronJob runs it: one process per command, S3 from the environment. */
describe(`seedops run generate-report / verify reports (CLI, ${kind})`, () => {
  let tdb: TestDatabase
  let s3: TestS3
  let users: string[]
  const dirs: string[] = []
  const tmp = () => {
    const d = mkdtempSync(join(tmpdir(), 'reports-cli-'))
    dirs.push(d)
    return d
  }
  const sql = async (q: string) => {
    const db = await tdb.open()
    try {
      await db.pool.query(q)
    } finally {
      await db.close()
    }
  }
  const rows = async () => {
    const db = await tdb.open()
    try {
      return (await db.pool.query<{ user_id: string; format: string; url: string }>(`SELECT user_id, format, url FROM report_artifacts ORDER BY user_id, format`)).rows
    } finally {
      await db.close()
    }
  }

  beforeAll(async () => {
    s3 = await startS3(['weekly'])
    tdb = await freshDatabase(kind)
    const db = await tdb.open()
    users = await seedReportFixture(db.pool, 3)
    await db.close()
  })
  afterAll(async () => {
    await s3?.close()
    for (const d of dirs) rmSync(d, { recursive: true, force: true })
  })

  test('S3 from env: exit 0, JSON summary, secret never printed; verify passes', async () => {
    const env = { ...tdb.env, ...s3.env, S3_BUCKET: 'weekly', AWS_SECRET_ACCESS_KEY: 'S3RVER' }
    const r = await runCli(['run', 'generate-report', '--date', DATE, '--json'], { env })
    expect(r.code, r.stderr).toBe(0)
    const doc = JSON.parse(r.stdout)
    expect(doc.result.rows).toMatchObject({ report_artifacts: users.length, failed_users: 0 })
    expect(doc.result.summary.sample.url).toMatch(/^s3:\/\/weekly\/reports\/.+\/2026-11-16\/report\.html$/)
    expect(r.stdout + r.stderr).not.toContain('S3RVER')
    expect((await rows()).map((x) => x.user_id).sort()).toEqual(users)

    const v = await runCli(['verify', 'reports', '--date', DATE, '--json'], { env })
    expect(v.code, v.stdout + v.stderr).toBe(0)
    const checks = JSON.parse(v.stdout).result.checks as { id: string; status: string; numbers: Record<string, unknown> }[]
    expect(checks.map((c) => [c.id, c.status]).sort()).toEqual([['reports.coverage', 'ok'], ['reports.freshness', 'ok'], ['reports.objects', 'ok'], ['reports.urls', 'ok']])
    expect(checks.find((c) => c.id === 'reports.objects')!.numbers).toMatchObject({ checked: users.length, missing: 0 })
  })

  test('missing bucket: exit 1, S3_NO_BUCKET with next steps, rows untouched', async () => {
    const before = await rows()
    const r = await runCli(['run', 'generate-report', '--date', DATE], { env: { ...tdb.env, ...s3.env, S3_BUCKET: 'nope' } })
    expect(r.code).toBe(1)
    expect(r.stderr).toContain('Error (S3_NO_BUCKET): bucket nope does not exist')
    expect(r.stderr).toContain('Try this:')
    expect(await rows()).toEqual(before)
  })

  test('local folder: one user failing → exit 1, named; the others stored; sample path printed; verify fails on the gap', async () => {
    await sql(`DELETE FROM report_artifacts`)
    const out = tmp()
    // A directory where bob's report file should go: that one write fails, the others do not.
    mkdirSync(join(out, 'bob', WEEK, 'report.html'), { recursive: true })
    const r = await runCli(['run', 'generate-report', '--date', DATE, '--out-dir', out], { env: tdb.env })
    expect(r.code, r.stderr).toBe(1)
    expect(r.stdout).toMatch(/failed: "bob" html: STORE_WRITE_FAILED/)
    const sample = /sample report: (.+)\n/.exec(r.stdout)![1]!
    expect(readFileSync(sample, 'utf8')).toContain('Weekly learning report')
    expect(existsSync(join(out, 'alice', WEEK, 'report.html'))).toBe(true)
    expect(existsSync(join(out, encodeURIComponent(EVIL).replace(/[()]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase()), WEEK, 'report.html'))).toBe(true)
    const local = (await rows()).filter((x) => x.url.startsWith('file://'))
    expect(local.map((x) => x.user_id).sort()).toEqual(users.filter((u) => u !== 'bob'))

    const v = await runCli(['verify', 'reports', '--date', DATE, '--json'], { env: tdb.env })
    expect(v.code).toBe(1)
    const checks = JSON.parse(v.stdout).result.checks as { id: string; status: string }[]
    expect(checks.find((c) => c.id === 'reports.coverage')!.status).toBe('fail')
  })

  test.skipIf(!findChromium())('PDF via headless Chromium: %PDF and the report text', async () => {
    const out = tmp()
    const r = await runCli(['run', 'generate-report', '--date', DATE, '--out-dir', out, '--format', 'both', '--user', 'alice'], { env: tdb.env, timeoutMs: 90_000 })
    expect(r.code, r.stderr).toBe(0)
    const pdf = join(out, 'alice', WEEK, 'report.pdf')
    expect(readFileSync(pdf).subarray(0, 4).toString('latin1')).toBe('%PDF')
    expect(existsSync(join(out, 'alice', WEEK, 'report.html'))).toBe(true)
    // Where Chromium is, poppler's pdftotext must be too (.ci/run installs both): the text is the point of the test.
    expect(findExecutable(['pdftotext']), 'pdftotext (poppler-utils) is required when Chromium is installed').toBeTruthy()
    const text = execFileSync('pdftotext', [pdf, '-'], { encoding: 'utf8' })
    for (const s of ['Weekly learning report', 'alice', 'Improvement', 'Recovery of past', 'Churn risk', 'Practise algebra']) expect(text).toContain(s)
  })
})
