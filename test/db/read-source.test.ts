import { describe, expect, it } from 'vitest'
import { attemptSource } from '../../src/lib/db/read-source.js'
import aggregateFeatures from '../../src/lib/features/stage.js'
import computeKpisStage from '../../src/lib/kpi/stage.js'
import type { Logger } from '../../src/lib/output/index.js'
import { runStage } from '../../src/lib/stages/runner.js'
import { DB_KINDS, freshDatabase } from '../support/db.js'
import { insertExams, insertQuestions } from '../support/fixtures.js'
import { resolveStageParams } from '../../src/lib/stages/options.js'

function capture(): { logger: Logger; lines: string[] } {
  const lines: string[] = []
  const push = (m: string) => void lines.push(m)
  return { lines, logger: { info: push, warn: push, debug: push, progress: push } }
}

const AS_OF = '2026-03-14'

describe.each(DB_KINDS)('read order attempt → responses (%s)', (kind) => {
  it('a platform with answers only in responses: stages read them and say so; once exam_results has rows they read those', { timeout: 120_000 }, async () => {
    const db = await (await freshDatabase(kind)).open()
    try {
      await insertQuestions(db.pool, [1, 2, 3].map((id) => ({ id, topic: id === 3 ? 'geometry' : 'algebra' })))
      // The platform's optional table (SPEC 1), in a shape of its own: item ids as text, 0/1 answers.
      await db.pool.query(`CREATE TABLE responses (id bigserial PRIMARY KEY, user_id text NOT NULL, item_id text, is_correct smallint, responded_at timestamptz)`)
      await db.pool.query(
        `INSERT INTO responses (user_id, item_id, is_correct, responded_at) VALUES
          ('r1', '1', 1, '2026-03-13T09:00:00Z'), ('r1', '2', 0, '2026-03-13T09:05:00Z'), ('r1', '3', 1, '2026-03-14T10:00:00Z'),
          ('r2', '1', 0, '2026-03-14T11:00:00Z'), ('r2', 'x9', 1, '2026-03-14T11:01:00Z'), ('r2', '2', 1, NULL)`,
      )
      expect(await attemptSource(db.pool)).toEqual({ source: 'responses', skipped: ['attempt reads exam_results, which holds no rows'] })
      const a = capture()
      const r = await runStage(db, aggregateFeatures, { lookbackDays: 7, includeTheta: false }, { asOf: AS_OF, dryRun: false, logger: a.logger })
      expect(r.status).toBe('succeeded')
      expect(a.lines).toContain('aggregate-features: reading attempts from responses (exam_results holds no rows): a learner\'s day is a session; no times, hints or topics but question.topic_id')
      const rows = (await db.pool.query(`SELECT user_id, topic_id, date::text, attempts, correct FROM features_topic_daily ORDER BY user_id, topic_id, date`)).rows
      // r2's non-numeric item and undated answer are left out, as malformed exam_results rows are.
      expect(rows).toEqual([
        { user_id: 'r1', topic_id: 'algebra', date: '2026-03-13', attempts: 2, correct: 1 },
        { user_id: 'r1', topic_id: 'geometry', date: '2026-03-14', attempts: 1, correct: 1 },
        { user_id: 'r2', topic_id: 'algebra', date: '2026-03-14', attempts: 1, correct: 0 },
      ])
      const k = await runStage(db, computeKpisStage, resolveStageParams(computeKpisStage, {}, {}), { asOf: AS_OF, dryRun: false, logger: capture().logger })
      expect(k.rows.weekly_kpi).toBe(2)
      // The session-local view is gone after the run: the read model is seedops' own again.
      expect((await db.pool.query(`SELECT count(*)::int AS n FROM seedops_attempt_base`)).rows[0].n).toBe(0)

      await insertExams(db.pool, [{ session_id: 'e1', user_id: 'e1', at: '2026-03-14T12:00:00Z', questions: [{ question_id: 1, is_correct: true }] }])
      expect((await attemptSource(db.pool)).source).toBe('attempt')
      const b = capture()
      await runStage(db, aggregateFeatures, { lookbackDays: 7, includeTheta: false }, { asOf: AS_OF, dryRun: false, logger: b.logger })
      expect(b.lines).toContain('aggregate-features: reading attempts from exam_results.result_json (the attempt read model)')
      expect((await db.pool.query(`SELECT DISTINCT user_id FROM features_topic_daily WHERE computed_at = (SELECT max(computed_at) FROM features_topic_daily)`)).rows).toEqual([{ user_id: 'e1' }])
    } finally {
      await db.close()
    }
  })
})
