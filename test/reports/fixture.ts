import type pg from 'pg'
import { insertExams, insertQuestions } from '../support/fixtures.js'

type Q = Pick<pg.Pool, 'query'>

/** The as-of date the tests run with (a Wednesday): ISO week 2026-W47, 2026-11-16..2026-11-22. */
export const DATE = '2026-11-18'
export const WEEK = '2026-11-16'
export const EVIL = '<script>alert(1)</script>'
export const EVIL_TOPIC = '<img src=x onerror=alert(2)>'

const ALICE_KPIS = { I_t: 0.12, E_t: 0.25, R_t: 0.5, A_t: 0.64, P: 0.73, S: 0.82, P_ci: [0.6, 0.85], sigma: 0.4, P_target: 0.5, I_mode: 'theta', n_recent: 11 }

const q = (id: number, ok: boolean, extra: Record<string, unknown> = {}) => ({ question_id: id, is_correct: ok, time_spent_sec: 30, used_hints: false, ...extra })

/**
 * alice: algebra (items 1, 2) 1 of 6 correct, geometry (3, 4) 5 of 5; latest answer to item 2 wrong;
 * two θ estimates; a goal. EVIL: an untrusted user id and topic name, no θ. bob: KPIs only.
 * Plus `extra` users with KPIs only (for sharding).
 */
export async function seedReportFixture(db: Q, extra = 0): Promise<string[]> {
  await insertQuestions(db, [
    { id: 1, topic: 'algebra' },
    { id: 2, topic: 'algebra' },
    { id: 3, topic: 'geometry' },
    { id: 4, topic: 'geometry' },
    { id: 9, topic: null },
  ])
  await insertExams(db, [
    { session_id: 'a1', user_id: 'alice', at: '2026-11-03T10:00:00Z', questions: [q(1, false), q(2, false), q(3, true)] },
    { session_id: 'a2', user_id: 'alice', at: '2026-11-17T10:00:00Z', questions: [q(1, true), q(2, false), q(3, true), q(4, true)] },
    { session_id: 'a3', user_id: 'alice', at: '2026-11-19T10:00:00Z', questions: [q(1, false), q(4, true), q(3, true)] },
    { session_id: 'a4', user_id: 'alice', at: '2026-11-20T10:00:00Z', questions: [q(2, false)] },
    { session_id: 'e1', user_id: EVIL, at: '2026-11-18T09:00:00Z', questions: [q(9, true, { topic: EVIL_TOPIC }), q(9, false, { topic: EVIL_TOPIC })] },
  ])
  await db.query(
    `INSERT INTO seedops_ability_history (user_id, theta, se, model, version, source, key, measured_at) VALUES
     ('alice', 0.1, 0.3, '2PL', 'v1', 'test', 'k1', '2026-11-10T12:00:00Z'),
     ('alice', 0.4, 0.25, '2PL', 'v1', 'test', 'k2', '2026-11-20T12:00:00Z')`,
  )
  await db.query(`INSERT INTO interest_goal (user_id, topic_id, target_level, priority) VALUES ('alice', 'algebra', 0.5, 1), ('alice', 'geometry', 1.0, 2)`)
  const users = ['alice', EVIL, 'bob', ...Array.from({ length: extra }, (_, i) => `user-${String(i).padStart(3, '0')}`)]
  const kpis = users.map((u) => (u === 'alice' ? ALICE_KPIS : u === EVIL ? { I_t: -0.05, E_t: null, R_t: null, A_t: 0.3, P: null, S: 0.1 } : { I_t: null, E_t: null, R_t: null, A_t: null, P: 0.2, S: 0.5 }))
  await db.query(`INSERT INTO weekly_kpi (user_id, week_start, kpis) SELECT u, $1::date, k::jsonb FROM unnest($2::text[], $3::text[]) AS t(u, k)`, [WEEK, users, kpis.map((k) => JSON.stringify(k))])
  return users.sort()
}
