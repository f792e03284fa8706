import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { createContext, renderReport, runChecks, selectChecks } from '../../src/lib/doctor/run.js'
import { expectedFor } from '../../src/lib/kube/expected.js'
import { DB_KINDS, freshDatabase } from '../support/db.js'
import { startS3, type TestS3 } from '../reports/s3.js'
import { knownMigrations } from '../../src/lib/db/migrate.js'

/** The checks outside the cluster: database (both kinds), object store (s3rver), R IRT service (a local HTTP server). */
const NOW = new Date('2026-11-21T09:00:00Z')
const expected = expectedFor({ namespace: 'seedtest' })
const noCluster = () => {
  throw new Error('no cluster in this test')
}

async function check(only: string[], env: Record<string, string>, opts: { requireDb?: boolean } = {}) {
  const session = createContext({ namespace: 'seedtest', expected, connect: noCluster, env, requireDb: opts.requireDb, now: NOW })
  try {
    const r = await runChecks(session.ctx, selectChecks(only))
    // The report lists skipped checks as results with status skip and the reason as message.
    const skipped = r.checks.filter((c) => c.status === 'skip').map((c) => ({ check: c.id, reason: c.message }))
    return { ...r, findings: r.checks.filter((c) => c.status !== 'skip'), skipped }
  } finally {
    await session.close()
  }
}

const hoursAgo = (h: number) => new Date(NOW.getTime() - h * 3_600_000)

