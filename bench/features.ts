/**
 * aggregate-features on ≥ 1,000,000 answered questions on a real PostgreSQL: the whole command a
 * user runs (`node bin/run.js run aggregate-features --date … --lookback-days N`, process start
 * included, under /usr/bin/time -v), against a bare full scan of the read model measured in the
 * same run (between the commands, so both see the same machine).
 *   npm run bench:features -- [--learners 4500] [--days 60] [--runs 3]
 */
import os from 'node:os'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { withTransaction } from '../src/lib/db/index.js'
import { seedDemo } from '../src/lib/demo/seed.js'
import { arg, benchDb, benchDbUrl, median, time } from './common.js'
import { timeCommand } from './measure.js'
import type { BenchOptions, BenchRow } from './types.js'

let learners = arg('learners', 4500)
const days = arg('days', 60)
const runs = arg('runs', 3)
const END = '2026-11-20'
const BIN = fileURLToPath(new URL('../../bin/run.js', import.meta.url))

export async function run(opts: BenchOptions = {}): Promise<BenchRow[]> {
  if (opts.quick) learners = Math.min(learners, 900)
  const name = `seedops_bench_features_${learners}_${days}`
  const { db } = await benchDb(name)
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
    const scanSql = `SELECT count(*), sum(response_time_ms), count(*) FILTER (WHERE correct), count(*) FILTER (WHERE hint_used), max(completed_at) FROM seedops_attempt_base`
    const env = { ...process.env, DATABASE_URL: benchDbUrl(name), LOG_FORMAT: '' }
    const cmd = (lookback: number) => timeCommand(process.execPath, [BIN, 'run', 'aggregate-features', '--date', END, '--lookback-days', String(lookback)], { env })
    const scan: number[] = []
    const s7: number[] = []
    const s60: { wall: number; rss: number | null }[] = []
    for (let i = 0; i < runs; i++) {
      scan.push((await time(() => db.pool.query(scanSql))).ms / 1000)
      s7.push((await cmd(7)).wallSeconds)
      const m = await cmd(days)
      s60.push({ wall: m.wallSeconds, rss: m.peakRssMB })
      console.error(`  run ${i + 1}: scan ${scan.at(-1)!.toFixed(2)} s, 7-day ${s7.at(-1)!.toFixed(2)} s, ${days}-day ${m.wallSeconds.toFixed(2)} s`)
    }
    const rows = (await db.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM features_topic_daily`)).rows[0]!.n
    const f = (x: number) => x.toFixed(2)
    const ms = median(scan)
    const m7 = median(s7)
    const m60 = median(s60.map((x) => x.wall))
    const rss = s60.map((x) => x.rss).reduce<number | null>((m, x) => (x === null ? m : Math.max(m ?? 0, x)), null)
    const server = (await db.pool.query<{ v: string }>(`SELECT current_setting('server_version') AS v`)).rows[0]!.v
    console.log(`aggregate-features benchmark — PostgreSQL ${server}, ${os.cpus().length} cores, load average ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}, median of ${runs} runs`)
    console.log(`data: ${answered.toLocaleString('en')} answered questions in ${sessions.toLocaleString('en')} exam_results over ${days} days, ${learners} learners`)
    console.log(`bare full scan of seedops_attempt_base (hot-path read model): ${f(ms)} s`)
    console.log(`node bin/run.js run aggregate-features --lookback-days 7 (whole process):     ${f(m7)} s = ${(m7 / ms).toFixed(2)}× the scan`)
    console.log(`node bin/run.js run aggregate-features --lookback-days ${days} (whole process):    ${f(m60)} s = ${(m60 / ms).toFixed(2)}× the scan, peak RSS ${rss?.toFixed(0) ?? '?'} MB`)
    console.log(`features_topic_daily rows after the ${days}-day run: ${rows.toLocaleString('en')}`)
    console.log(`goal: ≤ 1.5× the scan → ${m60 / ms <= 1.5 ? 'met' : 'NOT met'}`)
    return [
      { scenario: `aggregate-features, ${days} days, ${(answered / 1e6).toFixed(2)} M answers, whole command`, wallSeconds: m60, peakRssMB: rss, reference: `bare scan ${f(ms)} s`, ratio: m60 / ms, target: '≤ 1.5× scan', met: m60 / ms <= 1.5 },
      { scenario: `aggregate-features, 7 days (default), whole command`, wallSeconds: m7, peakRssMB: null, reference: `bare scan ${f(ms)} s`, ratio: m7 / ms },
    ]
  } finally {
    await db.close()
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await run({ quick: process.argv.includes('--quick') })
}
