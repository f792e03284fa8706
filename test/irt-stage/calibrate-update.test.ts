import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Db } from '../../src/lib/db/index.js'
import { withTransaction } from '../../src/lib/db/index.js'
import { seedDemo } from '../../src/lib/demo/seed.js'
import calibrateIrt from '../../src/lib/irt-stage/calibrate-stage.js'
import updateThetaStage from '../../src/lib/irt-stage/update-theta.js'
import { silentLogger } from '../../src/lib/output/index.js'
import { runStage } from '../../src/lib/stages/runner.js'
import { DB_KINDS, freshDatabase } from '../support/db.js'
import { irtGroup, thetaGroup } from '../../src/lib/verify/irt.js'
import { runChecks } from '../../src/lib/verify/run.js'
import { createServer } from 'node:http'
import { once } from 'node:events'
import { createIrtServer } from '../../src/lib/irt-service/server.js'

const END = '2026-06-30'
/** A day after the calibration as of END: sessions then have the calibrated θ as their prior. */
const AFTER = '2026-07-01'
const params = { lookbackDays: 30, model: '2PL' as const, anchorMode: 'fixed' as const, writeBack: false, allowNonConverged: false, minResponses: 5, engine: 'native' as const, timeoutSeconds: 300, retries: 3 }

function corr(x: number[], y: number[]) {
  const mx = x.reduce((s, v) => s + v, 0) / x.length
  const my = y.reduce((s, v) => s + v, 0) / y.length
  let sxy = 0, sxx = 0, syy = 0
  x.forEach((v, i) => { sxy += (v - mx) * (y[i]! - my); sxx += (v - mx) ** 2; syy += (y[i]! - my) ** 2 })
  return sxy / Math.sqrt(sxx * syy)
}