describe.each(DB_KINDS)('doctor database checks (%s)', { timeout: 120_000 }, (kind) => {
  test('reachable, schema current; a stale daily stage fails, a weekly one 6 days old is fresh, a never-run one warns with its last error', async () => {
    const t = await freshDatabase(kind)
    const db = await t.open()
    const ins = (stage: string, status: string, finished: Date, error: string | null = null) =>
      db.pool.query(`INSERT INTO seedops_stage_runs (stage, as_of, status, started_at, finished_at, error) VALUES ($1, $2::date, $3, $4, $4, $5)`, [stage, finished.toISOString().slice(0, 10), status, finished, error])
    await ins('aggregate-features', 'succeeded', hoursAgo(8))
    await ins('compute-kpis', 'succeeded', hoursAgo(31))
    await ins('compute-kpis', 'failed', hoursAgo(7), 'cannot reach the database\nstack…')
    await ins('calibrate-irt', 'succeeded', hoursAgo(6))
    await ins('generate-report', 'succeeded', hoursAgo(6 * 24))
    await ins('detect-inactivity', 'failed', hoursAgo(4), 'relation "session" does not exist')
    await db.close()

    const r = await check(['database'], t.env)
    const by = (subject: string) => r.findings.find((f) => f.id === 'db.freshness' && f.subject === subject)!
    expect(r.findings.find((f) => f.id === 'db.reachable')).toMatchObject({ status: 'ok', message: expect.stringMatching(/answers \(PostgreSQL \d+/) })
    expect(r.findings.find((f) => f.id === 'db.schema')).toMatchObject({ status: 'ok', message: `schema at ${knownMigrations().at(-1)} (current)` })
    expect(by('compute-kpis')).toMatchObject({
      status: 'fail',
      message: 'stage compute-kpis is stale: last success 31h ago (as of 2026-11-20), daily limit 26 h — last run failed: cannot reach the database',
      fix: ['seedops jobs trigger compute-kpis -n seedtest --wait', 'or locally: seedops run compute-kpis'],
    })
    expect(by('aggregate-features')).toMatchObject({ status: 'ok', message: 'stage aggregate-features: last success 8h ago (as of 2026-11-21)' })
    expect(by('generate-report')).toMatchObject({ status: 'ok', message: 'stage generate-report: last success 6d ago (as of 2026-11-15)' })
    expect(by('detect-inactivity')).toMatchObject({ status: 'warn', message: 'stage detect-inactivity has no successful run recorded — last run failed: relation "session" does not exist' })
    expect(r.summary).toMatchObject({ fail: 1, warn: 1, failedChecks: ['db.freshness'] })
    expect(r.findings[0].id).toBe('db.freshness')
  })

  test('schema behind: db.schema fails naming the pending migration, freshness is skipped', async () => {
    const t = await freshDatabase(kind, { migrated: false })
    const r = await check(['db'], t.env)
    expect(r.findings[0]).toMatchObject({ id: 'db.schema', status: 'fail', message: `schema is behind: version none, ${knownMigrations().length} pending (${knownMigrations().join(', ')})`, fix: ['seedops db migrate'] })
    expect(r.skipped).toEqual([{ check: 'db.freshness', reason: 'db.schema failed' }])
  })
})

describe('doctor database not configured', () => {
  test('warns and skips (fails with --require-db); a bad URL fails with the password redacted', async () => {
    // No DATABASE_URL, no SEEDOPS_HOME, and no embedded data folder in the working directory.
    const cwd = process.cwd()
    process.chdir(mkdtempSync(join(tmpdir(), 'doctor-nodb-')))
    try {
      const r = await check(['database'], {})
      expect(r.findings).toEqual([expect.objectContaining({ id: 'db.reachable', status: 'warn', message: 'no database configured: database checks skipped' })])
      expect(r.skipped).toEqual([
        { check: 'db.schema', reason: 'no database configured' },
        { check: 'db.freshness', reason: 'no database configured' },
      ])
      const req = await check(['database'], {}, { requireDb: true })
      expect(req.findings[0]).toMatchObject({ id: 'db.reachable', status: 'fail', message: 'no database configured: database checks skipped' })
      expect(req.summary.fail).toBe(1)
    } finally {
      process.chdir(cwd)
    }
    const bad = await check(['db.reachable'], { DATABASE_URL: 'postgres://seed:Sup3rSecretPw@127.0.0.1:1/none' })
    expect(bad.findings[0]).toMatchObject({ id: 'db.reachable', status: 'fail' })
    expect(bad.findings[0].message).toContain('postgres://seed:[REDACTED]@127.0.0.1:1/none')
    expect(JSON.stringify(bad) + renderReport(bad)).not.toContain('Sup3rSecretPw')
  })
})

describe('doctor object store and IRT service', { timeout: 60_000 }, () => {
  let s3: TestS3
  let irt: Server
  let irtUrl: string
  const TOKEN = 'irt-bearer-Zk3v9QpL'
  beforeAll(async () => {
    s3 = await startS3(['seedtest-reports'])
    irt = createServer((req, res) => {
      if (req.url === '/slow/healthz') return // never answers
      const ok = req.url?.endsWith('/healthz') && req.headers.authorization === `Bearer ${TOKEN}`
      res.writeHead(ok ? 200 : 401, { 'Content-Type': 'application/json' }).end(ok ? '{"status":"ok"}' : '{"error":"unauthorized"}')
    })
    await new Promise<void>((r) => irt.listen(0, '127.0.0.1', r))
    irtUrl = `http://127.0.0.1:${(irt.address() as AddressInfo).port}`
  })
  afterAll(async () => {
    await s3?.close()
    irt?.closeAllConnections()
    await new Promise((r) => irt?.close(r))
  })

  test('S3: a writable bucket is ok and the probe object is gone; a missing bucket fails naming it', async () => {
    const ok = await check(['storage'], { ...s3.env, S3_BUCKET: 'seedtest-reports' })
    expect(ok.findings).toEqual([expect.objectContaining({ id: 'storage.s3', status: 'ok', message: `s3://seedtest-reports (region us-east-1, endpoint ${s3.endpoint}) writable (probe object put and deleted)` })])
    const { ListObjectsV2Command } = await import('@aws-sdk/client-s3')
    const left = await s3.client.send(new ListObjectsV2Command({ Bucket: 'seedtest-reports' }))
    expect(left.Contents ?? []).toEqual([])

    const missing = await check(['storage'], { ...s3.env, S3_BUCKET: 'no-such-bucket' })
    expect(missing.findings[0]).toMatchObject({ id: 'storage.s3', status: 'fail', message: expect.stringContaining('bucket no-such-bucket does not exist') })
    expect(missing.findings[0].fix![0]).toContain('aws s3 mb s3://no-such-bucket')
    expect(JSON.stringify(missing)).not.toContain(s3.env.AWS_SECRET_ACCESS_KEY + '"')

    const none = await check(['storage'], {})
    expect(none.findings).toEqual([])
    expect(none.skipped).toEqual([{ check: 'storage.s3', reason: 'S3_BUCKET not set' }])
  })

  test('IRT service: healthy with the token; a wrong token, a dead port and a hang each fail with the cause; the token is never printed', async () => {
    const ok = await check(['irt'], { R_IRT_BASE_URL: irtUrl, R_IRT_INTERNAL_TOKEN: TOKEN })
    expect(ok.findings[0]).toMatchObject({ id: 'irt.health', status: 'ok', message: expect.stringMatching(new RegExp(`^${irtUrl} healthy \\(HTTP 200, \\d+ ms\\)$`)) })
    const wrong = await check(['irt'], { R_IRT_BASE_URL: irtUrl, R_IRT_INTERNAL_TOKEN: 'wrong-token-abc' })
    expect(wrong.findings[0]).toMatchObject({ status: 'fail', message: `${irtUrl} rejected the token (HTTP 401)` })
    expect(wrong.findings[0].fix).toContain('Sync the cluster secret: seedops secrets ensure --only irt --update -n seedtest')
    const closed = createServer()
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r))
    const deadUrl = `http://127.0.0.1:${(closed.address() as AddressInfo).port}`
    await new Promise((r) => closed.close(r))
    const dead = await check(['irt'], { R_IRT_BASE_URL: deadUrl, R_IRT_INTERNAL_TOKEN: TOKEN })
    expect(dead.findings[0]).toMatchObject({ status: 'fail', message: `${deadUrl} unreachable: ECONNREFUSED` })
    const slow = await check(['irt'], { R_IRT_BASE_URL: `${irtUrl}/slow`, R_IRT_INTERNAL_TOKEN: TOKEN, SEEDOPS_IRT_TIMEOUT_MS: '300' })
    expect(slow.findings[0]).toMatchObject({ status: 'fail', message: `${irtUrl} unreachable: no answer within 300 ms` })
    for (const r of [ok, wrong, dead, slow]) expect(JSON.stringify(r) + renderReport(r)).not.toContain(TOKEN)
  })
})
