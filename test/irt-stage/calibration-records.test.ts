import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Db } from '../../src/lib/db/index.js'
import { withTransaction } from '../../src/lib/db/index.js'
import { seedDemo } from '../../src/lib/demo/seed.js'
import calibrateIrt, { type CalibrateParams } from '../../src/lib/irt-stage/calibrate-stage.js'
import { silentLogger } from '../../src/lib/output/index.js'
import { runStage } from '../../src/lib/stages/runner.js'
import { irtGroup } from '../../src/lib/verify/irt.js'
import { runChecks } from '../../src/lib/verify/run.js'
import { DB_KINDS, freshDatabase } from '../support/db.js'

const END = '2026-06-30'
const DAY_BEFORE = '2026-06-29'
const base: CalibrateParams = { lookbackDays: 20, model: '2PL', anchorMode: 'fixed', writeBack: false, allowNonConverged: false, minResponses: 5, engine: 'native', timeoutSeconds: 300, retries: 3 }
const run = (db: Db, asOf: string, p: Partial<CalibrateParams> = {}, dryRun = false) => runStage(db, calibrateIrt, { ...base, ...p }, { asOf, dryRun, logger: silentLogger })

describe.each(DB_KINDS)('calibration records on %s', (kind) => {
  let db: Db
  beforeAll(async () => {
    db = await (await freshDatabase(kind)).open()
    // 40 items 1001..1040; the seed tags every tenth (1001, 1011, 1021, 1031) "anchor" with a published meta.irt.
    await withTransaction(db.pool, (c) => seedDemo(c, { learners: 200, items: 40, days: 20, seed: 5, endDate: END }))
  })
  afterAll(async () => db?.close())

  const snapshot = async () => ({
    items: (await db.pool.query(`SELECT item_id::text, params, version FROM mirt_item_params ORDER BY item_id`)).rows,
    ability: (await db.pool.query(`SELECT user_id, version, theta, se FROM mirt_ability ORDER BY user_id, version`)).rows,
    history: (await db.pool.query(`SELECT count(*)::int AS n FROM seedops_ability_history`)).rows[0].n as number,
  })
  const fitMeta = async () =>
    (await db.pool.query<{ run_id: string; model_spec: Record<string, unknown>; metrics: Record<string, unknown>; fitted_at: Date }>(`SELECT run_id, model_spec, metrics, fitted_at FROM mirt_fit_meta ORDER BY run_id`)).rows
  const converged = async () => (await runChecks([irtGroup], { q: db.pool, asOf: END, now: new Date(), options: {} })).checks.find((c) => c.id === 'irt.converged')!

  it('a non-converged calibration leaves the previous parameters and records a converged=false row (exit 1 unless --allow-non-converged)', async () => {
    const first = await run(db, DAY_BEFORE)
    expect(first.summary!.fit.converged).toBe(true)
    const before = await snapshot()
    expect(before.items.length).toBeGreaterThan(30)
    expect((await converged()).status).toBe('ok')

    // Two EM cycles cannot reach the 1e-4 tolerance.
    await expect(run(db, END, { maxCycles: 2 })).rejects.toMatchObject({ code: 'IRT_NOT_CONVERGED', exitCode: 1 })
    expect(await snapshot()).toEqual(before)
    const rows = await fitMeta()
    expect(rows.map((r) => r.run_id)).toEqual([`calibrate-irt:${DAY_BEFORE}:2PL`, `calibrate-irt:${END}:2PL:not-converged`])
    const nc = rows[1]!
    expect(nc.model_spec).toMatchObject({ writer: 'seedops', model: '2PL', max_cycles: 2 })
    expect(nc.metrics).toMatchObject({ converged: false, iterations: 2, params_written: false })
    expect(nc.metrics.maxChange as number).toBeGreaterThan(1e-4)
    // The converged fit whose parameters stay in use keeps its own record.
    expect(rows[0]!.metrics).toMatchObject({ converged: true, params_written: true })
    const log = (await db.pool.query(`SELECT status, error FROM seedops_stage_runs WHERE stage = 'calibrate-irt' ORDER BY id DESC LIMIT 1`)).rows[0]
    expect(log.status).toBe('failed')
    expect(log.error).toMatch(/did not converge in 2 cycles/)
    // verify irt reports the latest calibration as not converged and names the parameters in use.
    const v = await converged()
    expect(v.status).toBe('fail')
    expect(v.message).toContain(`calibrate-irt:${END}:2PL:not-converged did not converge in 2 cycles`)
    expect(v.message).toContain(`parameters in use are from calibrate-irt:${DAY_BEFORE}:2PL`)

    // --dry-run records nothing, not even after the rollback.
    await expect(run(db, END, { maxCycles: 2 }, true)).rejects.toMatchObject({ code: 'IRT_NOT_CONVERGED' })
    expect(await fitMeta()).toEqual(rows)
    expect(await snapshot()).toEqual(before)

    // --allow-non-converged writes the estimates, with the fit recorded as not converged in the same transaction.
    const forced = await run(db, END, { maxCycles: 2, allowNonConverged: true })
    expect(forced.status).toBe('succeeded')
    expect(forced.warnings.join('\n')).toMatch(/did not converge in 2 cycles: estimates written anyway/)
    const after = await snapshot()
    expect(after.items.every((r) => r.version === `${END}.2PL`)).toBe(true)
    expect((await fitMeta()).find((r) => r.run_id === `calibrate-irt:${END}:2PL`)!.metrics).toMatchObject({ converged: false, params_written: true })
    expect((await converged()).message).toMatch(/written anyway/)

    // A converged run for the day replaces its own row; verify passes again.
    expect((await run(db, END)).summary!.fit.converged).toBe(true)
    expect((await fitMeta()).find((r) => r.run_id === `calibrate-irt:${END}:2PL`)!.metrics).toMatchObject({ converged: true, params_written: true })
    expect((await converged()).status).toBe('ok')
  })

  it('a bank written back and calibrated again keeps its free items free; anchors are read from the mark, never written over', async () => {
    const TAGGED = ['1001', '1011', '1021', '1031']
    // 1002: params published by hand (no mark, no tag): an anchor, as before. 1004: explicitly marked.
    // 1003: written back by an older seedops (no mark, version "<date>.<model>"): free.
    await db.pool.query(`UPDATE question SET meta = meta || '{"irt":{"a":1.2,"b":0.4,"c":0}}'::jsonb WHERE id = 1002`)
    await db.pool.query(`UPDATE question SET meta = meta || '{"irt":{"a":0.9,"b":-0.3,"c":0,"model":"2PL","version":"2026-05-01.2PL","anchor":true}}'::jsonb WHERE id = 1004`)
    await db.pool.query(`UPDATE question SET meta = meta || '{"irt":{"a":1.0,"b":-0.2,"c":0,"model":"2PL","version":"2026-05-01.2PL"}}'::jsonb WHERE id = 1003`)
    const anchorsExpected = [...TAGGED, '1002', '1004'].sort()
    const metaOf = async (ids: string[]) => (await db.pool.query(`SELECT id::text, meta FROM question WHERE id = ANY($1::bigint[]) ORDER BY id`, [ids])).rows
    const anchorMeta = await metaOf(anchorsExpected)
    const anchoredItems = async () => (await db.pool.query(`SELECT item_id::text FROM mirt_item_params WHERE (fit ->> 'anchored')::boolean ORDER BY item_id`)).rows.map((r) => r.item_id as string).sort()

    const first = await run(db, END, { writeBack: true })
    expect(first.summary!.anchors.used).toBe(anchorsExpected.length)
    expect(await anchoredItems()).toEqual(anchorsExpected)
    const free = (await db.pool.query(`SELECT item_id::text, params FROM mirt_item_params WHERE NOT (fit ->> 'anchored')::boolean ORDER BY item_id`)).rows
    expect(free.length).toBeGreaterThan(25)
    expect(first.rows.question_write_back).toBe(free.length)
    expect(free.some((r) => r.item_id === '1003')).toBe(true)
    // Written back with the mark "not an anchor"; the anchors' meta is untouched.
    const written = new Map((await metaOf(free.map((r) => r.item_id))).map((r) => [r.id as string, r.meta.irt]))
    for (const r of free) {
      expect(written.get(r.item_id)).toMatchObject({ a: r.params.a, b: r.params.b, model: '2PL', version: `${END}.2PL`, anchor: false, written_by: 'seedops' })
    }
    expect(await metaOf(anchorsExpected)).toEqual(anchorMeta)

    // Calibrated again (the next day's fixed-anchor run): the written-back items are not anchors.
    const second = await run(db, END, { writeBack: true })
    expect(second.summary!.anchors.used).toBe(anchorsExpected.length)
    expect(await anchoredItems()).toEqual(anchorsExpected)
    expect(second.rows.question_write_back).toBe(free.length)
    // Linking mode calibrates anchors freely, but write-back still never overwrites their published parameters.
    const linked = await run(db, END, { writeBack: true, anchorMode: 'linking' })
    expect(linked.summary!.anchors.used).toBe(anchorsExpected.length)
    expect(linked.rows.question_write_back).toBe(free.length)
    expect(await metaOf(anchorsExpected)).toEqual(anchorMeta)
  })
})
