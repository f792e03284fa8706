import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Db } from '../../src/lib/db/index.js'
import detectInactivityStage from '../../src/lib/kpi/inactivity.js'
import { silentLogger } from '../../src/lib/output/index.js'
import { runStage } from '../../src/lib/stages/runner.js'
import { runCli } from '../support/cli.js'
import { DB_KINDS, freshDatabase, type TestDatabase } from '../support/db.js'
import { insertExams, insertQuestions } from '../support/fixtures.js'
import { resolveStageParams } from '../../src/lib/stages/options.js'

/**
 * as_of 2026-03-15, threshold 7 → the threshold window is 03-09..03-15: flagged iff the latest
 * activity over ALL sources is before 03-09 00:00 UTC (and inside the 56-day lookback, from 01-19).
 * KPI week 03-09..03-15 (as_of Sunday 03-15).
 */
const AS_OF = '2026-03-15'
const WEEK = '2026-03-09'
const exam = (user: string, at: string, n = 1) => ({ session_id: `${user}-${at}`, user_id: user, at, questions: Array.from({ length: n }, () => ({ question_id: 1, is_correct: true })) })

async function loadFixture(db: Db) {
  await insertQuestions(db.pool, [{ id: 1, topic: 'alg' }])
  await insertExams(db.pool, [
    exam('i_exam', '2026-03-05T10:00:00Z'), // 10 days idle → flagged
    exam('i_exact', '2026-03-08T23:59:59Z'), // exactly 7 days (03-08 → 03-15) → flagged
    exam('i_edge', '2026-03-09T00:00:00Z'), // 6 days → not flagged
    exam('i_sess', '2026-03-01T10:00:00Z'), // idle in exam_results, but session.ended_at 03-12 → not flagged (once session exists)
    exam('i_feat', '2026-03-01T10:00:00Z'), // features_topic_daily.last_seen_at 03-10 → not flagged
    exam('i_resp', '2026-03-02T10:00:00Z'), // responses.responded_at 03-11 → not flagged (once responses exists)
    exam('i_recent', '2026-03-14T10:00:00Z'), // active → not flagged
    exam('i_ancient', '2026-01-01T10:00:00Z'), // outside the 56-day lookback → not flagged
    exam('i_future', '2026-03-05T10:00:00Z'), // flagged: its 03-20 activity is after as_of (a back-filled date)
    exam('i_future', '2026-03-20T10:00:00Z'),
    exam('i_kept', '2026-03-04T10:00:00Z'), // flagged; its existing I/E/R/A survive
  ])
  await db.pool.query(`INSERT INTO features_topic_daily (user_id, topic_id, date, attempts, correct, last_seen_at) VALUES ('i_feat', 'alg', '2026-03-10', 1, 1, '2026-03-10T08:00:00Z')`)
  await db.pool.query(`INSERT INTO weekly_kpi (user_id, week_start, kpis) VALUES ('i_kept', $1, '{"I_t": 0.1, "E_t": 0.2, "R_t": 0.3, "A_t": 0.4, "P": 0.99, "S": 0.01, "note": "x"}')`, [WEEK])
  await db.pool.query(`INSERT INTO seedops_ability_history (user_id, theta, se, source, key, measured_at) VALUES ('i_sess_only', 0.2, 0.4, 'test', 'a', '2026-03-02T12:00:00Z')`)
}

async function addOptionalSources(db: Db) {
  await db.pool.query(`CREATE TABLE session (id serial PRIMARY KEY, user_id text, started_at timestamptz, ended_at timestamptz)`)
  await db.pool.query(`INSERT INTO session (user_id, started_at, ended_at) VALUES
    ('i_sess', '2026-03-12T09:00:00Z', '2026-03-12T09:30:00Z'),
    ('i_sess_only', '2026-03-02T09:00:00Z', '2026-03-02T09:30:00Z'),
    ('i_recent', '2026-03-15T09:00:00Z', NULL)`)
  await db.pool.query(`CREATE TABLE responses (user_id text, item_id bigint, is_correct boolean, responded_at timestamptz)`)
  await db.pool.query(`INSERT INTO responses VALUES ('i_resp', 1, true, '2026-03-11T10:00:00Z')`)
}

const run = (db: Db, options: Record<string, unknown> = {}, dryRun = false) =>
  runStage(db, detectInactivityStage, resolveStageParams(detectInactivityStage, options, {}), { asOf: AS_OF, dryRun, logger: silentLogger })

