import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Db } from '../../src/lib/db/index.js'
import { loadKpiInputs, loadKpiInputsSplit } from '../../src/lib/kpi/compute.js'
import { splitParts, splitRead } from '../../src/lib/kpi/parallel.js'
import computeKpisStage from '../../src/lib/kpi/stage.js'
import { silentLogger } from '../../src/lib/output/index.js'
import { runStage } from '../../src/lib/stages/runner.js'
import { DB_KINDS, freshDatabase, type TestDatabase } from '../support/db.js'
import { loadKpiFixture, loadRandomKpiData } from './fixture.js'
import { resolveStageParams } from '../../src/lib/stages/options.js'

const AS_OF = '2026-03-15'

describe.each(DB_KINDS)('compute-kpis read split across connections (%s)', (kind) => {
  let t: TestDatabase
  let db: Db
  beforeAll(async () => {
    t = await freshDatabase(kind)
    db = await t.open()
    await loadKpiFixture(db.pool)
    await loadRandomKpiData(db.pool)
  }, 120_000)
  afterAll(async () => {
    await db?.close().catch(() => {})
  })

  it.runIf(kind === 'embedded')('the embedded server (one connection) never splits', () => {
    expect(splitParts(db, {})).toBe(1)
    expect(splitParts(db, { SEEDOPS_PARALLEL_CONNECTIONS: '4' })).toBe(1)
  })

  it.runIf(kind === 'postgres')('2 hash parts give exactly the single statement\'s rows, in its order; no room for 3 → null', async () => {
    expect(splitParts(db, {})).toBe(2)
    expect(splitParts(db, { SEEDOPS_PARALLEL_CONNECTIONS: '1' })).toBe(1)
    const tx = await db.pool.connect()
    try {
      await tx.query('BEGIN')
      for (const lookbackDays of [30, 60]) {
        const q = { asOf: AS_OF, lookbackDays, active: true }
        const single = await loadKpiInputs(tx, q)
        expect(single.length).toBeGreaterThan(100)
        // Some users of every kind the formulas branch on, or the comparison proves little.
        expect(single.some((r) => r.theta_source === 'mirt_ability')).toBe(true)
        expect(single.some((r) => r.r_n > 0) && single.some((r) => r.med_prev !== null) && single.some((r) => r.goal_target !== null)).toBe(true)
        const split = await loadKpiInputsSplit(db, tx, q, { parts: 2, signal: new AbortController().signal })
        expect(split).toEqual(single)
        // 3 parts need 4 free connections of the pool's 4 (one stays free for cancelling): no split, the caller reads alone.
        expect(await loadKpiInputsSplit(db, tx, q, { parts: 3, signal: new AbortController().signal })).toBeNull()
      }
      await tx.query('COMMIT')
    } finally {
      await tx.query('ROLLBACK').catch(() => {})
      tx.release()
    }
  })

  it.runIf(kind === 'postgres')('the parts read the run\'s snapshot: a row committed after it started is not seen', async () => {
    const tx = await db.pool.connect()
    try {
      await tx.query('BEGIN ISOLATION LEVEL REPEATABLE READ')
      const q = { asOf: AS_OF, lookbackDays: 30, active: true }
      const before = await loadKpiInputs(tx, q)
      await db.pool.query(`INSERT INTO exam_results (session_id, user_id, result_json, created_at) VALUES ('late', 'learner-late', '{"questions":[{"question_id":500,"is_correct":true}]}', '2026-03-14T10:00:00Z')`)
      const split = await loadKpiInputsSplit(db, tx, q, { parts: 2, signal: new AbortController().signal })
      expect(split!.map((r) => r.user_id)).toEqual(before.map((r) => r.user_id))
      expect(split!.some((r) => r.user_id === 'learner-late')).toBe(false)
      await tx.query('COMMIT')
    } finally {
      await tx.query('ROLLBACK').catch(() => {})
      tx.release()
      await db.pool.query(`DELETE FROM exam_results WHERE session_id = 'late'`)
    }
  })

  it.runIf(kind === 'postgres')('the stage writes the same weekly_kpi with the split and without it', async () => {
    const kpis = async () => (await db.pool.query(`SELECT user_id, kpis FROM weekly_kpi ORDER BY user_id`)).rows
    const params = resolveStageParams(computeKpisStage, { bayesian: true }, {})
    await runStage(db, computeKpisStage, params, { asOf: AS_OF, dryRun: false, logger: silentLogger, env: { SEEDOPS_PARALLEL_CONNECTIONS: '1' } })
    const single = await kpis()
    await db.pool.query(`DELETE FROM weekly_kpi`)
    const r = await runStage(db, computeKpisStage, params, { asOf: AS_OF, dryRun: false, logger: silentLogger, env: { SEEDOPS_PARALLEL_CONNECTIONS: '2' } })
    expect(r.summary!.users).toBe(single.length)
    expect(await kpis()).toEqual(single)
  })

  it.runIf(kind === 'postgres')('an abort cancels every part on the server and rejects with its reason', async () => {
    const tx = await db.pool.connect()
    const ac = new AbortController()
    try {
      await tx.query('BEGIN')
      const t0 = Date.now()
      const p = splitRead(db, tx, { parts: 2, signal: ac.signal }, (c) => c.query(`SELECT pg_sleep(30)`))
      setTimeout(() => ac.abort(new Error('stop')), 500)
      await expect(p).rejects.toThrow('stop')
      expect(Date.now() - t0).toBeLessThan(5000)
      await new Promise((r) => setTimeout(r, 200))
      const busy = await db.pool.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(30)' AND state = 'active'`)
      expect(busy.rows[0].n).toBe(0)
    } finally {
      await tx.query('ROLLBACK').catch(() => {})
      tx.release()
    }
  })
})
