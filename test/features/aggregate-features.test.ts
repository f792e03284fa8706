import { once } from 'node:events'
import { beforeAll, describe, expect, it } from 'vitest'
import type { Db } from '../../src/lib/db/index.js'
import aggregateFeatures from '../../src/lib/features/stage.js'
import { runStage } from '../../src/lib/stages/runner.js'
import { silentLogger } from '../../src/lib/output/index.js'
import { runCli, spawnCli } from '../support/cli.js'
import { DB_KINDS, freshDatabase, type TestDatabase } from '../support/db.js'
import { insertExams, insertQuestions, waitForOutput } from '../support/fixtures.js'

const AS_OF = '2026-03-15' // lookback 7 → target days 2026-03-09 .. 2026-03-15

/**
 * One learner, two topics. Expected values by hand:
 *  alg 03-15: s1 (q1 ✓ 10 s hint, q2 ✗ 20 s no hint, q1 ✓ 40 s hint data missing) + s2 (q2 ✓ 30 s, updated_at NULL)
 *     attempts 4, correct 3, times 10/20/30/40 s → avg 25 000 ms, median (20 000 + 30 000)/2 = 25 000 ms,
 *     hints: 1 (s2's q2 has used_hints 0; s1's third has none: missing, not 0)
 *     improvement: recent 03-09..03-15 = 03-10 (2, 1✓) + 03-15 (4, 3✓) = 4/6; prev 03-02..03-08 = 03-05 (3, 1✓) = 1/3 → 1/3
 *  alg 03-10: s3 (q1 is_correct=false though legacy correct=true → ✗; q2 legacy correct=true → ✓), no times, no hints
 *     attempts 2, correct 1, avg/median null, hints null; improvement: prev window 02-24..03-03 empty → null
 *  geo 03-15: s1 q3 ✓ 5 s → attempts 1, correct 1, median 5000, improvement null (no prev)
 *  Not in the window: s4 on 03-05 (only feeds improvement), s5 on 03-16 (after as-of).
 *  s1's item 99 has no topic (not in question, no topic key): left out, counted as 1.
 *  Malformed: m1 (result_json is a string), m2 (question_id "abc") — left out, counted, named.
 */
async function loadFixture(db: Db) {
  await insertQuestions(db.pool, [
    { id: 1, topic: 'alg' },
    { id: 2, topic: 'alg' },
    { id: 3, topic: 'geo' },
  ])
  await insertExams(db.pool, [
    {
      session_id: 's1', user_id: 'u1', at: '2026-03-15T10:00:00Z', updated: '2026-03-15T10:05:00Z',
      questions: [
        { question_id: 1, is_correct: true, time_spent_sec: 10, used_hints: 1 },
        { question_id: 2, is_correct: false, time_spent_sec: 20, used_hints: 0 },
        { question_id: '1', is_correct: true, time_spent_sec: 40 },
        { question_id: 3, is_correct: true, time_spent_sec: 5, used_hints: false },
        { question_id: 99, is_correct: true }, // unknown item, no topic: left out and counted
      ],
    },
    { session_id: 's2', user_id: 'u1', at: '2026-03-15T23:30:00Z', updated: null, questions: [{ question_id: 2, is_correct: true, time_spent_sec: 30, used_hints: 0 }] },
    { session_id: 's3', user_id: 'u1', at: '2026-03-10T12:00:00Z', questions: [{ question_id: 1, is_correct: false, correct: true }, { question_id: 2, correct: true }] },
    {
      session_id: 's4', user_id: 'u1', at: '2026-03-05T08:00:00Z',
      questions: [{ question_id: 1, is_correct: false }, { question_id: 2, is_correct: false }, { question_id: 1, is_correct: true }],
    },
    { session_id: 's5', user_id: 'u1', at: '2026-03-16T00:00:01Z', questions: [{ question_id: 1, is_correct: true }] },
    { session_id: 'm1', user_id: 'u1', at: '2026-03-12T09:00:00Z', raw: 'oops' },
    { session_id: 'm2', user_id: 'u1', at: '2026-03-13T09:00:00Z', raw: { questions: [{ question_id: 'abc', is_correct: true }] } },
  ])
}

async function featureRows(db: Db) {
  const r = await db.pool.query(
    `SELECT user_id, topic_id, date, attempts, correct, avg_time_ms, rt_median, hints, improvement, theta_estimate, last_seen_at
     FROM features_topic_daily ORDER BY date, topic_id`,
  )
  return r.rows.map((x) => ({ ...x, last_seen_at: new Date(x.last_seen_at).toISOString() }))
}