describe.each(DB_KINDS)('detect-inactivity on %s', (kind) => {
  let t: TestDatabase
  let db: Db
  beforeAll(async () => {
    t = await freshDatabase(kind)
    db = await t.open()
    await loadFixture(db)
  })
  afterAll(async () => {
    await db?.close().catch(() => {})
  })

  it('without session/responses tables: reads the sources that exist and says which are absent', async () => {
    const r = await run(db, {}, true)
    expect(r.summary!.sources).toEqual(['exam_results', 'features_topic_daily'])
    expect(r.summary!.sourcesMissing).toEqual(['responses', 'session'])
    expect(r.summary!.flagged.map((f) => f.user_id).sort()).toEqual(['i_exact', 'i_exam', 'i_future', 'i_kept', 'i_resp', 'i_sess'])
  })

  it('flags exactly the users idle in every source, recomputes P and S, keeps I/E/R/A', async () => {
    await addOptionalSources(db)
    const r = await run(db)
    const s = r.summary!
    expect(s.sources).toEqual(['exam_results', 'responses', 'features_topic_daily', 'session'])
    expect(s.inactiveSince).toBe('2026-03-09T00:00:00Z')
    const flagged = Object.fromEntries(s.flagged.map((f) => [f.user_id, f]))
    // i_sess_only is active only in `session` (03-02): flagged, and its why names that source.
    expect(Object.keys(flagged).sort()).toEqual(['i_exact', 'i_exam', 'i_future', 'i_kept', 'i_sess_only'])
    expect(flagged.i_exact).toMatchObject({ days_inactive: 7, last_activity: '2026-03-08T23:59:59.000Z', last_source: 'exam_results' })
    expect(flagged.i_sess_only).toMatchObject({ days_inactive: 13, last_source: 'session', sources: { session: '2026-03-02T09:30:00.000Z' } })
    expect(flagged.i_future!.last_activity).toBe('2026-03-05T10:00:00.000Z')
    expect(r.rows).toEqual({ flagged: 5, weekly_kpi: 5 })
    expect(r.table!.rows).toHaveLength(5)

    const k = Object.fromEntries((await db.pool.query(`SELECT user_id, kpis FROM weekly_kpi WHERE week_start = $1`, [WEEK])).rows.map((x) => [x.user_id, x.kpis]))
    // i_exam: one session (03-05) in the 56 days ending 03-15 → d = 10: 0.6·10/14 + 0 (one session) + 0.15·(1 − 1/10)
    expect(k.i_exam.S).toBeCloseTo(0.6 * (10 / 14) + 0.135, 12)
    expect(k.i_exam.P).toBeNull()
    expect(k.i_exam).not.toHaveProperty('I_t')
    // i_kept: last session 03-04 → d = 11; P: no θ → null. I/E/R/A and other keys kept.
    expect(k.i_kept).toMatchObject({ I_t: 0.1, E_t: 0.2, R_t: 0.3, A_t: 0.4, note: 'x', P: null })
    expect(k.i_kept.S).toBeCloseTo(0.6 * (11 / 14) + 0.135, 12)
    // i_sess_only: no attempts → S null; θ 0.2 (SE 0.4), no goal → 1 − Φ((0 − 0.2)/0.4) = Φ(0.5)
    expect(k.i_sess_only.S).toBeNull()
    expect(k.i_sess_only.P).toBeCloseTo(0.6914624612740131, 12)
    // i_exact: last session 03-08 23:59:59 → d = 7: 0.6·7/14 + 0.135 = 0.435
    expect(k.i_exact.S).toBeCloseTo(0.435, 12)
    expect(Object.keys(k).sort()).toEqual(['i_exact', 'i_exam', 'i_future', 'i_kept', 'i_sess_only'])

    // Idempotent.
    await run(db)
    const again = Object.fromEntries((await db.pool.query(`SELECT user_id, kpis FROM weekly_kpi WHERE week_start = $1`, [WEEK])).rows.map((x) => [x.user_id, x.kpis]))
    expect(again).toEqual(k)
  })

  it('--threshold-days moves the boundary; a threshold ≥ the lookback is a usage error', async () => {
    // threshold 8 → window 03-08..03-15: i_exact (03-08 23:59:59) is now active
    const r = await run(db, { thresholdDays: 8 }, true)
    expect(r.summary!.flagged.map((f) => f.user_id)).not.toContain('i_exact')
    expect(r.summary!.flagged.map((f) => f.user_id)).toContain('i_exam')
    expect(() => resolveStageParams(detectInactivityStage, { thresholdDays: 60 }, {})).toThrow(/must be shorter than the lookback/)
  })

  it('as a process: lists who was flagged and why', async () => {
    await db.close()
    try {
      const out = await runCli(['run', 'detect-inactivity', '--date', AS_OF, '--dry-run'], { env: t.env })
      expect(out.code).toBe(0)
      expect(out.stdout).toMatch(/detect-inactivity dry run as of 2026-03-15: succeeded/)
      expect(out.stdout).toMatch(/i_sess_only\s+2026-03-02T09:30:00.000Z\s+13\s+session 2026-03-02 09:30/)
      const bad = await runCli(['run', 'detect-inactivity', '--threshold-days', '0'], { env: t.env })
      expect(bad.code).toBe(2)
    } finally {
      db = await t.open()
    }
  }, 240_000) // spawns the CLI: slow on a loaded machine
})