describe.each(DB_KINDS)('calibrate-irt and update-theta on %s', (kind) => {
  let db: Db
  beforeAll(async () => {
    db = await (await freshDatabase(kind)).open()
    await withTransaction(db.pool, (c) => seedDemo(c, { learners: 250, items: 64, days: 30, seed: 11, endDate: END }))
  })
  afterAll(async () => db?.close())

  it('recovers the demo generator\'s item parameters, holds anchors at their published values, and re-runs idempotently', async () => {
    const r = await runStage(db, calibrateIrt, params, { asOf: END, dryRun: false, logger: silentLogger })
    expect(r.summary!.fit.converged).toBe(true)
    expect(r.summary!.anchors.used).toBeGreaterThan(0)
    const est = await db.pool.query(
      `SELECT m.item_id, (m.params->>'a')::float8 AS a, (m.params->>'b')::float8 AS b, (m.fit->>'n')::int AS n, (m.fit->>'anchored')::boolean AS anchored,
              (t.params->>'a')::float8 AS ta, (t.params->>'b')::float8 AS tb, (q.meta #>> '{irt,b}')::float8 AS meta_b
       FROM mirt_item_params m JOIN seedops_demo_truth t ON t.kind = 'item' AND t.id = m.item_id::text JOIN question q ON q.id = m.item_id`,
    )
    const free = est.rows.filter((x) => !x.anchored && x.n >= 40)
    expect(free.length).toBeGreaterThan(30)
    expect(corr(free.map((x) => x.b), free.map((x) => x.tb))).toBeGreaterThan(0.9)
    const rmseB = Math.sqrt(free.reduce((s, x) => s + (x.b - x.tb) ** 2, 0) / free.length)
    const bias = free.reduce((s, x) => s + (x.b - x.tb), 0) / free.length
    console.log(`calibrate-irt recovery: n=${free.length} rmse(b)=${rmseB.toFixed(3)} bias(b)=${bias.toFixed(3)}`)
    // The generator's learners grow during the window (one θ per learner is an approximation), so
    // recovery is looser than on stationary data; a wiring error (ids, scale) would be far off.
    expect(rmseB).toBeLessThan(0.5)
    expect(Math.abs(bias)).toBeLessThan(0.25)
    for (const x of est.rows.filter((x) => x.anchored)) expect(x.b).toBeCloseTo(x.meta_b, 6)
    // Abilities for every learner seen, on the same scale: correlated with the generator's θ at the end.
    const ab = await db.pool.query(
      `SELECT a.theta, (t.params->>'theta0')::float8 + (t.params->>'growth')::float8 * 29 AS true_theta
       FROM mirt_ability a JOIN seedops_demo_truth t ON t.kind = 'learner' AND t.id = a.user_id WHERE a.version = $1`,
      ['2PL'],
    )
    expect(ab.rows.length).toBe(r.summary!.persons)
    expect(corr(ab.rows.map((x) => x.theta), ab.rows.map((x) => x.true_theta))).toBeGreaterThan(0.8)

    const snap = async () => ({
      items: (await db.pool.query(`SELECT item_id, params, version FROM mirt_item_params ORDER BY item_id`)).rows,
      history: (await db.pool.query(`SELECT count(*)::int AS n FROM seedops_ability_history`)).rows[0].n,
      meta: (await db.pool.query(`SELECT count(*)::int AS n FROM mirt_fit_meta`)).rows[0].n,
    })
    const before = await snap()
    await runStage(db, calibrateIrt, params, { asOf: END, dryRun: false, logger: silentLogger })
    expect(await snap()).toEqual(before)
    expect(before.meta).toBe(1)
  })

  it('an empty lookback is a clear failure and loses nothing', async () => {
    const before = (await db.pool.query(`SELECT item_id, params FROM mirt_item_params ORDER BY item_id`)).rows
    await expect(runStage(db, calibrateIrt, params, { asOf: '2020-01-01', dryRun: false, logger: silentLogger })).rejects.toMatchObject({ code: 'EMPTY_LOOKBACK' })
    expect((await db.pool.query(`SELECT item_id, params FROM mirt_item_params ORDER BY item_id`)).rows).toEqual(before)
    const log = await db.pool.query(`SELECT status, error FROM seedops_stage_runs WHERE stage = 'calibrate-irt' ORDER BY id DESC LIMIT 1`)
    expect(log.rows[0]).toMatchObject({ status: 'failed', error: expect.stringContaining('nothing to calibrate') })
  })

  it('update-theta folds one session into the previous estimate (equal to direct quadrature) and is idempotent', async () => {
    // A new session after the calibration, for a learner with a calibrated θ.
    const user = (await db.pool.query(`SELECT user_id, theta, se FROM mirt_ability WHERE version = $1 ORDER BY user_id LIMIT 1`, ['2PL'])).rows[0]
    const items = (await db.pool.query(`SELECT item_id, (params->>'a')::float8 AS a, (params->>'b')::float8 AS b FROM mirt_item_params ORDER BY item_id LIMIT 3`)).rows
    const answers = [true, false, true]
    await db.pool.query(
      `INSERT INTO exam_results (session_id, user_id, status, result_json, created_at) VALUES ('after-1', $1, 'completed', $2, $3)`,
      [user.user_id, JSON.stringify({ questions: items.map((it, k) => ({ question_id: Number(it.item_id), is_correct: answers[k] })) }), `${AFTER}T09:00:00Z`],
    )
    const p = { user: user.user_id as string, session: 'after-1', lookbackDays: 30 }
    const r = await runStage(db, updateThetaStage, p, { asOf: AFTER, dryRun: false, logger: silentLogger })
    // Labelled with the calibration whose parameters it used (not a fixed "2PL"/"online").
    const cal = (await db.pool.query(`SELECT DISTINCT model, version FROM mirt_item_params`)).rows
    expect(cal).toHaveLength(1)
    expect(r.summary).toMatchObject({ model: cal[0].model, version: cal[0].version })
    // Direct posterior by quadrature with the calibrated estimate as a normal prior.
    let s0 = 0, s1 = 0, s2 = 0
    for (let q = 0; q < 61; q++) {
      const th = -6 + (12 * q) / 60
      let w = Math.exp(-((th - user.theta) ** 2) / (2 * user.se ** 2))
      items.forEach((it, k) => {
        const pr = 1 / (1 + Math.exp(-it.a * (th - it.b)))
        w *= answers[k] ? pr : 1 - pr
      })
      s0 += w; s1 += w * th; s2 += w * th * th
    }
    const m = s1 / s0
    expect(r.summary!.prior.theta).toBeCloseTo(user.theta, 10)
    expect(r.summary!.theta).toBeCloseTo(m, 6)
    expect(r.summary!.se).toBeCloseTo(Math.sqrt(s2 / s0 - m * m), 6)
    const again = await runStage(db, updateThetaStage, p, { asOf: AFTER, dryRun: false, logger: silentLogger })
    expect(again.summary!.theta).toBe(r.summary!.theta)
    const h = await db.pool.query(`SELECT count(*)::int AS n FROM seedops_ability_history WHERE user_id = $1 AND key = 'session:after-1'`, [user.user_id])
    expect(h.rows[0].n).toBe(1)
    await expect(runStage(db, updateThetaStage, { ...p, session: 'no-such-session' }, { asOf: AFTER, dryRun: false, logger: silentLogger })).rejects.toMatchObject({ code: 'NOT_FOUND' })
    // --date before the session: it is outside the lookback, as it was on that day.
    await expect(runStage(db, updateThetaStage, p, { asOf: END, dryRun: false, logger: silentLogger })).rejects.toThrow(`session after-1 of user ${user.user_id} has no answered questions in the 30 days ending ${END}`)
  })

  it('update-theta: --date bounds the lookback (later sessions ignored); two learners at once both succeed; one learner twice is serialised', async () => {
    const items = (await db.pool.query(`SELECT item_id FROM mirt_item_params ORDER BY item_id LIMIT 2`)).rows.map((x) => Number(x.item_id))
    const q = JSON.stringify({ questions: items.map((id, k) => ({ question_id: id, is_correct: k === 0 })) })
    for (const [sid, uid, at] of [['early-a', 'lone-a', '2026-07-02T08:00:00Z'], ['late-a', 'lone-a', '2026-07-05T08:00:00Z'], ['early-b', 'lone-b', '2026-07-02T09:00:00Z']]) {
      await db.pool.query(`INSERT INTO exam_results (session_id, user_id, status, result_json, created_at) VALUES ($1, $2, 'completed', $3, $4)`, [sid, uid, q, at])
    }
    const run = (user: string, asOf: string) => runStage(db, updateThetaStage, { user, lookbackDays: 30 }, { asOf, dryRun: false, logger: silentLogger })
    expect((await run('lone-a', '2026-07-03')).summary!.session_id).toBe('early-a')
    expect((await run('lone-a', '2026-07-06')).summary!.session_id).toBe('late-a')
    const [a, b] = await Promise.all([run('lone-a', '2026-07-03'), run('lone-b', '2026-07-03')])
    expect([a.status, b.status]).toEqual(['succeeded', 'succeeded'])
    const [x, y] = await Promise.all([run('lone-a', '2026-07-06'), run('lone-a', '2026-07-06')])
    expect([x.status, y.status]).toEqual(['succeeded', 'succeeded'])
    const [first, second] = [x, y].sort((m, n) => m.startedAt.localeCompare(n.startedAt))
    // Serialised: the second run started only after the first had finished (the per-learner lock waited).
    const log = (await db.pool.query(`SELECT id, started_at, finished_at FROM seedops_stage_runs WHERE id = ANY($1::bigint[]) ORDER BY started_at`, [[first!.runId, second!.runId]])).rows
    expect(new Date(log[1].started_at).getTime()).toBeGreaterThanOrEqual(new Date(log[0].finished_at).getTime())
    const h = await db.pool.query(`SELECT count(*)::int AS n FROM seedops_ability_history WHERE user_id = 'lone-a' AND key = 'session:late-a'`)
    expect(h.rows[0].n).toBe(1)
  })

  it('verify irt/theta pass on the calibrated database and catch an out-of-range item', async () => {
    const ctx = { q: db.pool, asOf: END, now: new Date(), options: {} }
    const ok = await runChecks([irtGroup, thetaGroup], ctx)
    expect(ok.summary.fail).toBe(0)
    expect(ok.checks.find((c) => c.id === 'theta.coverage')!.numbers.coverage_pct).toBe(100)
    const item = (await db.pool.query(`SELECT item_id, params FROM mirt_item_params ORDER BY item_id LIMIT 1`)).rows[0]
    await db.pool.query(`UPDATE mirt_item_params SET params = jsonb_set(params, '{a}', '-1') WHERE item_id = $1`, [item.item_id])
    const bad = await runChecks([irtGroup], ctx)
    const ranges = bad.checks.find((c) => c.id === 'irt.ranges')!
    expect(ranges).toMatchObject({ status: 'fail', numbers: { out_of_range: 1 } })
    expect(ranges.rows![0]!.item_id).toBe(item.item_id)
    await db.pool.query(`UPDATE mirt_item_params SET params = $2 WHERE item_id = $1`, [item.item_id, item.params])
  })

  it('--engine r-plumber calibrates through the service contract (retrying a 503) and writes what the native engine writes', async () => {
    const TOKEN = 'plumber-token-77aa'
    const irt = createIrtServer({ token: TOKEN, logger: silentLogger })
    irt.listen(0, '127.0.0.1')
    await once(irt, 'listening')
    const irtUrl = `http://127.0.0.1:${(irt.address() as { port: number }).port}`
    // A flaky front: the first request gets a 503, the rest are forwarded.
    let calls = 0
    const front = createServer(async (req, res) => {
      calls++
      const chunks: Buffer[] = []
      for await (const c of req) chunks.push(c as Buffer)
      if (calls === 1) {
        res.writeHead(503).end('warming up')
        return
      }
      const r = await fetch(irtUrl + req.url, { method: req.method, headers: { 'content-type': 'application/json', authorization: String(req.headers.authorization ?? '') }, body: Buffer.concat(chunks) })
      res.writeHead(r.status, { 'content-type': 'application/json' }).end(Buffer.from(await r.arrayBuffer()))
    })
    front.listen(0, '127.0.0.1')
    await once(front, 'listening')
    const base = `http://127.0.0.1:${(front.address() as { port: number }).port}`
    try {
      await runStage(db, calibrateIrt, params, { asOf: END, dryRun: false, logger: silentLogger })
      const native = (await db.pool.query(`SELECT item_id, params FROM mirt_item_params ORDER BY item_id`)).rows
      const nativeTheta = (await db.pool.query(`SELECT user_id, theta FROM mirt_ability WHERE version = $1 ORDER BY user_id`, ['2PL'])).rows

      const env = { ...process.env, R_IRT_BASE_URL: base, R_IRT_INTERNAL_TOKEN: TOKEN }
      const r = await runStage(db, calibrateIrt, { ...params, engine: 'r-plumber' as const, retries: 2 }, { asOf: END, dryRun: false, logger: silentLogger, env })
      expect(calls).toBe(2)
      expect(r.rows.mirt_item_params).toBe(native.length)
      const viaService = (await db.pool.query(`SELECT item_id, params FROM mirt_item_params ORDER BY item_id`)).rows
      viaService.forEach((row, i) => {
        expect(row.item_id).toBe(native[i].item_id)
        expect(row.params.b).toBeCloseTo(native[i].params.b, 6)
        expect(row.params.a).toBeCloseTo(native[i].params.a, 6)
      })
      const theta = (await db.pool.query(`SELECT user_id, theta FROM mirt_ability WHERE version = $1 ORDER BY user_id`, ['2PL'])).rows
      theta.forEach((row, i) => expect(row.theta).toBeCloseTo(nativeTheta[i].theta, 6))

      // A wrong token is not retried and changes nothing.
      calls = 10
      await expect(
        runStage(db, calibrateIrt, { ...params, engine: 'r-plumber' as const }, { asOf: END, dryRun: false, logger: silentLogger, env: { ...env, R_IRT_INTERNAL_TOKEN: 'wrong-token-xx' } }),
      ).rejects.toMatchObject({ code: 'IRT_SERVICE_AUTH' })
      expect(calls).toBe(11)
      expect((await db.pool.query(`SELECT item_id, params FROM mirt_item_params ORDER BY item_id`)).rows).toEqual(viaService)
    } finally {
      front.close()
      irt.close()
    }
  })
})
