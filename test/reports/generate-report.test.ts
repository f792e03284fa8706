import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest'
import type { Db } from '../../src/lib/db/index.js'
import { silentLogger } from '../../src/lib/output/index.js'
import { gatherReports } from '../../src/lib/reports/data.js'
import { renderHtml } from '../../src/lib/reports/html.js'
import { churnBand, isoWeekLabel } from '../../src/lib/reports/labels.js'
import { inShard, resolveShard, shardOf } from '../../src/lib/reports/shard.js'
import { createReportStage, type ReportParams } from '../../src/lib/reports/stage.js'
import { runStage } from '../../src/lib/stages/runner.js'
import { LocalStore, S3Store, reportKey } from '../../src/lib/storage/index.js'
import { runChecks } from '../../src/lib/verify/run.js'
import { reportsGroup } from '../../src/lib/verify/reports.js'
import { DB_KINDS, freshDatabase } from '../support/db.js'
import { DATE, EVIL, EVIL_TOPIC, WEEK, seedReportFixture } from './fixture.js'
import { startS3, type TestS3 } from './s3.js'
import { checkWellFormed, svgsOf } from './xml.js'

describe('pure parts', () => {
  test('churn bands: low < 0.3 ≤ medium < 0.7 ≤ high', () => {
    expect([0, 0.299, 0.3, 0.699, 0.7, 1, null].map(churnBand)).toEqual(['low', 'low', 'medium', 'medium', 'high', 'high', null])
  })
  test('ISO week labels', () => {
    expect(isoWeekLabel('2026-11-16')).toBe('2026-W47')
    expect(isoWeekLabel('2026-12-28')).toBe('2026-W53')
    expect(isoWeekLabel('2024-12-30')).toBe('2025-W01')
  })
  test('shards partition any population exactly and stably', () => {
    const users = Array.from({ length: 2000 }, (_, i) => `u${i}@example.org`)
    for (const n of [1, 2, 3, 7]) {
      const parts = Array.from({ length: n }, (_, i) => users.filter((u) => inShard(u, { index: i, count: n })))
      expect(parts.flat().sort()).toEqual([...users].sort())
      expect(new Set(parts.flat()).size).toBe(users.length)
      if (n > 1) for (const p of parts) expect(p.length).toBeGreaterThan(users.length / n / 2)
    }
    expect(shardOf('alice', 4)).toBe(shardOf('alice', 4))
  })
  test('--shard, JOB_COMPLETION_INDEX (+ count) and their errors', () => {
    expect(resolveShard('2/4', undefined, {})).toEqual({ index: 2, count: 4 })
    expect(resolveShard(undefined, undefined, {})).toEqual({ index: 0, count: 1 })
    expect(resolveShard(undefined, undefined, { JOB_COMPLETION_INDEX: '1', JOB_COMPLETION_COUNT: '3' })).toEqual({ index: 1, count: 3 })
    expect(resolveShard(undefined, 5, { JOB_COMPLETION_INDEX: '4' })).toEqual({ index: 4, count: 5 })
    expect(() => resolveShard(undefined, undefined, { JOB_COMPLETION_INDEX: '1' })).toThrow(/number of shards/)
    expect(() => resolveShard('4/4', undefined, {})).toThrow(/not in 0..3/)
    expect(() => resolveShard('x', undefined, {})).toThrow(/not i\/n/)
  })
})

