/**
 * aggregate-features on ≥ 1,000,000 answered questions on a real PostgreSQL, against a bare full
 * scan of the read model measured in the same run.
 *   npm run bench:features -- [--learners 4500] [--days 60] [--runs 3]
 */
import os from 'node:os'
import { withTransaction } from '../src/lib/db/index.js'
import { seedDemo } from '../src/lib/demo/seed.js'
import aggregateFeatures from '../src/lib/features/stage.js'
import { silentLogger } from '../src/lib/output/index.js'
import { runStage } from '../src/lib/stages/runner.js'
import { arg, benchDb, median, time } from './common.js'

const learners = arg('learners', 4500)
const days = arg('days', 60)
const runs = arg('runs', 3)
const END = '2026-11-20'

const { db } = await benchDb(`seedops_bench_features_${learners}_${days}`)
try {
  let answered = (await db.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM seedops_attempt_base`)).rows[0]!.n
  if (answered === 0) {
    console.error(`seeding ${learners} learners × ${days} days …`)
    const s = await time(() => withTransaction(db.pool, (c) => seedDemo(c, { learners, items: 500, days, seed: 7, endDate: END })))
    await db.pool.query('ANALYZE')
    console.error(`seeded ${s.value.answered} answered questions in ${(s.ms / 1000).toFixed(1)} s`)
    answered = s.value.answered
  }
  const sessions = (await db.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM exam_results`)).rows[0]!.n
  const scanSql = (view: string) =>
    `SELECT count(*), sum(response_time_ms), count(*) FILTER (WHERE correct), count(*) FILTER (WHERE hint_used), max(completed_at) FROM ${view}`
  const scanBase: number[] = []
  const scanAttempt: number[] = []
  const stage7: number[] = []
  const stage60: number[] = []
  for (let i = 0; i < runs; i++) {
    scanBase.push((await time(() => db.pool.query(scanSql('seedops_attempt_base')))).ms)
    scanAttempt.push((await time(() => db.pool.query(scanSql('attempt')))).ms)
    stage7.push((await time(() => runStage(db, aggregateFeatures, { lookbackDays: 7, includeTheta: false }, { asOf: END, dryRun: false, logger: silentLogger }))).ms)
    stage60.push((await time(() => runStage(db, aggregateFeatures, { lookbackDays: days, includeTheta: false }, { asOf: END, dryRun: false, logger: silentLogger }))).ms)
  }
  const rows = (await db.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM features_topic_daily`)).rows[0]!.n
  const f = (ms: number) => (ms / 1000).toFixed(2)
  const mb = median(scanBase)
  const ma = median(scanAttempt)
  const m7 = median(stage7)
  const m60 = median(stage60)
  const server = (await db.pool.query<{ v: string }>(`SELECT current_setting($1) AS v`, ["server_version"])).rows[0]!.v
  console.log(`aggregate-features benchmark — PostgreSQL ${server}, ${os.cpus().length} cores, median of ${runs} runs`)
  console.log(`data: ${answered.toLocaleString('en')} answered questions in ${sessions.toLocaleString('en')} exam_results over ${days} days, ${learners} learners`)
  console.log(`bare full scan of seedops_attempt_base (hot-path read model):  ${f(mb)} s`)
  console.log(`bare full scan of attempt (contract view, with attempt_no):       ${f(ma)} s`)
  console.log(`aggregate-features, 7-day lookback (default):   ${f(m7)} s = ${(m7 / mb).toFixed(2)}× the base scan, ${(m7 / ma).toFixed(2)}× the attempt scan`)
  console.log(`aggregate-features, ${days}-day lookback (all data): ${f(m60)} s = ${(m60 / mb).toFixed(2)}× the base scan, ${(m60 / ma).toFixed(2)}× the attempt scan`)
  console.log(`features_topic_daily rows after the ${days}-day run: ${rows.toLocaleString('en')}`)
  console.log(`goal: ≤ 3× the scan → ${m60 / mb <= 3 ? 'met' : 'NOT met'} for the full-history run against the stricter base scan`)
} finally {
  await db.close()
}