describe.each(DB_KINDS)('aggregate-features on %s', (kind) => {
  let t: TestDatabase
  beforeAll(async () => {
    t = await freshDatabase(kind)
    const db = await t.open()
    await loadFixture(db)
    await db.close()
  })

  it('computes the hand-computed numbers, names malformed rows, and re-runs to the same rows', async () => {
    const db = await t.open()
    try {
      const r1 = await runStage(db, aggregateFeatures, { lookbackDays: 7, includeTheta: false }, { asOf: AS_OF, dryRun: false, logger: silentLogger })
      const rows = await featureRows(db)
      expect(rows).toHaveLength(3)
      const [alg10, alg15, geo15] = rows
      expect(alg10).toMatchObject({ topic_id: 'alg', date: '2026-03-10', attempts: 2, correct: 1, avg_time_ms: null, rt_median: null, hints: null, improvement: null })
      expect(alg15).toMatchObject({ topic_id: 'alg', date: '2026-03-15', attempts: 4, correct: 3, avg_time_ms: 25000, rt_median: 25000, hints: 1 })
      expect(alg15!.improvement).toBeCloseTo(4 / 6 - 1 / 3, 12)
      expect(alg15!.last_seen_at).toBe('2026-03-15T23:30:00.000Z')
      expect(geo15).toMatchObject({ topic_id: 'geo', attempts: 1, correct: 1, rt_median: 5000, hints: 0, improvement: null })

      expect(r1.rows.malformed_exam_results).toBe(2)
      expect(r1.warnings.join(' ')).toMatch(/m1 \(result_json is not an object\)/)
      expect(r1.warnings.join(' ')).toMatch(/m2 \(questions with a missing or non-numeric question_id\)/)
      expect(r1.warnings.join(' ')).toContain('1 attempt(s) have no topic')

      const r2 = await runStage(db, aggregateFeatures, { lookbackDays: 7, includeTheta: false }, { asOf: AS_OF, dryRun: false, logger: silentLogger })
      expect(r2.rows.replaced).toBe(3)
      expect(await featureRows(db)).toEqual(rows)
      const log = await db.pool.query(`SELECT status, rows FROM seedops_stage_runs WHERE stage = 'aggregate-features' ORDER BY id`)
      expect(log.rows.map((x) => x.status)).toEqual(['succeeded', 'succeeded'])
      expect(log.rows[0].rows.features_topic_daily).toBe(3)
    } finally {
      await db.close()
    }
  })

  it('--include-theta fills the topic θ: EAP and posterior SD of every response to the topic\'s calibrated items up to that day', async () => {
    const db = await t.open()
    try {
      const item = { 1: { a: 1.3, b: -0.4 }, 2: { a: 0.8, b: 0.6 } } as const
      for (const [id, p] of Object.entries(item)) {
        await db.pool.query(`INSERT INTO mirt_item_params (item_id, model, params, version) VALUES ($1, '2PL', $2, 'test')`, [id, JSON.stringify({ ...p, c: 0 })])
      }
      await runStage(db, aggregateFeatures, { lookbackDays: 7, includeTheta: true }, { asOf: AS_OF, dryRun: false, logger: silentLogger })
      // Independent EAP by direct quadrature: 61 nodes on [−6, 6], N(0, 1) weights.
      const eap = (resp: [1 | 2, 0 | 1][]) => {
        let s0 = 0, s1 = 0, s2 = 0
        for (let q = 0; q < 61; q++) {
          const th = -6 + (12 * q) / 60
          let w = Math.exp(-th * th / 2)
          for (const [j, y] of resp) {
            const p = 1 / (1 + Math.exp(-item[j].a * (th - item[j].b)))
            w *= y ? p : 1 - p
          }
          s0 += w; s1 += w * th; s2 += w * th * th
        }
        const m = s1 / s0
        return { theta: m, sd: Math.sqrt(s2 / s0 - m * m) }
      }
      // alg up to 03-10: s4 (1✗ 2✗ 1✓), s3 (1✗ 2✓); up to 03-15 add s1 (1✓ 2✗ 1✓) and s2 (2✓).
      const upTo10 = eap([[1, 0], [2, 0], [1, 1], [1, 0], [2, 1]])
      const upTo15 = eap([[1, 0], [2, 0], [1, 1], [1, 0], [2, 1], [1, 1], [2, 0], [1, 1], [2, 1]])
      const rows = await db.pool.query(`SELECT topic_id, date, theta_estimate, theta_sd FROM features_topic_daily ORDER BY date, topic_id`)
      const [alg10, alg15, geo15] = rows.rows
      expect(alg10.theta_estimate).toBeCloseTo(upTo10.theta, 6)
      expect(alg10.theta_sd).toBeCloseTo(upTo10.sd, 6)
      expect(alg15.theta_estimate).toBeCloseTo(upTo15.theta, 6)
      expect(alg15.theta_sd).toBeCloseTo(upTo15.sd, 6)
      expect(alg15.theta_estimate).toBeGreaterThan(alg10.theta_estimate)
      // geo's item 3 has no parameters: no θ.
      expect(geo15).toMatchObject({ topic_id: 'geo', theta_estimate: null, theta_sd: null })
      await db.pool.query(`DELETE FROM mirt_item_params`)
    } finally {
      await db.close()
    }
  })

  it('--dry-run computes and reports but writes nothing', async () => {
    const db = await t.open()
    try {
      await db.pool.query(`DELETE FROM features_topic_daily`)
      const r = await runStage(db, aggregateFeatures, { lookbackDays: 7, includeTheta: false }, { asOf: AS_OF, dryRun: true, logger: silentLogger })
      expect(r.rows.features_topic_daily).toBe(3)
      expect(r.table?.rows.length).toBe(3)
      expect((await db.pool.query(`SELECT count(*)::int AS n FROM features_topic_daily`)).rows[0].n).toBe(0)
    } finally {
      await db.close()
    }
  })

  // Spawning the CLI takes seconds on a busy 2-core machine: these two get more time.
  it('a run killed with SIGKILL mid-write leaves the previous rows intact; the next run marks it abandoned', { timeout: 240_000 }, async () => {
    let db = await t.open()
    await runStage(db, aggregateFeatures, { lookbackDays: 7, includeTheta: false }, { asOf: AS_OF, dryRun: false, logger: silentLogger })
    const before = await featureRows(db)
    // New data that would change the 03-15 row if the killed run committed.
    await insertExams(db.pool, [{ session_id: 's6', user_id: 'u1', at: '2026-03-15T12:00:00Z', questions: [{ question_id: 2, is_correct: false }] }])
    await db.close()

    const child = spawnCli(['run', 'aggregate-features', '--date', AS_OF], { ...t.env, SEEDOPS_TEST_HOLD_TX_MS: '60000' })
    await waitForOutput(child.stderr!, (s) => s.includes('holding transaction'), 150_000)
    child.kill('SIGKILL')
    await once(child, 'close')

    db = await t.open()
    try {
      expect(await featureRows(db)).toEqual(before)
      await runStage(db, aggregateFeatures, { lookbackDays: 7, includeTheta: false }, { asOf: AS_OF, dryRun: false, logger: silentLogger })
      const after = await featureRows(db)
      expect(after.find((x) => x.topic_id === 'alg' && x.date === '2026-03-15')!.attempts).toBe(5)
      const log = await db.pool.query(`SELECT status, error FROM seedops_stage_runs WHERE stage = 'aggregate-features' ORDER BY id`)
      expect(log.rows.map((x) => x.status)).toContain('abandoned')
      expect(log.rows.at(-1).status).toBe('succeeded')
    } finally {
      await db.close()
    }
  })

  it('a second concurrent run is refused with a clear message and exit code 1', { timeout: 240_000 }, async () => {
    const first = spawnCli(['run', 'aggregate-features', '--date', AS_OF], { ...t.env, SEEDOPS_TEST_HOLD_TX_MS: '60000' })
    try {
      await waitForOutput(first.stderr!, (s) => s.includes('holding transaction'), 150_000)
      const second = await runCli(['run', 'aggregate-features', '--date', AS_OF], { env: t.env })
      expect(second.code).toBe(1)
      // Real server: the advisory lock; embedded: the data folder is held by the first process.
      expect(second.stderr).toMatch(kind === 'postgres' ? /another run of aggregate-features is in progress \(run #\d+ on .* pid \d+/ : /in use by another seedops process \(pid \d+/)
    } finally {
      first.kill('SIGKILL')
      await once(first, 'close')
    }
  })
})
