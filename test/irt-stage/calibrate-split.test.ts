/**
 * calibrate-irt's split read on a real server: the observations read in 2 and 3 hash shares of the
 * learners, each on its own connection importing the run's snapshot, build the very matrix one
 * stream builds (repeats and odd ids included) and the stage writes the same parameters; a stream
 * that fails fails the stage, leaves the previous rows as they were and no session behind.
 * (The embedded server has one connection: it always reads in one stream.)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Db } from '../../src/lib/db/index.js'
import { withTransaction } from '../../src/lib/db/index.js'
import type { ResponseMatrix } from '../../src/lib/irt/data.js'
import { ResponseMatrixBuilder } from '../../src/lib/irt/data.js'
import calibrateIrt, { type CalibrateParams } from '../../src/lib/irt-stage/calibrate-stage.js'
import { readObservations } from '../../src/lib/irt-stage/observations.js'
import { silentLogger } from '../../src/lib/output/index.js'
import { runStage } from '../../src/lib/stages/runner.js'
import { freshDatabase } from '../support/db.js'

const END = '2026-06-30'
const WINDOW = { from: '2026-06-01T00:00:00Z', to: '2026-07-01T00:00:00Z' }
const params: CalibrateParams = { lookbackDays: 30, model: '2PL', anchorMode: 'none', writeBack: false, allowNonConverged: false, minResponses: 5, engine: 'native', timeoutSeconds: 300, retries: 3 }
const ODD = ['tab\there', 'new\nline', 'back\\slash', '\\N', 'ünïcødé ☃ 学习者', ' padded ']

/** 1,200 learners (a few with odd ids) × 3 sessions of 6 answers from a 40-item 2PL bank; later sessions repeat some items with other answers. */
async function seed(db: Db): Promise<void> {
  let s = 12345
  const next = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32)
  const rows: { session: string; user: string; at: string; json: string }[] = []
  for (let i = 0; i < 1200; i++) {
    const user = i < ODD.length ? ODD[i]! : `learner-${i}`
    const th = (next() - 0.5) * 4
    const seen: number[] = []
    for (let k = 0; k < 3; k++) {
      const qs = []
      for (let t = 0; t < 6; t++) {
        const item = k > 0 && t === 0 ? seen[Math.floor(next() * seen.length)]! : 1 + Math.floor(next() * 40)
        seen.push(item)
        const b = (item - 20) / 10
        qs.push({ question_id: item, is_correct: next() < 1 / (1 + Math.exp(-(th - b))) })
      }
      // Times collide across learners (whole minutes), so the order also rests on session ids.
      const at = new Date(Date.parse('2026-06-03T00:00:00Z') + Math.floor(next() * 25 * 24 * 60) * 60_000).toISOString()
      rows.push({ session: `s-${i}-${k}`, user, at, json: JSON.stringify({ questions: qs }) })
    }
  }
  await withTransaction(db.pool, (c) =>
    c.query(
      `INSERT INTO exam_results (session_id, user_id, status, result_json, created_at, updated_at)
       SELECT u.s, u.u, 'completed', u.j::jsonb, u.t - interval '5 minutes', u.t FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[]) AS u(s, u, j, t)`,
      [rows.map((r) => r.session), rows.map((r) => r.user), rows.map((r) => r.json), rows.map((r) => r.at)],
    ),
  )
}

const bytes = (a: ArrayBufferView) => Buffer.from(a.buffer, a.byteOffset, a.byteLength)

function expectSameMatrix(x: ResponseMatrix, y: ResponseMatrix): void {
  expect(x.personIds).toEqual(y.personIds)
  expect(x.itemIds).toEqual(y.itemIds)
  expect(bytes(x.rowPtr).equals(bytes(y.rowPtr))).toBe(true)
  expect(bytes(x.items).equals(bytes(y.items))).toBe(true)
  expect(bytes(x.resp).equals(bytes(y.resp))).toBe(true)
}

