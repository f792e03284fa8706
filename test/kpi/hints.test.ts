import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Db } from '../../src/lib/db/index.js'
import computeKpisStage from '../../src/lib/kpi/stage.js'
import { silentLogger } from '../../src/lib/output/index.js'
import { runStage } from '../../src/lib/stages/runner.js'
import { DB_KINDS, freshDatabase, type TestDatabase } from '../support/db.js'
import { insertExams, insertQuestions } from '../support/fixtures.js'
import { resolveStageParams } from '../../src/lib/stages/options.js'

/**
 * A_t's h = clamp(1 − mean(used_hints)/3) over the attempts that carry hint data (SPEC 2), with
 * used_hints a count. Week 2026-03-09 .. as_of 2026-03-15; no response times anywhere (w = 0.5).
 * A_t = 0.35·min(1, sessions/28) + 0.25·g + 0.2·h + 0.2·w; one session → g = 0.5.
 */
const WEEK = '2026-03-09'
const one = 0.35 / 28 + 0.25 * 0.5 + 0.2 * 0.5 // one session, w = 0.5: A_t = this + 0.2·h
const qs = (hints: unknown[]) => hints.map((h, i) => ({ question_id: 1 + (i % 2), is_correct: true, ...(h === undefined ? {} : { used_hints: h }) }))

describe.each(DB_KINDS)('A_t hints per attempt on %s', (kind) => {
  let t: TestDatabase
  let db: Db
  beforeAll(async () => {
    t = await freshDatabase(kind)
    db = await t.open()
    await insertQuestions(db.pool, [{ id: 1, topic: 'alg' }, { id: 2, topic: 'alg' }])
    await insertExams(db.pool, [
      // counts 0, 2, 3 | 1 over two sessions: 6 hints / 4 attempts = 1.5 (a mean of the sessions' means would be 4/3)
      { session_id: 'cnt-1', user_id: 'u_cnt', at: '2026-03-10T10:00:00Z', questions: qs([0, 2, 3]) },
      { session_id: 'cnt-2', user_id: 'u_cnt', at: '2026-03-12T10:00:00Z', questions: qs([1]) },
      { session_id: 'bool', user_id: 'u_bool', at: '2026-03-11T10:00:00Z', questions: qs([true, false, true, false]) },
      { session_id: 'none', user_id: 'u_none', at: '2026-03-11T10:00:00Z', questions: qs([undefined, undefined]) },
      // "2", " 3 " and "0" count; "1.5" and "abc" are no hint data (not counted at all)
      { session_id: 'str', user_id: 'u_str', at: '2026-03-11T10:00:00Z', questions: qs(['2', ' 3 ', '0', '1.5', 'abc']) },
      { session_id: 'big', user_id: 'u_big', at: '2026-03-11T10:00:00Z', questions: qs([6, 9, undefined]) },
    ])
    await runStage(db, computeKpisStage, resolveStageParams(computeKpisStage, {}, {}), { asOf: '2026-03-11', dryRun: false, logger: silentLogger })
  })
  afterAll(async () => {
    await db?.close().catch(() => {})
  })

  const aT = async (user: string): Promise<number> => {
    const r = await db.pool.query<{ a: number }>(`SELECT (kpis->>'A_t')::float8 AS a FROM weekly_kpi WHERE user_id = $1 AND week_start = $2`, [user, WEEK])
    expect(r.rows).toHaveLength(1)
    return r.rows[0]!.a
  }

  it('counts 0, 2, 3, 1 → mean 1.5 → h = 0.5 (the share with a hint, 3/4, would give h = 0.75)', async () => {
    // 2 sessions → 0.35·2/28 = 0.025; gap 2 d → g = 1/2 → 0.125; h 0.5 → 0.1; w 0.5 → 0.1: 0.35
    expect(await aT('u_cnt')).toBeCloseTo(0.35, 12)
  })

  it('booleans count 1/0: true, false, true, false → mean 0.5 → h = 5/6', async () => {
    expect(await aT('u_bool')).toBeCloseTo(one + 0.2 * (5 / 6), 12)
  })

  it('no hint data → h = 0.5', async () => {
    expect(await aT('u_none')).toBeCloseTo(one + 0.2 * 0.5, 12) // 0.3375
  })

  it('numeric strings are counts; a fractional or non-numeric string is no hint data', async () => {
    // "2", " 3 ", "0" → mean 5/3 → h = 1 − 5/9 = 4/9 (counting "1.5" as data would make it 5/4 over 4)
    expect(await aT('u_str')).toBeCloseTo(one + 0.2 * (4 / 9), 12)
  })

  it('a mean above 3 clamps h to 0; an attempt without hint data does not dilute the mean', async () => {
    // 6 and 9 over 2 attempts (not 3) → 7.5 → clamp(1 − 2.5) = 0
    expect(await aT('u_big')).toBeCloseTo(one, 12)
  })
})

describe.each(DB_KINDS)('the read model keeps used_hints as an integer on %s', (kind) => {
  it('hints_used: counts, booleans 1/0, numeric strings; anything else NULL; hint_used unchanged', async () => {
    const db = await (await freshDatabase(kind)).open()
    try {
      const values: unknown[] = [3, 2.0, 0, true, false, '2', ' 4 ', '2.0', 'TRUE', 'false', 1.5, -1, 1e10, '1.5', 'yes', null, undefined, { n: 1 }, 12.5e-1]
      await insertExams(db.pool, [
        { session_id: 's', user_id: 'u', at: '2026-05-01T10:00:00Z', questions: values.map((v, i) => ({ question_id: 100 + i, is_correct: true, ...(v === undefined ? {} : { used_hints: v }) })) },
      ])
      const r = await db.pool.query<{ item_id: number; hints_used: number | null; hint_used: boolean | null }>(
        `SELECT item_id::int AS item_id, hints_used, hint_used FROM attempt ORDER BY item_id`,
      )
      expect(r.rows.map((x) => x.hints_used)).toEqual([3, 2, 0, 1, 0, 2, 4, 2, 1, 0, null, null, null, null, null, null, null, null, null])
      // hint_used as 0001 made it (features count attempts with a hint from it)
      expect(r.rows.map((x) => x.hint_used)).toEqual([true, true, false, true, false, true, true, true, true, false, true, false, true, true, null, null, null, null, true])
      // a JSON number written as 2.0 (JSON.stringify above never writes one) is whole; 2.5 is not
      const raw = await db.pool.query(`SELECT seedops_json_count('2.0'::jsonb) AS whole, seedops_json_count('2.5'::jsonb) AS frac`)
      expect(raw.rows).toEqual([{ whole: 2, frac: null }])
      const types = await db.pool.query<{ v: string; t: string }>(
        `SELECT c.relname::text AS v, format_type(a.atttypid, a.atttypmod) AS t FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
         WHERE c.relname IN ('attempt', 'seedops_attempt_base') AND a.attname = 'hints_used' ORDER BY 1`,
      )
      expect(types.rows).toEqual([{ v: 'attempt', t: 'integer' }, { v: 'seedops_attempt_base', t: 'integer' }])
    } finally {
      await db.close()
    }
  })
})
