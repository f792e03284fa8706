/**
 * calibrate-irt's database path: observations streamed by COPY from the read model into the
 * engine's typed arrays give the same fit as the offline CSV path on the same data, ids of any
 * bytes survive the stream, rows split across chunks at every offset parse the same, and the
 * earliest attempt is the one kept.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Db } from '../../src/lib/db/index.js'
import { withTransaction } from '../../src/lib/db/index.js'
import { calibrate } from '../../src/lib/irt/calibrate.js'
import { ResponseMatrixBuilder } from '../../src/lib/irt/data.js'
import { readResponsesCsv } from '../../src/lib/irt/io.js'
import calibrateIrt, { type CalibrateParams } from '../../src/lib/irt-stage/calibrate-stage.js'
import { readObservations } from '../../src/lib/irt-stage/observations.js'
import { silentLogger } from '../../src/lib/output/index.js'
import { runStage } from '../../src/lib/stages/runner.js'
import { DB_KINDS, freshDatabase } from '../support/db.js'

const REF = '/work/shared/reference/irt/sim2pl-sparse/responses.csv'
const END = '2026-06-30'
const params: CalibrateParams = { lookbackDays: 30, model: '2PL', anchorMode: 'none', writeBack: false, allowNonConverged: false, minResponses: 5, engine: 'native', timeoutSeconds: 300, retries: 3 }

interface Session {
  session: string
  user: string
  at: string
  questions: { question_id: number; is_correct: boolean }[]
}

/** Sessions into exam_results (what the read model seedops_attempt_base unnests), in batches. */
async function insertSessions(db: Db, sessions: Session[]): Promise<void> {
  await withTransaction(db.pool, async (c) => {
    for (let k = 0; k < sessions.length; k += 5000) {
      const s = sessions.slice(k, k + 5000)
      await c.query(
        `INSERT INTO exam_results (session_id, user_id, status, result_json, created_at, updated_at)
         SELECT u.s, u.u, 'completed', u.j::jsonb, u.t - interval '5 minutes', u.t FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[]) AS u(s, u, j, t)`,
        [s.map((x) => x.session), s.map((x) => x.user), s.map((x) => JSON.stringify({ questions: x.questions })), s.map((x) => x.at)],
      )
    }
  })
}

/** mirt's sim2pl-sparse set (5,000 learners × 25 of 200 items), each learner's answers in sessions of ≤ 10, one second apart in file order. */
function referenceSessions(): { sessions: Session[]; csv: string } {
  const lines = readFileSync(REF, 'utf8').trim().split('\n').slice(1)
  const sessions: Session[] = []
  const out = ['user_id,item_id,is_correct']
  let t = Date.parse('2026-06-02T00:00:00Z')
  for (const line of lines) {
    const [u, i, y] = line.split(',') as [string, string, string]
    const item = Number(i.slice(1))
    let s = sessions.at(-1)
    if (!s || s.user !== u || s.questions.length === 10) {
      s = { session: `ref-${sessions.length}`, user: u, at: new Date((t += 1000)).toISOString(), questions: [] }
      sessions.push(s)
    }
    s.questions.push({ question_id: item, is_correct: y.trim() === '1' })
    out.push(`${u},${item},${y.trim()}`)
  }
  return { sessions, csv: out.join('\n') + '\n' }
}

const rel = (x: number, y: number) => Math.abs(x - y) / Math.max(Math.abs(y), 1e-12)

