import type pg from 'pg'
import { insertExams, insertQuestions } from '../support/fixtures.js'

/**
 * The compute-kpis fixture. Week 2026-03-09 (Monday) .. as_of 2026-03-15 (Sunday).
 * Windows (UTC days): I recent 03-02..03-15, I prev 02-16..03-01; 28-day recent 02-16..03-15,
 * 28-day prev 01-19..02-15; S 01-19..03-15; active (30 days) 02-14..03-15.
 * Items: 1 and 2 in topic alg, 3 in geo. The hand computations are in kpis.test.ts.
 */
export const WEEK = '2026-03-09'
export const AS_OF = '2026-03-15'

const q = (question_id: number, is_correct: boolean, time_spent_sec?: number, used_hints?: number) => ({
  question_id,
  is_correct,
  ...(time_spent_sec === undefined ? {} : { time_spent_sec }),
  ...(used_hints === undefined ? {} : { used_hints }),
})

export async function loadKpiFixture(db: Pick<pg.Pool, 'query'>): Promise<void> {
  await insertQuestions(db, [
    { id: 1, topic: 'alg' },
    { id: 2, topic: 'alg' },
    { id: 3, topic: 'geo' },
  ])
  const tenQs = (nCorrect: number) => Array.from({ length: 10 }, (_, i) => ({ question_id: 1 + (i % 3), is_correct: i < nCorrect }))
  await insertExams(db, [
    // u_acc: accuracy mode, E, R, A, S
    { session_id: 'acc-p1', user_id: 'u_acc', at: '2026-02-01T10:00:00Z', questions: [q(1, false, 20, 1), q(2, true, 40), q(3, true, 60)] },
    { session_id: 'acc-p2', user_id: 'u_acc', at: '2026-02-24T10:00:00Z', questions: [q(1, true, 10, 0), { question_id: 2, is_correct: false, time_spent_sec: 30 }] },
    { session_id: 'acc-r1', user_id: 'u_acc', at: '2026-03-10T10:00:00Z', questions: [q(1, true, 20, 1), q(2, true, 30, 0), q(3, false, 50, 0)] },
    { session_id: 'acc-r2', user_id: 'u_acc', at: '2026-03-14T10:00:00Z', questions: [q(1, false, 40, 2), q(3, true, 20, 0), { question_id: 2, is_correct: true, used_hints: 0 }] },
    // u_theta: θ mode, goal, Bayesian; no times, no hints (0.5 defaults)
    { session_id: 'th-p', user_id: 'u_theta', at: '2026-02-20T09:00:00Z', questions: tenQs(2).slice(0, 4) },
    { session_id: 'th-r', user_id: 'u_theta', at: '2026-03-12T09:00:00Z', questions: tenQs(6) },
    // u_one: a single attempt at the last instant of as_of; the next one (03-16 00:00) is outside
    { session_id: 'one-1', user_id: 'u_one', at: '2026-03-15T23:59:59Z', questions: [q(1, true, 30, 0)] },
    { session_id: 'one-2', user_id: 'u_one', at: '2026-03-16T00:00:00Z', questions: [q(2, false, 99, 3)] },
    // u_lown: θ in both windows but n < 5 → accuracy mode; all-correct previous 28 days → R null
    { session_id: 'lown-0', user_id: 'u_lown', at: '2026-02-10T09:00:00Z', questions: [q(1, true), q(2, true)] },
    { session_id: 'lown-p', user_id: 'u_lown', at: '2026-02-20T09:00:00Z', questions: [q(1, true), q(2, false)] },
    { session_id: 'lown-r', user_id: 'u_lown', at: '2026-03-10T09:00:00Z', questions: [q(1, true), q(2, true), q(3, true), q(1, false)] },
    // u_zse: a θ with SE 0 → P null
    { session_id: 'zse-1', user_id: 'u_zse', at: '2026-03-13T09:00:00Z', questions: [q(1, true)] },
    // u_old: last attempt 02-05 (38 days before as_of): not active with the 30-day lookback
    { session_id: 'old-1', user_id: 'u_old', at: '2026-02-05T09:00:00Z', questions: [q(1, true, 10, 0)] },
  ])
  await db.query(
    `INSERT INTO seedops_ability_history (user_id, theta, se, source, key, measured_at) VALUES
       ('u_theta', -0.2, 0.4, 'test', 't1', '2026-02-18T12:00:00Z'),
       ('u_theta',  0.1, 0.3, 'test', 't2', '2026-02-25T12:00:00Z'),
       ('u_theta',  0.3, 0.25, 'test', 't3', '2026-03-05T12:00:00Z'),
       ('u_theta',  0.5, 0.2, 'test', 't4', '2026-03-12T12:00:00Z'),
       ('u_theta',  2.0, 0.1, 'test', 't5', '2026-03-16T01:00:00Z'),
       ('u_lown',   0.0, 0.1, 'test', 'l1', '2026-02-20T12:00:00Z'),
       ('u_lown',   1.0, 0.1, 'test', 'l2', '2026-03-10T12:00:00Z'),
       ('u_zse',    0.4, 0,   'test', 'z1', '2026-03-13T12:00:00Z'),
       ('u_hist',   0.0, 0.3, 'test', 'h1', '2026-02-02T12:00:00Z'),
       ('u_hist',   1.0, 0.3, 'test', 'h2', '2026-02-09T12:00:00Z'),
       ('u_hist',   0.0, 0.3, 'test', 'h3', '2026-02-16T12:00:00Z'),
       ('u_hist',   5.0, 0.3, 'test', 'h4', '2026-03-09T12:00:00Z')`,
  )
  await db.query(
    `INSERT INTO mirt_ability (user_id, version, theta, se, model, fitted_at) VALUES
       ('u_one', 'v1', 0.3, 0.5, '2PL', '2026-03-10T03:00:00Z'),
       ('u_one', 'v2', 1.5, 0.1, '2PL', '2026-03-20T03:00:00Z')`,
  )
  await db.query(
    `INSERT INTO interest_goal (user_id, topic_id, target_level, priority) VALUES
       ('u_theta', 'alg', 0.8, 1), ('u_theta', 'geo', 0.2, 2)`,
  )
}