for (const kind of DB_KINDS) {
  describe(`generate-report on ${kind}`, () => {
    let db: Db
    let s3: TestS3
    let users: string[]
    const dirs: string[] = []
    const s3Cfg = (bucket: string) => ({ kind: 's3' as const, bucket, region: 'us-east-1', endpoint: s3.endpoint, forcePathStyle: true })
    const params = (o: Partial<ReportParams> = {}): ReportParams => ({
      formats: ['html'],
      renderer: 'builtin',
      store: s3Cfg('reports'),
      shard: { index: 0, count: 1 },
      batchSize: 7,
      concurrency: 3,
      week: WEEK,
      ...o,
    })
    const run = (p: ReportParams, opts: { dryRun?: boolean; deps?: Parameters<typeof createReportStage>[0] } = {}) =>
      runStage(db, createReportStage({ s3Client: s3.client, ...opts.deps }), p, { asOf: DATE, dryRun: opts.dryRun ?? false, logger: silentLogger })
    const artifacts = async () =>
      (await db.pool.query<{ user_id: string; format: string; url: string; week_start: string }>(`SELECT user_id, format, url, week_start FROM report_artifacts ORDER BY user_id, format`)).rows
    const tmp = () => {
      const d = mkdtempSync(join(tmpdir(), 'reports-'))
      dirs.push(d)
      return d
    }

    beforeAll(async () => {
      s3 = await startS3(['reports'])
      db = await (await freshDatabase(kind)).open()
      users = await seedReportFixture(db.pool, 20)
    })
    afterAll(async () => {
      await db?.close()
      await s3?.close()
      for (const d of dirs) rmSync(d, { recursive: true, force: true })
    })
    beforeEach(async () => {
      await db.pool.query(`DELETE FROM report_artifacts`)
    })

    test('gathers the week set-based: KPIs, θ trend, topics, daily attempts, goals, recommendations', async () => {
      const [alice, evil] = await gatherReports(db.pool, ['alice', EVIL], { weekStart: WEEK })
      expect(alice!.kpis.map((k) => [k.label, k.display])).toEqual([
        ['Improvement', '+0.12'],
        ['Time efficiency', '25%'],
        ['Recovery of past mistakes', '50%'],
        ['Engagement', '64%'],
        ['Goal probability', '73%'],
        ['Churn risk', '82%'],
      ])
      expect(alice!.goal).toEqual({ P: 0.73, ci: [0.6, 0.85], target: 0.5, sigma: 0.4 })
      expect(alice!.churn).toEqual({ S: 0.82, band: 'high' })
      expect(alice!.theta).toEqual([
        { date: '2026-11-10', theta: 0.1, se: 0.3 },
        { date: '2026-11-20', theta: 0.4, se: 0.25 },
      ])
      // 28 days ending 2026-11-22: a1 (11-03) is outside the week but inside the 4 weeks.
      expect(alice!.topics).toEqual([
        { topicId: 'algebra', attempts: 6, correct: 1, accuracy: 1 / 6, weekAttempts: 4, weekCorrect: 1 },
        { topicId: 'geometry', attempts: 5, correct: 5, accuracy: 1, weekAttempts: 4, weekCorrect: 4 },
      ])
      expect(alice!.daily).toHaveLength(28)
      expect(alice!.daily.filter((d) => d.attempts > 0)).toEqual([
        { date: '2026-11-03', attempts: 3, correct: 1 },
        { date: '2026-11-17', attempts: 4, correct: 3 },
        { date: '2026-11-19', attempts: 3, correct: 2 },
        { date: '2026-11-20', attempts: 1, correct: 0 },
      ])
      expect(alice!.goals.map((g) => g.topicId)).toEqual(['algebra', 'geometry'])
      // Latest answers: item 2 wrong (11-20, 3 wrong), item 1 wrong (11-19); 3 and 4 right.
      expect(alice!.revisit.map((r) => [r.itemId, r.lastWrongAt, r.wrongCount])).toEqual([
        ['2', '2026-11-20', 3],
        ['1', '2026-11-19', 2],
      ])
      expect(alice!.recommendations.map((r) => r.kind)).toEqual(['churn', 'weak-topic', 'revisit', 'revisit'])
      expect(alice!.recommendations[1]!.text).toBe('Practise algebra: 17% correct over 6 attempts in the last 4 weeks.')
      expect(evil!.theta).toEqual([])
      expect(evil!.topics.map((t) => t.topicId)).toEqual([EVIL_TOPIC])
      expect(evil!.kpis.find((k) => k.key === 'P')!.display).toBe('—')
    })

    test('HTML: labels and values, gauge interval, well-formed SVG, untrusted text escaped, deterministic', async () => {
      const [alice, evil] = await gatherReports(db.pool, ['alice', EVIL], { weekStart: WEEK })
      const html = renderHtml(alice!)
      for (const s of ['Improvement', '+0.12', 'Time efficiency', 'Recovery of past mistakes', 'Engagement', '64%', 'Goal probability', '73%', 'Churn risk', '82%', '95% interval 60%–85%', 'class="band high"', '2026-W47', 'Practise algebra'])
        expect(html).toContain(s)
      expect(renderHtml(alice!)).toBe(html)
      const svgs = svgsOf(html)
      expect(svgs.length).toBe(5)
      for (const svg of svgs) expect(checkWellFormed(svg)).toBeNull()
      expect(checkWellFormed(html.slice(html.indexOf('<main>'), html.indexOf('</main>') + 7))).toBeNull()
      expect(html).not.toMatch(/<script|\b(?:src|href)=/i)

      const evilHtml = renderHtml(evil!)
      expect(evilHtml).not.toContain(EVIL)
      expect(evilHtml).not.toContain(EVIL_TOPIC)
      expect(evilHtml).not.toMatch(/<script|<img/i)
      expect(evilHtml).toContain('&lt;script&gt;alert(1)&lt;/script&gt;')
      expect(evilHtml).toContain('No ability estimates yet.')
      for (const svg of svgsOf(evilHtml)) expect(checkWellFormed(svg)).toBeNull()
    })

    test('a bucket that does not exist: clear error, no object, no artifact row', async () => {
      const e = await run(params({ store: s3Cfg('no-such-bucket') })).catch((x) => x)
      expect(e.code).toBe('S3_NO_BUCKET')
      expect(await artifacts()).toEqual([])
      const runs = await db.pool.query(`SELECT status FROM seedops_stage_runs WHERE stage = 'generate-report' ORDER BY id DESC LIMIT 1`)
      expect(runs.rows[0].status).toBe('failed')
    })

    test('S3: objects equal the rendered bytes, one row per user/week/format, idempotent re-run', async () => {
      const r1 = await run(params())
      expect(r1.rows).toMatchObject({ report_artifacts: users.length, objects: users.length, failed_users: 0 })
      const rows1 = await artifacts()
      expect(rows1.map((r) => r.user_id).sort()).toEqual(users)
      expect(rows1.every((r) => r.week_start === WEEK && r.format === 'html')).toBe(true)
      const store = new S3Store(s3.client, s3Cfg('reports'))
      const alice = rows1.find((r) => r.user_id === 'alice')!
      expect(alice.url).toBe(`s3://reports/reports/alice/${WEEK}/report.html`)
      const [data] = await gatherReports(db.pool, ['alice'], { weekStart: WEEK })
      expect((await store.get(reportKey('alice', WEEK, 'html'))).toString('utf8')).toBe(renderHtml(data!))
      expect(rows1.find((r) => r.user_id === EVIL)!.url).toBe(`s3://reports/reports/%3Cscript%3Ealert%281%29%3C%2Fscript%3E/${WEEK}/report.html`)
      for (const r of rows1) expect(await store.exists(r.url.slice('s3://reports/'.length))).toBe(true)

      const r2 = await run(params())
      expect(r2.rows.report_artifacts).toBe(users.length)
      expect(await artifacts()).toEqual(rows1)

      const v = await runChecks([reportsGroup({ s3Client: s3.client, env: {} })], { q: db.pool, asOf: DATE, now: new Date(), options: {} })
      expect(v.checks.map((c) => [c.id, c.status])).toEqual([
        ['reports.freshness', 'ok'],
        ['reports.coverage', 'ok'],
        ['reports.urls', 'ok'],
        ['reports.objects', 'ok'],
      ])
    })

    test('one user failing is counted and reported; the others are stored and recorded', async () => {
      const dir = tmp()
      const local = new LocalStore(dir)
      const flaky = Object.assign(Object.create(local), {
        put: async (key: string, body: Buffer, ct: string) => {
          if (key.includes('/bob/')) throw new Error('disk hiccup for bob')
          return local.put(key, body, ct)
        },
      })
      const r = await run(params({ store: { kind: 'local', dir } }), { deps: { store: flaky } })
      expect(r.summary!.failedUsers).toBe(1)
      // The stored reports commit, but the run is recorded as failed.
      expect(r.status).toBe('failed')
      const log = await db.pool.query(`SELECT status, error FROM seedops_stage_runs WHERE id = $1`, [r.runId])
      expect(log.rows[0]).toMatchObject({ status: 'failed', error: expect.stringContaining('1 of') })
      expect(r.summary!.failures).toEqual([{ user_id: 'bob', format: 'html', error: 'INTERNAL: disk hiccup for bob' }])
      const rows = await artifacts()
      expect(rows.map((x) => x.user_id).sort()).toEqual(users.filter((u) => u !== 'bob'))
      expect(readFileSync(new URL(rows.find((x) => x.user_id === 'alice')!.url), 'utf8')).toContain('Improvement')
      const v = await runChecks([reportsGroup({ env: {} })], { q: db.pool, asOf: DATE, now: new Date(), options: {} })
      const cov = v.checks.find((c) => c.id === 'reports.coverage')!
      expect(cov.status).toBe('fail')
      expect(cov.rows).toEqual([{ user_id: 'bob', format: 'html' }])
    })

    test('shards split the users exactly: union = all, no overlap; dry run writes nothing', async () => {
      const dir = tmp()
      const seen: string[][] = []
      for (let i = 0; i < 3; i++) {
        await db.pool.query(`DELETE FROM report_artifacts`)
        const r = await run(params({ store: { kind: 'local', dir }, shard: { index: i, count: 3 } }))
        const rows = await artifacts()
        expect(r.rows.report_artifacts).toBe(rows.length)
        seen.push(rows.map((x) => x.user_id))
      }
      expect(seen.flat().sort()).toEqual(users)
      expect(new Set(seen.flat()).size).toBe(users.length)
      const runs = await db.pool.query(`SELECT params->>'lockScope' AS scope FROM seedops_stage_runs WHERE stage = 'generate-report' AND status = 'succeeded' ORDER BY id DESC LIMIT 3`)
      expect(runs.rows.map((x) => x.scope).sort()).toEqual(['shard:0/3', 'shard:1/3', 'shard:2/3'])

      await db.pool.query(`DELETE FROM report_artifacts`)
      const empty = tmp()
      const dry = await run(params({ store: { kind: 'local', dir: join(empty, 'out') }, users: ['alice', 'bob'] }), { dryRun: true })
      expect(dry.table!.rows.map((x) => x[0])).toEqual(['alice', 'bob'])
      expect(await artifacts()).toEqual([])
      expect(() => readFileSync(join(empty, 'out', 'alice', WEEK, 'report.html'))).toThrow()
    })

    test.skipIf(kind !== 'postgres')('different shards run at once; the same shard is refused', async () => {
      const dir = tmp()
      const [a, b] = await Promise.all([0, 1].map((i) => run(params({ store: { kind: 'local', dir }, shard: { index: i, count: 2 } }))))
      expect(a.status).toBe('succeeded')
      expect(b.status).toBe('succeeded')
      // The same shard while the first run surely holds its lock (its transaction kept open 1.5 s;
      // without the hold a loaded machine can finish the first before the second starts).
      process.env.SEEDOPS_TEST_HOLD_TX_MS = '1500'
      try {
        const first = run(params({ store: { kind: 'local', dir }, shard: { index: 0, count: 2 } }))
        for (let i = 0; i < 200; i++) {
          const r = await db.pool.query(`SELECT 1 FROM seedops_stage_runs WHERE stage = 'generate-report' AND status = 'running' AND params->>'lockScope' = 'shard:0/2'`)
          if (r.rowCount) break
          await new Promise((x) => setTimeout(x, 25))
        }
        await expect(run(params({ store: { kind: 'local', dir }, shard: { index: 0, count: 2 } }))).rejects.toMatchObject({ code: 'STAGE_LOCKED' })
        expect((await first).status).toBe('succeeded')
      } finally {
        delete process.env.SEEDOPS_TEST_HOLD_TX_MS
      }
    })
  })
}
