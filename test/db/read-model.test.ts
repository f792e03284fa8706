import { describe, expect, it } from 'vitest'
import { DB_KINDS, freshDatabase } from '../support/db.js'
import { insertExams } from '../support/fixtures.js'

/** Values of the kinds real result_json holds: the read model takes what it can and never fails. */
describe.each(DB_KINDS)('the attempt read model on %s', (kind) => {
  it('casts tolerantly, leaves out unusable question ids, and names the row in the malformed view', async () => {
    const db = await (await freshDatabase(kind)).open()
    try {
      await insertExams(db.pool, [
        {
          session_id: 'odd', user_id: 'u1', at: '2026-05-01T10:00:00Z',
          questions: [
            { question_id: ' 42 ', is_correct: 1, time_spent_sec: '12.5', used_hints: '2' },
            { question_id: 43, is_correct: 'abc', correct: false, time_spent_sec: 1e12, used_hints: 'yes' },
            { question_id: 44, is_correct: 'TRUE', time_spent_sec: -5, used_hints: true },
            { question_id: 1.5, is_correct: true },
            { question_id: -3, is_correct: true },
            { question_id: 1.2345678901234567e19, is_correct: true }, // past bigint's range
            { question_id: 'abc', is_correct: true },
            'not an object' as unknown as Record<string, unknown>,
          ],
        },
      ])
      const rows = await db.pool.query(`SELECT item_id, correct, response_time_ms, hint_used FROM attempt ORDER BY item_id`)
      expect(rows.rows).toEqual([
        { item_id: 42, correct: true, response_time_ms: 12500, hint_used: true },
        { item_id: 43, correct: false, response_time_ms: null, hint_used: null },
        { item_id: 44, correct: true, response_time_ms: null, hint_used: true },
      ])
      const bad = await db.pool.query(`SELECT session_id, reason, bad_questions FROM seedops_malformed_exam_results`)
      expect(bad.rows).toEqual([{ session_id: 'odd', reason: 'questions with a missing or non-numeric question_id', bad_questions: 5 }])
    } finally {
      await db.close()
    }
  })
})
