/**
 * calibrate-irt end to end against the offline CLI on the same observations (npm run
 * bench:calibrate-stage -- [--learners 100000] [--items 500] [--per 30] [--runs 1] [--quick]).
 *
 * Data: 2PL responses from a fixed seed, each learner answering `per` distinct items of the bank in
 * three sessions at random times of the stage's default 30-day lookback ending at 2026-06-30, loaded
 * once with COPY into exam_results of `seedops_bench_calib` (reused when present) in time order, as
 * a platform appends them. The stage reads them through the read model (seedops_attempt_base).
 * The same rows (the stage's own query and order) are exported to CSV for the CLI.
 * Measured, each under /usr/bin/time -v (process start included):
 *   node bin/run.js run calibrate-irt --date 2026-06-30            (DATABASE_URL = the bench db)
 *   node bin/run.js irt calibrate --input <csv> --out <items.csv>  (the reference, same run)
 */
import { createWriteStream, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { fileURLToPath } from 'node:url'
import type pg from 'pg'
import { from as copyFrom, to as copyTo } from 'pg-copy-streams'
import { addDays } from '../src/lib/config/index.js'
import { OBSERVATION_WINDOW } from '../src/lib/irt-stage/sql.js'
import { adminUrl, arg, benchDb } from './common.js'
import { timeCommand } from './measure.js'
import { rng } from './sim.js'
import type { BenchOptions, BenchRow } from './types.js'

const END = '2026-06-30'
const FROM = '2026-06-01'
const SESSIONS = 3

/** 2PL sessions (learner, time, `per / 3` answers each), COPYed into exam_results in time order. */
async function seed(c: pg.PoolClient, learners: number, J: number, per: number): Promise<void> {
  const r = rng(20261)
  const a = Float64Array.from({ length: J }, () => Math.exp(0.25 * r.normal()))
  const b = Float64Array.from({ length: J }, () => r.normal())
  const nS = learners * SESSIONS
  const q = Math.ceil(per / SESSIONS)
  const item = new Int32Array(nS * q).fill(-1)
  const resp = new Uint8Array(nS * q)
  const at = new Float64Array(nS)
  const perm = Int32Array.from({ length: J }, (_, j) => j)
  const t0 = Date.parse(`${FROM}T00:00:00Z`)
  const span = Date.parse(`${END}T00:00:00Z`) + 86_400_000 - t0 - 3_600_000
  for (let i = 0; i < learners; i++) {
    const th = r.normal()
    for (let t = 0; t < per; t++) {
      const s = t + Math.floor(r.next() * (J - t))
      const x = perm[t]!
      perm[t] = perm[s]!
      perm[s] = x
    }
    for (let s = 0; s < SESSIONS; s++) at[i * SESSIONS + s] = t0 + Math.floor(r.next() * span)
    for (let t = 0; t < per; t++) {
      const j = perm[t]!
      const k = (i * SESSIONS + Math.floor(t / q)) * q + (t % q)
      item[k] = j
      resp[k] = r.next() < 1 / (1 + Math.exp(-a[j]! * (th - b[j]!))) ? 1 : 0
    }
  }
  const order = Array.from({ length: nS }, (_, k) => k).sort((x, y) => at[x]! - at[y]!)
  function* rows(): Generator<string> {
    let buf: string[] = []
    for (const k of order) {
      const learner = Math.floor(k / SESSIONS)
      const qs: string[] = []
      for (let t = 0; t < q; t++) {
        const j = item[k * q + t]!
        if (j < 0) continue
        qs.push(`{"question_id": ${1001 + j}, "is_correct": ${resp[k * q + t] === 1}, "time_spent_sec": ${(8 + (j % 70)).toFixed(1)}, "used_hints": ${(k + t) % 5 === 0 ? 1 : 0}}`)
      }
      const done = new Date(at[k]!).toISOString()
      const started = new Date(at[k]! - 600_000).toISOString()
      buf.push(`calib-${learner + 1}-${k % SESSIONS}\tlearner-${String(learner + 1).padStart(6, '0')}\t100\tcompleted\t{"questions": [${qs.join(', ')}]}\t${started}\t${done}\n`)
      if (buf.length === 2000) {
        yield buf.join('')
        buf = []
      }
    }
    if (buf.length) yield buf.join('')
  }
  await c.query(`INSERT INTO question (id, topic_id, meta) SELECT 1000 + i, 'algebra', '{}' FROM generate_series(1, $1::int) i ON CONFLICT DO NOTHING`, [J])
  // Bulk-build the GIN index after loading (bench database only).
  await c.query(`DROP INDEX IF EXISTS exam_results_result_json_gin`)
  await pipeline(Readable.from(rows()), c.query(copyFrom(`COPY exam_results (session_id, user_id, exam_id, status, result_json, created_at, updated_at) FROM STDIN`)))
  await c.query(`CREATE INDEX IF NOT EXISTS exam_results_result_json_gin ON exam_results USING gin (result_json)`)
  await c.query('VACUUM ANALYZE exam_results')
}

/** The stage's observations, same query and order, as the CLI's CSV (user_id,item_id,is_correct). */
async function exportCsv(c: pg.PoolClient, path: string): Promise<void> {
  await c.query('BEGIN')
  try {
    await c.query(OBSERVATION_WINDOW, [`${FROM}T00:00:00Z`, `${addDays(END, 1)}T00:00:00Z`, 1, 0])
    const out = c.query(
      copyTo(`COPY (SELECT b.user_id, b.item_id, b.correct::int AS is_correct FROM seedops_attempt_base b
                    WHERE b.completed_at >= current_setting('seedops.calibrate_from')::timestamptz AND b.completed_at < current_setting('seedops.calibrate_to')::timestamptz
                    ORDER BY b.completed_at, b.session_id, b.question_no) TO STDOUT WITH (FORMAT csv, HEADER)`),
    )
    await pipeline(out, createWriteStream(path))
  } finally {
    await c.query('COMMIT')
  }
}

/** "read N observations in X s" etc. from the stage's progress lines. */
function phase(stderr: string, re: RegExp): number | null {
  const m = re.exec(stderr)
  return m ? Number(m[1]) : null
}

export interface CalibrateStageDetail {
  observations: number
  stage: { wall: number; rss: number | null; read: number | null; fit: number | null; write: number | null }
  cli: { wall: number; rss: number | null }
  maxRelDiff: number
}

export async function run(opts: BenchOptions = {}, detail: CalibrateStageDetail[] = []): Promise<BenchRow[]> {
  const learners = opts.quick ? 10_000 : arg('learners', 100_000)
  const J = arg('items', 500)
  const per = arg('per', 30)
  const runs = arg('runs', 1)
  const name = learners === 100_000 && J === 500 && per === 30 ? 'seedops_bench_calib' : `seedops_bench_calib_${learners}_${J}_${per}`
  const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')
  const { db } = await benchDb(name)
  const dir = mkdtempSync(join(tmpdir(), 'seedops-bench-calib-'))
  try {
    const c = await db.pool.connect()
    let observations: number
    try {
      if ((await c.query<{ has: boolean }>(`SELECT EXISTS (SELECT 1 FROM exam_results) AS has`)).rows[0]!.has === false) {
        console.error(`seeding ${learners.toLocaleString('en')} learners × ${per} of ${J} items into ${name} (once; reused afterwards) …`)
        const t = performance.now()
        await seed(c, learners, J, per)
        console.error(`seeded in ${((performance.now() - t) / 1000).toFixed(0)} s`)
      }
      await exportCsv(c, join(dir, 'responses.csv'))
      observations = readFileSync(join(dir, 'responses.csv'), 'latin1').split('\n').length - 2
    } finally {
      c.release()
    }
    const u = new URL(adminUrl())
    u.pathname = `/${name}`
    const env = { ...process.env, DATABASE_URL: u.toString(), PUSHGATEWAY_URL: '' }
    const bin = join(root, 'bin', 'run.js')
    let best: CalibrateStageDetail | null = null
    for (let i = 0; i < runs; i++) {
      // The reference first, then the stage: both in the same run, the page cache warm for each.
      const cli = await timeCommand(process.execPath, [bin, 'irt', 'calibrate', '--input', join(dir, 'responses.csv'), '--out', join(dir, 'items.csv')], { cwd: root, env })
      const st = await timeCommand(process.execPath, [bin, 'run', 'calibrate-irt', '--date', END], { cwd: root, env })
      const d: CalibrateStageDetail = {
        observations,
        stage: {
          wall: st.wallSeconds,
          rss: st.peakRssMB,
          read: phase(st.stderr, /read \d+ observations in ([\d.]+) s/),
          fit: phase(st.stderr, /converged in \d+ cycles, logLik [-\d.]+, ([\d.]+) s/),
          write: phase(st.stderr, /abilities \(\+ history\) in ([\d.]+) s/),
        },
        cli: { wall: cli.wallSeconds, rss: cli.peakRssMB },
        maxRelDiff: NaN,
      }
      // Same data, same engine: the parameters the stage wrote are the CLI's.
      const cliItems = new Map(
        readFileSync(join(dir, 'items.csv'), 'utf8').trim().split('\n').slice(1).map((l) => {
          const f = l.split(',')
          return [f[0]!, [Number(f[1]), Number(f[2])]] as const
        }),
      )
      const written = await db.pool.query<{ item_id: string; a: number; b: number }>(`SELECT item_id::text, (params->>'a')::float8 AS a, (params->>'b')::float8 AS b FROM mirt_item_params`)
      let diff = written.rows.length === cliItems.size ? 0 : Infinity
      for (const w of written.rows) {
        const x = cliItems.get(w.item_id)
        if (!x) diff = Infinity
        else diff = Math.max(diff, Math.abs(w.a - x[0]!) / Math.abs(x[0]!), Math.abs(w.b - x[1]!) / Math.max(Math.abs(x[1]!), 1e-3))
      }
      d.maxRelDiff = diff
      detail.push(d)
      if (!best || d.stage.wall / d.cli.wall < best.stage.wall / best.cli.wall) best = d
    }
    const b = best!
    const ratio = b.stage.wall / b.cli.wall
    return [
      {
        scenario: `calibrate-irt stage, ${(b.observations / 1e6).toFixed(1)} M observations in Postgres (${learners.toLocaleString('en')} learners × ${J}-item bank)`,
        wallSeconds: b.stage.wall,
        peakRssMB: b.stage.rss,
        reference: `irt calibrate CLI on the same rows ${b.cli.wall.toFixed(1)} s`,
        ratio,
        target: '≤ 1.5× the CLI, ≤ 800 MB',
        met: ratio <= 1.5 && (b.stage.rss ?? Infinity) <= 800,
      },
    ]
  } finally {
    rmSync(dir, { recursive: true, force: true })
    await db.close()
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const detail: CalibrateStageDetail[] = []
  const rows = await run({ quick: process.argv.includes('--quick') }, detail)
  const f = (x: number | null, d = 1) => (x === null ? '?' : x.toFixed(d))
  console.log('calibrate-irt stage vs the offline CLI on the same observations (2PL, defaults, SEs on)')
  for (const d of detail) {
    console.log(
      `  stage ${f(d.stage.wall)} s, ${f(d.stage.rss, 0)} MB (read ${f(d.stage.read)} s, fit ${f(d.stage.fit)} s, writes ${f(d.stage.write)} s) | CLI ${f(d.cli.wall)} s, ${f(d.cli.rss, 0)} MB | ratio ${f(d.stage.wall / d.cli.wall, 2)} | ` +
        `max relative difference of a, b: ${d.maxRelDiff.toExponential(1)}`,
    )
  }
  console.log('scenario | wall s | peak RSS MB | reference | ratio | target | met')
  for (const r of rows) console.log(`${r.scenario} | ${r.wallSeconds.toFixed(1)} | ${f(r.peakRssMB, 0)} | ${r.reference} | ${f(r.ratio, 2)} | ${r.target} | ${r.met ? 'yes' : 'NO'}`)
}
