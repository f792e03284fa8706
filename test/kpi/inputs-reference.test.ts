import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Db } from '../../src/lib/db/index.js'
import { addDays, utcDayStart } from '../../src/lib/config/index.js'
import { loadKpiInputs } from '../../src/lib/kpi/compute.js'
import { DB_KINDS, freshDatabase, type TestDatabase } from '../support/db.js'
import { loadKpiFixture, loadRandomKpiData } from './fixture.js'

const AS_OF = '2026-03-15'

/**
 * The answer-derived inputs as the previous statement computed them, answer by answer: window
 * counts and sessions by count(DISTINCT row id) over every answer, medians and R_t's keys from
 * the same rows. KPI_INPUTS now reduces per session first and evaluates each column once; this
 * is the plain reading of the definitions it must still equal. Same parameters as KPI_INPUTS
 * ($7/$8 split and $9 unused here).
 */
const REFERENCE = `
WITH a AS (
  SELECT b.user_id, b.item_id, b.topic, b.correct, b.response_time_ms AS rt, b.hints_used, b.completed_at, b.exam_result_id AS sid,
         ($1::date - (b.completed_at AT TIME ZONE 'UTC')::date) AS ago
  FROM seedops_attempt_base b
  WHERE b.completed_at >= $2::timestamptz AND b.completed_at < $3::timestamptz AND ($5::text[] IS NULL OR b.user_id = ANY ($5::text[]))
), p AS (
  SELECT user_id,
         count(*) FILTER (WHERE ago < $4) AS n_active,
         count(*) FILTER (WHERE ago < 14) AS n_recent, count(*) FILTER (WHERE ago < 14 AND correct) AS c_recent,
         count(*) FILTER (WHERE ago BETWEEN 14 AND 27) AS n_prev, count(*) FILTER (WHERE ago BETWEEN 14 AND 27 AND correct) AS c_prev,
         percentile_cont(0.5) WITHIN GROUP (ORDER BY rt) FILTER (WHERE correct AND ago < 28) AS med_recent,
         percentile_cont(0.5) WITHIN GROUP (ORDER BY rt) FILTER (WHERE correct AND ago BETWEEN 28 AND 55) AS med_prev,
         count(*) FILTER (WHERE ago BETWEEN 28 AND 55 AND NOT correct) AS r_wrong,
         count(*) FILTER (WHERE ago < 28) AS a_attempts,
         count(hints_used) FILTER (WHERE ago < 28) AS a_hint_n, sum(hints_used) FILTER (WHERE ago < 28) AS a_hints,
         count(DISTINCT sid) FILTER (WHERE ago < 28) AS a_sessions,
         extract(epoch FROM max(completed_at) FILTER (WHERE ago < 28) - min(completed_at) FILTER (WHERE ago < 28)) / 86400.0 AS a_span,
         sum(rt) FILTER (WHERE ago < 28) / 1000.0 AS a_dwell, count(DISTINCT sid) FILTER (WHERE ago < 28 AND rt IS NOT NULL) AS a_dwell_n,
         count(DISTINCT sid) FILTER (WHERE ago < 56) AS s_sessions,
         extract(epoch FROM max(completed_at) FILTER (WHERE ago < 56) - min(completed_at) FILTER (WHERE ago < 56)) / 86400.0 AS s_span,
         $1::date - (max(completed_at) FILTER (WHERE ago < 56) AT TIME ZONE 'UTC')::date AS s_last
  FROM a GROUP BY user_id
), k AS (
  SELECT DISTINCT a.user_id, a.item_id, COALESCE(qu.topic_id::text, a.topic, '') AS topic_id
  FROM a LEFT JOIN question qu ON qu.id = a.item_id WHERE a.ago BETWEEN 28 AND 55 AND NOT a.correct
), r AS (
  SELECT a.user_id, count(*) AS r_n, count(*) FILTER (WHERE a.correct) AS r_c
  FROM a JOIN k ON k.user_id = a.user_id AND k.item_id = a.item_id LEFT JOIN question qu ON qu.id = a.item_id
  WHERE a.ago < 28 AND k.topic_id = COALESCE(qu.topic_id::text, a.topic, '') GROUP BY a.user_id
), u AS (
  SELECT user_id FROM p WHERE $6::boolean AND n_active > 0 UNION SELECT DISTINCT x FROM unnest($5::text[]) x WHERE NOT $6::boolean
)
SELECT u.user_id, COALESCE(p.n_recent, 0)::int AS n_recent, COALESCE(p.c_recent, 0)::int AS c_recent,
       COALESCE(p.n_prev, 0)::int AS n_prev, COALESCE(p.c_prev, 0)::int AS c_prev,
       p.med_recent::float8 AS med_recent, p.med_prev::float8 AS med_prev,
       COALESCE(p.r_wrong, 0)::int AS r_wrong, COALESCE(r.r_n, 0)::int AS r_n, COALESCE(r.r_c, 0)::int AS r_c,
       COALESCE(p.a_attempts, 0)::int AS a_attempts, COALESCE(p.a_sessions, 0)::int AS a_sessions,
       CASE WHEN p.a_sessions >= 2 THEN (p.a_span / (p.a_sessions - 1))::float8 END AS a_mean_gap_days,
       COALESCE(p.a_hint_n, 0)::int AS a_hint_n, COALESCE(p.a_hints, 0)::float8 AS a_hints,
       CASE WHEN p.a_dwell_n > 0 THEN (p.a_dwell / p.a_dwell_n)::float8 END AS a_mean_dwell_s,
       COALESCE(p.s_sessions, 0)::int AS s_sessions,
       CASE WHEN p.s_sessions >= 2 THEN (p.s_span / (p.s_sessions - 1))::float8 END AS s_mean_gap_days,
       p.s_last::int AS s_days_since_last
FROM u LEFT JOIN p ON p.user_id = u.user_id LEFT JOIN r ON r.user_id = u.user_id
ORDER BY u.user_id`