/**
 * 240 learners with random sessions over 70 days (some outside every window, some without times
 * or hints, legacy `correct` flags, string ids), weekly θ history with ties on measured_at, a few
 * mirt_ability rows and goals: enough variety that a split that lost, doubled or mixed a user's
 * rows would change some input. Generated on the server with a fixed seed.
 */
export async function loadRandomKpiData(q: Pick<pg.Pool, 'query'>): Promise<void> {
  await q.query(`SELECT setseed(0.37)`)
  await q.query(`INSERT INTO question (id, topic_id, meta) SELECT 500 + i, (ARRAY['alg','geo','fra'])[1 + i % 3], '{}' FROM generate_series(0, 29) i`)
  await q.query(
    `INSERT INTO exam_results (session_id, user_id, exam_id, status, result_json, created_at, updated_at)
     SELECT 'r-' || u || '-' || s, 'learner-' || u, 1, 'completed',
            jsonb_build_object('questions', (SELECT jsonb_agg(jsonb_strip_nulls(jsonb_build_object(
                'question_id', CASE WHEN random() < 0.1 THEN to_jsonb((500 + floor(random() * 30))::text) ELSE to_jsonb(500 + floor(random() * 30)::int) END,
                'is_correct', CASE WHEN random() < 0.9 THEN random() < 0.6 END,
                'correct', random() < 0.5,
                'time_spent_sec', CASE WHEN random() < 0.8 THEN round((5 + random() * 60)::numeric, 1) END,
                'used_hints', CASE WHEN random() < 0.7 THEN floor(random() * 3)::int END)))
              FROM generate_series(1, 1 + (u + s) % 9) k WHERE s > 0)),
            at, CASE WHEN random() < 0.8 THEN at + interval '5 minutes' END
     FROM generate_series(1, 240) u
     CROSS JOIN LATERAL generate_series(1, u % 6) s
     CROSS JOIN LATERAL (SELECT timestamptz '2026-01-05T00:00:00Z' + make_interval(days => floor(random() * 70)::int, secs => floor(random() * 86399)::int) + (s * 0) * interval '1 s' AS at) t`,
  )
  await q.query(
    `INSERT INTO seedops_ability_history (user_id, theta, se, model, version, source, key, measured_at)
     SELECT 'learner-' || u, random() * 2 - 1, CASE WHEN random() < 0.9 THEN 0.2 + random() * 0.3 END, '2PL', 't', 'test', 'w' || w || '-' || k,
            timestamptz '2026-03-16T00:00:00Z' - make_interval(days => 5 * w + 1)
     FROM generate_series(1, 240) u, generate_series(0, 8) w, generate_series(1, 1 + (u % 2)) k WHERE (u + w) % 5 <> 0`,
  )
  await q.query(`INSERT INTO mirt_ability (user_id, version, theta, se, fitted_at) SELECT 'learner-' || u, 'v1', random(), 0.3, '2026-02-01T00:00:00Z' FROM generate_series(1, 240, 7) u`)
  await q.query(`INSERT INTO interest_goal (user_id, topic_id, target_level, priority) SELECT 'learner-' || u, t, round((random() * 2)::numeric, 3), (u % 3)::smallint FROM generate_series(1, 240, 2) u, unnest(ARRAY['alg','geo']) t`)
}
