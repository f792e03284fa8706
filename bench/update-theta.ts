/**
 * End-to-end latency of POST /analysis/irt/update-theta — what the platform calls after every
 * session: HTTP, bearer check, the stage runner (per-learner lock, run-log row, one transaction),
 * the EAP update and its writes — on a real PostgreSQL with demo data (calibrated bank).
 * Reference, measured in the same run: the same update through the library without HTTP and the
 * runner (updateTheta in a bare transaction), so the ratio is what the service path adds.
 *   npm run bench:update-theta -- [--learners 2000] [--requests 2000] [--concurrency 8]
 */
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { withTransaction } from '../src/lib/db/index.js'
import { seedDemo } from '../src/lib/demo/seed.js'
import calibrateIrt from '../src/lib/irt-stage/calibrate-stage.js'
import { updateTheta } from '../src/lib/irt-stage/update-theta.js'
import { createIrtServer } from '../src/lib/irt-service/server.js'
import { silentLogger } from '../src/lib/output/index.js'
import { runStage } from '../src/lib/stages/runner.js'
import { pathToFileURL } from 'node:url'
import { arg, benchDb } from './common.js'
import type { BenchOptions, BenchRow } from './types.js'
import { resolveStageParams } from '../src/lib/stages/options.js'

const learners = arg('learners', 2000)
const requests = arg('requests', 2000)
const concurrency = arg('concurrency', 8)
const END = '2026-11-22'
const TOKEN = 'bench-token-not-a-secret'

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!
}
const fmt = (xs: number[]) => `p50 ${pct(xs, 50).toFixed(1)} ms  p95 ${pct(xs, 95).toFixed(1)} ms  p99 ${pct(xs, 99).toFixed(1)} ms  max ${Math.max(...xs).toFixed(1)} ms`

export async function run(_opts: BenchOptions = {}): Promise<BenchRow[]> {
  const { db, created } = await benchDb(`seedops_bench_theta_${learners}`)
  if (created || !(await db.pool.query(`SELECT 1 FROM mirt_item_params LIMIT 1`)).rowCount) {
    console.error(`seeding ${learners} learners × 30 days and calibrating…`)
    await withTransaction(db.pool, (c) => seedDemo(c, { learners, items: 200, days: 30, seed: 11, endDate: END }))
    await runStage(db, calibrateIrt, resolveStageParams(calibrateIrt, { allowNonConverged: true }, {}), { asOf: END, dryRun: false, logger: silentLogger })
  }
  const users = (await db.pool.query<{ user_id: string }>(`SELECT DISTINCT user_id FROM exam_results WHERE created_at >= $1::date - 29 ORDER BY user_id`, [END])).rows.map((r) => r.user_id)
  const pick = (i: number) => users[(i * 7919) % users.length]!

  // Reference: the library call in a bare transaction, sequentially (no HTTP, no runner).
  const ref: number[] = []
  for (let i = 0; i < Math.min(requests, 500); i++) {
    const t0 = performance.now()
    await withTransaction(db.pool, (tx) => updateTheta(tx, { user: pick(i), lookbackDays: 30 }, END))
    ref.push(performance.now() - t0)
  }

  const server = createIrtServer({ token: TOKEN, db, logger: silentLogger })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/analysis/irt/update-theta`
  const call = async (i: number) => {
    const t0 = performance.now()
    const res = await fetch(url, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ user_id: pick(i), lookback_days: 30 }) })
    await res.arrayBuffer()
    if (res.status !== 200 && res.status !== 404) throw new Error(`HTTP ${res.status}`)
    return performance.now() - t0
  }
  const results: Record<number, number[]> = {}
  for (const c of [1, concurrency]) {
    const lat: number[] = []
    let next = 0
    const t0 = performance.now()
    await Promise.all(Array.from({ length: c }, async () => {
      for (let i = next++; i < requests; i = next++) lat.push(await call(i))
    }))
    results[c] = lat
    console.log(`service, ${c} client(s): ${requests} requests in ${((performance.now() - t0) / 1000).toFixed(1)} s  ${fmt(lat)}`)
  }
  server.close()
  const runs = (await db.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM seedops_stage_runs WHERE stage = 'update-theta'`)).rows[0]!.n
  console.log(`reference (library in a bare transaction, 1 client): ${ref.length} updates  ${fmt(ref)}`)
  console.log(`ratio service/reference at 1 client: p50 ${(pct(results[1]!, 50) / pct(ref, 50)).toFixed(2)}×, p99 ${(pct(results[1]!, 99) / pct(ref, 99)).toFixed(2)}×`)
  console.log(`data: ${learners} learners, ${users.length} active in the 30 days, ${(await db.pool.query(`SELECT count(*) FROM mirt_item_params`)).rows[0].count} calibrated items; run-log rows for update-theta: ${runs}`)
  await db.close()
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / 1000
  return [1, concurrency].map((c) => ({
    scenario: `irt serve update-theta, ${c} client(s), ${requests} requests (p99 ${pct(results[c]!, 99).toFixed(1)} ms)`,
    wallSeconds: sum(results[c]!) / c,
    peakRssMB: null,
    reference: `library call in a bare transaction: p99 ${pct(ref, 99).toFixed(1)} ms (ratio = p99 / that)`,
    ratio: pct(results[c]!, 99) / pct(ref, 99),
  }))
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await run()