const ANSWER_KEYS = [
  'user_id', 'n_recent', 'c_recent', 'n_prev', 'c_prev', 'med_recent', 'med_prev', 'r_wrong', 'r_n', 'r_c', 'a_attempts', 'a_sessions',
  'a_mean_gap_days', 'a_hint_n', 'a_hints', 'a_mean_dwell_s', 's_sessions', 's_mean_gap_days', 's_days_since_last',
] as const

describe.each(DB_KINDS)('compute-kpis inputs reduced per session = the per-answer definitions (%s)', (kind) => {
  let t: TestDatabase
  let db: Db
  beforeAll(async () => {
    t = await freshDatabase(kind)
    db = await t.open()
    await loadKpiFixture(db.pool)
    await loadRandomKpiData(db.pool)
    // Items without a question row: R_t's key topic comes from result_json (or is ''), so a wrong
    // 'alg' answer is recovered only by a later answer of the same item in the same topic.
    await db.pool.query(
      `INSERT INTO exam_results (session_id, user_id, result_json, created_at) VALUES
       ('t-1', 'learner-topic', '{"questions":[{"question_id":9001,"is_correct":false,"topic":"alg","time_spent_sec":12},{"question_id":9002,"is_correct":false,"used_hints":"2"}]}', '2026-02-01T08:00:00Z'),
       ('t-2', 'learner-topic', '{"questions":[{"question_id":9001,"is_correct":true,"topic":"alg","time_spent_sec":7},{"question_id":9001,"is_correct":true,"topic":"geo"},{"question_id":9002,"is_correct":true,"used_hints":true}]}', '2026-03-10T08:00:00Z')`,
    )
  }, 120_000)
  afterAll(async () => {
    await db?.close().catch(() => {})
  })

  const pick = (rows: object[]) => rows.map((r) => Object.fromEntries(ANSWER_KEYS.map((k) => [k, (r as Record<string, unknown>)[k]])))

  it('active users for lookbacks shorter and longer than the 56 KPI days, and an explicit user list', async () => {
    const from = (lookback: number) => utcDayStart(addDays(AS_OF, -(Math.max(56, lookback) - 1)))
    const to = utcDayStart(addDays(AS_OF, 1))
    const some = ['learner-topic', 'learner-3', 'learner-200', 'u_acc', 'nobody']
    for (const [lookbackDays, users, active] of [[30, undefined, true], [90, undefined, true], [30, some, false]] as const) {
      const got = await loadKpiInputs(db.pool, { asOf: AS_OF, lookbackDays, users: users ? [...users] : undefined, active })
      const want = await db.pool.query(REFERENCE, [AS_OF, from(lookbackDays), to, lookbackDays, users ? [...users] : null, active])
      expect(want.rows.length).toBeGreaterThan(users ? 4 : 100)
      // Every branch represented, or equality would prove little.
      expect(want.rows.some((r) => r.r_n > 0 && r.r_c < r.r_n) && want.rows.some((r) => r.med_prev !== null) && want.rows.some((r) => r.a_hint_n > 0)).toBe(true)
      expect(pick(got)).toEqual(pick(want.rows))
    }
    const topic = (await loadKpiInputs(db.pool, { asOf: AS_OF, lookbackDays: 30, users: ['learner-topic'], active: false }))[0]!
    // 9001/alg and 9002/'' wrong before; recovered by 9001/alg and 9002/'' (not 9001/geo).
    expect([topic.r_wrong, topic.r_n, topic.r_c, topic.a_hint_n, topic.a_hints]).toEqual([2, 2, 2, 1, 1])
  })
})