const readSessions = async (db: Db) =>
  (await db.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE 'seedops calibrate-irt read%'`)).rows[0]!.n

describe.skipIf(!process.env.TEST_DATABASE_URL)('calibrate-irt split read on a real server', () => {
  let db: Db
  beforeAll(async () => {
    db = await (await freshDatabase('postgres')).open()
    await seed(db)
  }, 120_000)
  afterAll(async () => db?.close())

  it('2 and 3 streams build the single stream\'s matrix (repeats: the first attempt; odd ids verbatim)', async () => {
    const read = (streams: number, chunkBytes?: number) =>
      withTransaction(db.pool, async (c) => {
        const b = new ResponseMatrixBuilder()
        const r = await readObservations(c, WINDOW, b, { chunkBytes, split: { db, streams, signal: new AbortController().signal } })
        return { rows: r.rows, streams: r.streams, ...b.finish() }
      })
    const one = await read(1)
    expect(one.streams).toBe(1)
    expect(one.rows).toBe(1200 * 18)
    expect(one.report.duplicates.count).toBeGreaterThan(100)
    expect(one.report.duplicates.conflicting).toBeGreaterThan(0)
    for (const u of ODD) expect(one.data.personIds).toContain(u)
    for (const [streams, chunk] of [[2, undefined], [3, undefined], [3, 7]] as const) {
      const split = await read(streams, chunk)
      expect(split.streams).toBe(streams)
      expect(split.rows).toBe(one.rows)
      expect(split.report.duplicates).toMatchObject({ count: one.report.duplicates.count, conflicting: one.report.duplicates.conflicting })
      expectSameMatrix(split.data, one.data)
    }
    // Each stream's connection is closed when the read returns.
    expect(await readSessions(db)).toBe(0)
  }, 60_000)

  it('the stage writes the same parameters and abilities with 1 and 3 streams', async () => {
    const written = async () => ({
      items: (await db.pool.query<{ item_id: number; a: number; b: number; se_b: number }>(`SELECT item_id, (params->>'a')::float8 AS a, (params->>'b')::float8 AS b, (se->>'b')::float8 AS se_b FROM mirt_item_params ORDER BY item_id`)).rows,
      theta: (await db.pool.query<{ user_id: string; theta: number }>(`SELECT user_id, theta FROM mirt_ability WHERE version = '2PL' ORDER BY user_id`)).rows,
    })
    const r1 = await runStage(db, calibrateIrt, { ...params, readStreams: 1 }, { asOf: END, dryRun: false, logger: silentLogger })
    const w1 = await written()
    const r3 = await runStage(db, calibrateIrt, { ...params, readStreams: 3 }, { asOf: END, dryRun: false, logger: silentLogger })
    const w3 = await written()
    expect(r3.summary).toMatchObject({ persons: 1200, items: 40, observations: r1.summary!.observations, duplicates: r1.summary!.duplicates })
    expect(r3.summary!.fit.logLik).toBeCloseTo(r1.summary!.fit.logLik, 6)
    expect(w3.items).toHaveLength(40)
    expect(w3.theta).toHaveLength(1200)
    w3.items.forEach((x, k) => {
      const y = w1.items[k]!
      expect(x.item_id).toBe(y.item_id)
      for (const f of ['a', 'b', 'se_b'] as const) expect(Math.abs(x[f] - y[f])).toBeLessThan(1e-9 * Math.max(1, Math.abs(y[f])))
    })
    w3.theta.forEach((x, k) => expect(Math.abs(x.theta - w1.theta[k]!.theta)).toBeLessThan(1e-9))
  }, 120_000)

  it('a stream that fails fails the stage: the previous rows stay, no read session is left', async () => {
    const state = async () => ({
      items: (await db.pool.query(`SELECT item_id, params::text, version, fitted_at FROM mirt_item_params ORDER BY item_id`)).rows,
      abilities: (await db.pool.query(`SELECT user_id, theta, fitted_at FROM mirt_ability ORDER BY user_id, version`)).rows,
      history: (await db.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM seedops_ability_history`)).rows[0]!.n,
      fits: (await db.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM mirt_fit_meta`)).rows[0]!.n,
    })
    // A day earlier than the run that fails, so a success would have left other rows (new version, history keys).
    await runStage(db, calibrateIrt, { ...params, readStreams: 1 }, { asOf: '2026-06-29', dryRun: false, logger: silentLogger })
    const before = await state()
    expect(before.items.length).toBe(40)
    // The read model answers stream 2 of 2 with an error (division by zero on its rows) and every other stream as before.
    await db.pool.query(`ALTER VIEW seedops_attempt_base RENAME TO seedops_attempt_base_real`)
    await db.pool.query(`CREATE VIEW seedops_attempt_base AS SELECT * FROM seedops_attempt_base_real b
      WHERE current_setting('seedops.calibrate_part', true) IS DISTINCT FROM '1' OR 1 / (length(b.user_id) - length(b.user_id)) = 0`)
    try {
      await expect(runStage(db, calibrateIrt, { ...params, readStreams: 2 }, { asOf: END, dryRun: false, logger: silentLogger })).rejects.toThrow(/division by zero/)
    } finally {
      await db.pool.query(`DROP VIEW seedops_attempt_base`)
      await db.pool.query(`ALTER VIEW seedops_attempt_base_real RENAME TO seedops_attempt_base`)
    }
    expect(await state()).toEqual(before)
    const log = (await db.pool.query(`SELECT status, error FROM seedops_stage_runs WHERE stage = 'calibrate-irt' ORDER BY id DESC LIMIT 1`)).rows[0]
    expect(log.status).toBe('failed')
    expect(log.error).toMatch(/division by zero/)
    // The sessions are ended before the stage returns; the server may take a moment to drop them from its view.
    let left = await readSessions(db)
    for (let k = 0; k < 50 && left > 0; k++) {
      await new Promise((r) => setTimeout(r, 100))
      left = await readSessions(db)
    }
    expect(left).toBe(0)
    // And the stage runs again, now that the read model answers.
    expect((await runStage(db, calibrateIrt, { ...params, readStreams: 2 }, { asOf: END, dryRun: false, logger: silentLogger })).status).toBe('succeeded')
  }, 120_000)
})