describe.each(DB_KINDS)('calibrate-irt reads its observations as a stream on %s', (kind) => {
  let db: Db
  let csvPath: string
  beforeAll(async () => {
    db = await (await freshDatabase(kind)).open()
    const { sessions, csv } = referenceSessions()
    csvPath = join(mkdtempSync(join(tmpdir(), 'seedops-calib-')), 'responses.csv')
    writeFileSync(csvPath, csv)
    await insertSessions(db, sessions)
    // Outside the window: never read.
    await insertSessions(db, [{ session: 'old', user: 'u00001', at: '2026-05-31T23:59:59Z', questions: [{ question_id: 1, is_correct: false }] }])
  }, 120_000)
  afterAll(async () => db?.close())

  it('gives the offline CSV path\'s parameters, standard errors and abilities', async () => {
    const r = await runStage(db, calibrateIrt, params, { asOf: END, dryRun: false, logger: silentLogger })
    expect(r.summary).toMatchObject({ persons: 5000, items: 200, observations: 125_000, duplicates: 0 })

    const { data } = readResponsesCsv(csvPath)
    const off = await calibrate(data, { model: '2PL', minResponses: 5 })
    expect(off.fit.converged).toBe(true)
    expect(r.summary!.fit.iterations).toBe(off.fit.iterations)

    const rows = (await db.pool.query<{ item_id: number; a: number; b: number; se_a: number; se_b: number }>(
      `SELECT item_id, (params->>'a')::float8 AS a, (params->>'b')::float8 AS b, (se->>'a')::float8 AS se_a, (se->>'b')::float8 AS se_b FROM mirt_item_params`,
    )).rows
    expect(rows).toHaveLength(200)
    const byId = new Map(rows.map((x) => [String(x.item_id), x]))
    let worst = 0
    for (const it of off.items) {
      const s = byId.get(it.item_id)!
      for (const [x, y] of [[s.a, it.a], [s.b, it.b], [s.se_a, it.se_a!], [s.se_b, it.se_b!]] as const) worst = Math.max(worst, rel(x, y))
    }
    expect(worst).toBeLessThan(1e-9)

    const theta = new Map((await db.pool.query<{ user_id: string; theta: number; se: number }>(`SELECT user_id, theta, se FROM mirt_ability WHERE version = '2PL'`)).rows.map((x) => [x.user_id, x]))
    expect(theta.size).toBe(5000)
    const scores = off.scores!
    let worstTheta = 0
    data.personIds.forEach((u, i) => {
      const s = theta.get(u)!
      worstTheta = Math.max(worstTheta, Math.abs(s.theta - scores.theta[i]!), Math.abs(s.se - scores.se[i]!))
    })
    expect(worstTheta).toBeLessThan(1e-9)
  }, 120_000)

  it('parses the same matrix whatever the chunk boundaries (1, 2, 3 and 7 bytes at a time)', async () => {
    const read = async (chunkBytes?: number) =>
      withTransaction(db.pool, async (c) => {
        const b = new ResponseMatrixBuilder()
        const r = await readObservations(c, { from: '2026-06-02T00:00:00Z', to: '2026-06-02T00:05:00Z' }, b, { chunkBytes })
        return { rows: r.rows, ...b.finish() }
      })
    const whole = await read()
    // The first 299 sessions (one a second): 100 learners, 2,495 rows, so 1 byte at a time stays quick.
    expect(whole.rows).toBe(2495)
    expect(whole.data.nPersons).toBe(100)
    for (const n of [1, 2, 3, 7]) {
      const split = await read(n)
      expect(split.rows).toBe(whole.rows)
      expect(split.data.personIds).toEqual(whole.data.personIds)
      expect(split.data.itemIds).toEqual(whole.data.itemIds)
      expect(Buffer.from(split.data.rowPtr.buffer).equals(Buffer.from(whole.data.rowPtr.buffer))).toBe(true)
      expect(Buffer.from(split.data.items.buffer, split.data.items.byteOffset, split.data.items.byteLength).equals(Buffer.from(whole.data.items.buffer, whole.data.items.byteOffset, whole.data.items.byteLength))).toBe(true)
      expect(Buffer.from(split.data.resp).equals(Buffer.from(whole.data.resp))).toBe(true)
    }
  }, 60_000)

  it('keeps ids of any bytes verbatim (tabs, newlines, backslashes, \\N, unicode, blanks) and the earliest attempt of a repeat', async () => {
    const ids = ['tab\there', 'new\nline', 'cr\rret', 'back\\slash', '\\N', '\\\\N\\t', 'ünïcødé ☃ 学习者 🎓', ' padded ', 'x\u0001\u0008\u000b\u000c']
    const at = (m: number) => `2026-06-20T10:${String(m).padStart(2, '0')}:00Z`
    const sessions: Session[] = ids.map((u, k) => ({ session: `odd-${k}`, user: u, at: at(k), questions: [{ question_id: 900_000_000_001, is_correct: k % 2 === 0 }, { question_id: 7, is_correct: true }] }))
    // A repeat of item 7 by the first learner, later in time but in a session whose id sorts first
    // and inserted before the first attempt: the first attempt (correct) is kept.
    await insertSessions(db, [{ session: 'a-repeat', user: ids[0]!, at: at(30), questions: [{ question_id: 7, is_correct: false }] }])
    await insertSessions(db, sessions)
    await withTransaction(db.pool, async (c) => {
      const b = new ResponseMatrixBuilder()
      const raw = await readObservations(c, { from: '2026-06-20T10:00:00Z', to: '2026-06-20T11:00:00Z' }, b, { keepRows: true, chunkBytes: 5 })
      const { data, report } = b.finish()
      expect(raw.rows).toBe(ids.length * 2 + 1)
      expect([...data.personIds].sort()).toEqual([...ids].sort())
      expect(data.itemIds).toEqual(['7', '900000000001'])
      expect(raw.raw!.map((o) => o.user_id)).toEqual([...ids.flatMap((u) => [u, u]), ids[0]])
      expect(report.duplicates).toMatchObject({ count: 1, conflicting: 1 })
      const p = data.personIds.indexOf(ids[0]!)
      const k = data.items.subarray(data.rowPtr[p], data.rowPtr[p + 1]).indexOf(data.itemIds.indexOf('7'))
      expect(data.resp[data.rowPtr[p]! + k]).toBe(1)
      expect(report.duplicates.examples[0]).toMatchObject({ user_id: ids[0], item_id: '7', row: ids.length * 2 + 1, kept_row: 2 })
    })
  }, 60_000)
})
