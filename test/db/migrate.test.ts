import { describe, expect, it } from 'vitest'
import { migrate, migrationStatus, knownMigrations } from '../../src/lib/db/migrate.js'
import { DB_KINDS, freshDatabase } from '../support/db.js'

/** The platform's own tables, as its migrations made them (types differ from seedops' defaults on purpose). */
const PLATFORM_DDL = `
CREATE TABLE exam_results (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(), session_id text UNIQUE, user_id text NOT NULL, exam_id int,
  status text, result_json jsonb, score_raw numeric, standard_error numeric,
  created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz, grader text);
CREATE TABLE question (id bigint PRIMARY KEY, topic_id int, difficulty numeric, meta jsonb, body text);
CREATE TABLE interest_goal (user_id text, topic_id text, target_level numeric(6,3), priority smallint, PRIMARY KEY (user_id, topic_id));
CREATE TABLE weekly_kpi (user_id text, week_start date, kpis jsonb, created_at timestamptz DEFAULT now(), updated_at timestamptz DEFAULT now(), PRIMARY KEY (user_id, week_start));
INSERT INTO question VALUES (10, 7, 0.5, '{"tags":["anchor"],"irt":{"a":1.2,"b":0.3,"c":0}}', 'What is 2+2?'), (11, 8, -0.2, NULL, 'Area of a circle?');
INSERT INTO exam_results (session_id, user_id, exam_id, status, result_json, created_at, updated_at, grader) VALUES
  ('p1', 'user-a', 1, 'completed', '{"questions":[{"question_id":10,"is_correct":true,"time_spent_sec":12.5,"used_hints":2},{"question_id":"11","correct":false}]}', '2026-01-05T10:00:00Z', '2026-01-05T10:10:00Z', 'auto'),
  ('p2', '3f2504e0-4f89-41d3-9a0c-0305e82c3301', 1, 'completed', '{"questions":[{"question_id":11,"is_correct":"true"}]}', '2026-01-06T10:00:00Z', NULL, 'auto'),
  ('p3', 'user-b', 1, 'completed', '[1,2,3]', '2026-01-06T11:00:00Z', NULL, 'auto'),
  ('p4', 'user-b', 1, 'completed', '{"questions":"none"}', '2026-01-06T12:00:00Z', NULL, 'auto');
INSERT INTO weekly_kpi (user_id, week_start, kpis) VALUES ('user-a', '2026-01-05', '{"I_t":0.1,"custom":"kept"}');
`

describe.each(DB_KINDS)('db migrate on %s', (kind) => {
  it('on an empty database: creates everything, records the version, and a second run applies nothing', async () => {
    const t = await freshDatabase(kind, { migrated: false })
    const db = await t.open()
    try {
      expect((await migrationStatus(db)).version).toBeNull()
      const first = await migrate(db)
      expect(first.ran).toEqual(knownMigrations())
      expect(first.current).toBe(true)
      const second = await migrate(db)
      expect(second.ran).toEqual([])
      expect(second.version).toBe(knownMigrations().at(-1))
      for (const rel of ['exam_results', 'question', 'interest_goal', 'attempt', 'features_topic_daily', 'weekly_kpi', 'mirt_item_params', 'mirt_ability', 'mirt_fit_meta', 'report_artifacts', 'seedops_ability_history', 'seedops_stage_runs']) {
        expect((await db.pool.query(`SELECT to_regclass($1) AS r`, [rel])).rows[0].r, rel).not.toBeNull()
      }
    } finally {
      await db.close()
    }
  })

  it('on a database that already holds the platform tables and rows: nothing lost, the attempt view reads them', async () => {
    const t = await freshDatabase(kind, { migrated: false })
    const db = await t.open()
    try {
      await db.pool.query(PLATFORM_DDL)
      const snapshot = async () => ({
        exams: (await db.pool.query(`SELECT id, session_id, user_id, result_json, grader, created_at, updated_at FROM exam_results ORDER BY session_id`)).rows,
        questions: (await db.pool.query(`SELECT * FROM question ORDER BY id`)).rows,
        kpi: (await db.pool.query(`SELECT user_id, week_start, kpis FROM weekly_kpi`)).rows,
      })
      const before = await snapshot()
      await migrate(db)
      await migrate(db)
      expect(await snapshot()).toEqual(before)
      // Platform column types are kept (question.topic_id stays int).
      const col = await db.pool.query(`SELECT data_type FROM information_schema.columns WHERE table_name = 'question' AND column_name = 'topic_id'`)
      expect(col.rows[0].data_type).toBe('integer')

      const att = await db.pool.query(
        `SELECT session_id, user_id, student_id::text, item_id, topic_id, correct, response_time_ms, hint_used, attempt_no, completed_at
         FROM attempt ORDER BY session_id, item_id`,
      )
      expect(att.rows).toEqual([
        { session_id: 'p1', user_id: 'user-a', student_id: expect.any(String), item_id: 10, topic_id: '7', correct: true, response_time_ms: 12500, hint_used: true, attempt_no: 1, completed_at: new Date('2026-01-05T10:10:00Z') },
        { session_id: 'p1', user_id: 'user-a', student_id: expect.any(String), item_id: 11, topic_id: '8', correct: false, response_time_ms: null, hint_used: null, attempt_no: 1, completed_at: new Date('2026-01-05T10:10:00Z') },
        { session_id: 'p2', user_id: '3f2504e0-4f89-41d3-9a0c-0305e82c3301', student_id: '3f2504e0-4f89-41d3-9a0c-0305e82c3301', item_id: 11, topic_id: '8', correct: true, response_time_ms: null, hint_used: null, attempt_no: 1, completed_at: new Date('2026-01-06T10:00:00Z') },
      ])
      // Non-uuid user ids get a stable md5-derived uuid.
      expect(att.rows[0].student_id).toBe((await db.pool.query(`SELECT md5('user-a')::uuid::text AS u`)).rows[0].u)
      const bad = await db.pool.query(`SELECT session_id, reason FROM seedops_malformed_exam_results ORDER BY session_id`)
      expect(bad.rows).toEqual([
        { session_id: 'p3', reason: 'result_json is not an object' },
        { session_id: 'p4', reason: 'result_json.questions is not an array' },
      ])
    } finally {
      await db.close()
    }
  })
})
