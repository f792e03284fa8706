/**
 * compute-kpis on 100,000 learners × 60 days on a real PostgreSQL: the whole command a user runs
 * (`node bin/run.js run compute-kpis --date …`, process start included, under /usr/bin/time -v),
 * against a per-user reference loop (one round of queries per user, as the predecessor did) timed
 * on a sample in the same run and extrapolated to every user. The sample's KPIs are also compared
 * with the ones the command wrote. The previous week is finalised once first (not timed), so each
 * timed command computes one week, as the daily CronJob does.
 *   npm run bench:kpis -- [--learners 100000] [--days 60] [--sample 200] [--runs 2]
 *
 * Data are seeded once into `seedops_bench_kpis_<learners>_<days>` (reused when present) by SQL on
 * the server, in the platform's shape (PERF-NOTES: ~4 sessions of ~12 answers per learner over
 * 60 days; here 1–7 sessions, 8–16 answers: ~48 answers per learner): demo's seedDemo generates ~230 answers per learner,
 * i.e. 23 M at this size, which is not the platform's shape and takes far longer to seed.
 */
import os from 'node:os'
import { fileURLToPath, pathToFileURL } from 'node:url'
import type pg from 'pg'
import { addDays } from '../src/lib/config/index.js'
import { kpiWeek } from '../src/lib/kpi/compute.js'
import { computeKpis, type KpiInputs, type KpiOptions } from '../src/lib/kpi/formulas.js'
import computeKpisStage from '../src/lib/kpi/stage.js'
import { resolveStageParams } from '../src/lib/stages/options.js'
import { silentLogger } from '../src/lib/output/index.js'
import { finaliseKpiWeek, kpiWeekIsFinal } from '../src/lib/stages/chain.js'
import { arg, benchDb, benchDbUrl, median, time } from './common.js'
import { timeCommand } from './measure.js'
import type { BenchOptions, BenchRow } from './types.js'

let learners = arg('learners', 100_000)
const days = arg('days', 60)
const sampleN = arg('sample', 200)
const runs = arg('runs', 2)
const END = '2026-11-22' // a Sunday: the KPI week ends on the last seeded day
const ITEMS = 2000
const TOPICS = ['algebra', 'geometry', 'fractions', 'statistics', 'probability', 'functions', 'trigonometry', 'calculus']

async function seed(c: pg.Pool): Promise<void> {
  const from = addDays(END, -(days - 1))
  await c.query(
    `INSERT INTO question (id, topic_id, difficulty, meta)
     SELECT 1000 + i, ($1::text[])[1 + i % 8], round((random() * 4 - 2)::numeric, 3), '{}'::jsonb FROM generate_series(0, $2 - 1) i
     ON CONFLICT (id) DO NOTHING`,
    [TOPICS, ITEMS],
  )
  // Bulk-build the GIN index after loading (bench database only).
  await c.query(`DROP INDEX IF EXISTS exam_results_result_json_gin`)
  const chunk = 10_000
  for (let u0 = 1; u0 <= learners; u0 += chunk) {
    const t = await time(() =>
      c.query(
        `INSERT INTO exam_results (session_id, user_id, exam_id, status, result_json, created_at, updated_at)
         SELECT 'bench-' || u || '-' || s, 'learner-' || lpad(u::text, 6, '0'), 100, 'completed',
                jsonb_build_object('questions', qs.questions), at, at + make_interval(secs => 8 * 40)
         FROM generate_series($1::int, $2::int) u
         CROSS JOIN LATERAL generate_series(1, 1 + (hashint4(u) & 2147483647) % 7) s
         CROSS JOIN LATERAL (SELECT $3::timestamptz + make_interval(days => floor(random() * $4)::int, secs => floor(6 * 3600 + random() * 15 * 3600)::int) + (s * 0)::int * interval '1 s' AS at) a
         CROSS JOIN LATERAL (
           SELECT jsonb_agg(jsonb_strip_nulls(jsonb_build_object(
                    'question_id', 1000 + floor(random() * $5)::int,
                    'is_correct', random() < 0.62,
                    'time_spent_sec', CASE WHEN random() < 0.98 THEN round((8 + random() * 70)::numeric, 1) END,
                    'used_hints', CASE WHEN random() < 0.98 THEN (random() < 0.2)::int END)) ORDER BY q) AS questions
           FROM generate_series(1, 8 + (u + s) % 9) q WHERE s > 0
         ) qs`,
        [u0, Math.min(learners, u0 + chunk - 1), `${from}T00:00:00Z`, days, ITEMS],
      ),
    )
    console.error(`  exam_results for learners ${u0}..${Math.min(learners, u0 + chunk - 1)} in ${(t.ms / 1000).toFixed(1)} s`)
  }
  await c.query(`CREATE INDEX IF NOT EXISTS exam_results_result_json_gin ON exam_results USING gin (result_json)`)
  // θ history: one estimate per learner per week (9 weeks ending at END), so I_t's θ mode and P fire.
  await c.query(
    `INSERT INTO seedops_ability_history (user_id, theta, se, model, version, source, key, measured_at)
     SELECT 'learner-' || lpad(u::text, 6, '0'), ((hashint4(u) % 1000) / 600.0) + w * 0.03 + (random() - 0.5) * 0.2, 0.2 + random() * 0.2,
            '2PL', 'bench', 'bench', 'w' || w, $1::timestamptz - make_interval(days => 7 * w + 1)
     FROM generate_series(1, $2::int) u, generate_series(0, 8) w
     ON CONFLICT DO NOTHING`,
    [`${END}T12:00:00Z`, learners],
  )
  await c.query(
    `INSERT INTO interest_goal (user_id, topic_id, target_level, priority)
     SELECT 'learner-' || lpad(u::text, 6, '0'), 'algebra', round((0.3 + random() * 1.2)::numeric, 3), 1
     FROM generate_series(1, $1::int) u WHERE u % 10 < 7 ON CONFLICT DO NOTHING`,
    [learners],
  )
  await c.query('VACUUM ANALYZE')
}

/**
 * The predecessor's shape: for one user, one query per KPI window (each through the read model,
 * filtered by user_id), then the same formulas. Returns the same inputs the set-based SQL does.
 */
const REF = {
  counts: `SELECT count(*)::int AS n, (count(*) FILTER (WHERE correct))::int AS c FROM seedops_attempt_base WHERE user_id = $1 AND completed_at >= $2 AND completed_at < $3`,
  median: `SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY response_time_ms)::float8 AS m FROM seedops_attempt_base WHERE user_id = $1 AND correct AND completed_at >= $2 AND completed_at < $3`,
  recovery: `WITH k AS (SELECT DISTINCT b.item_id, COALESCE(q.topic_id::text, b.topic) AS topic_id FROM seedops_attempt_base b LEFT JOIN question q ON q.id = b.item_id
               WHERE b.user_id = $1 AND NOT b.correct AND b.completed_at >= $2 AND b.completed_at < $3)
             SELECT (SELECT count(*) FROM k)::int AS keys, count(*)::int AS n, (count(*) FILTER (WHERE b.correct))::int AS c
             FROM seedops_attempt_base b LEFT JOIN question q ON q.id = b.item_id
             JOIN k ON k.item_id = b.item_id AND k.topic_id IS NOT DISTINCT FROM COALESCE(q.topic_id::text, b.topic)
             WHERE b.user_id = $1 AND b.completed_at >= $3 AND b.completed_at < $4`,
  sessions: `SELECT count(*)::int AS n, extract(epoch FROM max(t) - min(t))::float8 / 86400 AS span, avg(dwell)::float8 / 1000 AS dwell, max(t) AS last
             FROM (SELECT COALESCE(session_id, exam_result_id::text) AS sid, min(completed_at) AS t, sum(response_time_ms) AS dwell
                   FROM seedops_attempt_base WHERE user_id = $1 AND completed_at >= $2 AND completed_at < $3 GROUP BY 1) s`,
  hints: `SELECT count(hints_used)::int AS n, COALESCE(sum(hints_used), 0)::float8 AS c FROM seedops_attempt_base WHERE user_id = $1 AND completed_at >= $2 AND completed_at < $3`,
  theta: `SELECT theta, se FROM seedops_ability_history WHERE user_id = $1 AND measured_at >= $2 AND measured_at < $3 ORDER BY measured_at DESC, id DESC LIMIT 1`,
  latest: `SELECT theta, se FROM seedops_ability_history WHERE user_id = $1 AND measured_at < $2 ORDER BY measured_at DESC, id DESC LIMIT 1`,
  goal: `SELECT target_level::float8 AS t FROM interest_goal WHERE user_id = $1 AND target_level IS NOT NULL ORDER BY priority ASC NULLS LAST, target_level DESC, topic_id LIMIT 1`,
}

async function referenceInputs(c: pg.PoolClient, user: string, asOf: string): Promise<KpiInputs> {
  const at = (ago: number) => `${addDays(asOf, -ago)}T00:00:00Z`
  const end = at(-1)
  const one = async <T>(sql: string, p: unknown[]) => (await c.query(sql, p)).rows[0] as T
  const rec = await one<{ n: number; c: number }>(REF.counts, [user, at(13), end])
  const prev = await one<{ n: number; c: number }>(REF.counts, [user, at(27), at(13)])
  const medR = await one<{ m: number | null }>(REF.median, [user, at(27), end])
  const medP = await one<{ m: number | null }>(REF.median, [user, at(55), at(27)])
  const r = await one<{ keys: number; n: number; c: number }>(REF.recovery, [user, at(55), at(27), end])
  const s28 = await one<{ n: number; span: number | null; dwell: number | null }>(REF.sessions, [user, at(27), end])
  const s56 = await one<{ n: number; span: number | null; last: Date | null }>(REF.sessions, [user, at(55), end])
  const h = await one<{ n: number; c: number }>(REF.hints, [user, at(27), end])
  const a28 = await one<{ n: number; c: number }>(REF.counts, [user, at(27), end])
  const thR = await one<{ theta: number; se: number } | undefined>(REF.theta, [user, at(13), end])
  const thP = await one<{ theta: number; se: number } | undefined>(REF.theta, [user, at(27), at(13)])
  const lat = await one<{ theta: number; se: number } | undefined>(REF.latest, [user, end])
  const goal = await one<{ t: number } | undefined>(REF.goal, [user])
  const lastDay = s56.last ? new Date(s56.last).toISOString().slice(0, 10) : null
  return {
    user_id: user, n_recent: rec.n, c_recent: rec.c, n_prev: prev.n, c_prev: prev.c,
    theta_recent: thR?.theta ?? null, se_recent: thR?.se ?? null, theta_prev: thP?.theta ?? null,
    med_recent: medR.m, med_prev: medP.m, r_wrong: r.keys, r_n: r.keys ? r.n : 0, r_c: r.keys ? r.c : 0,
    a_attempts: a28.n, a_sessions: s28.n, a_mean_gap_days: s28.n >= 2 ? s28.span! / (s28.n - 1) : null,
    a_hint_n: h.n, a_hints: h.c, a_mean_dwell_s: s28.dwell,
    s_sessions: s56.n, s_mean_gap_days: s56.n >= 2 ? s56.span! / (s56.n - 1) : null,
    s_days_since_last: lastDay ? Math.round((Date.parse(asOf) - Date.parse(lastDay)) / 86_400_000) : null,
    theta_latest: lat?.theta ?? null, se_latest: lat?.se ?? null, theta_source: lat ? 'history' : null, goal_target: goal?.t ?? null,
  }
}

const BIN = fileURLToPath(new URL('../../bin/run.js', import.meta.url))

export async function run(opts: BenchOptions = {}): Promise<BenchRow[]> {
  if (opts.quick) learners = Math.min(learners, 10_000)
  const name = `seedops_bench_kpis_${learners}_${days}`
  const { db } = await benchDb(name)
  try {
    let sessions = (await db.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM exam_results`)).rows[0]!.n
    if (sessions === 0) {
      console.error(`seeding ${learners.toLocaleString('en')} learners × ${days} days (once; reused afterwards) …`)
      const s = await time(() => seed(db.pool))
      console.error(`seeded in ${(s.ms / 1000).toFixed(0)} s`)
      sessions = (await db.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM exam_results`)).rows[0]!.n
    }
    const answered = (await db.pool.query<{ n: number }>(`SELECT sum(jsonb_array_length(result_json -> 'questions'))::int AS n FROM exam_results`)).rows[0]!.n
    const history = (await db.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM seedops_ability_history`)).rows[0]!.n
    const { asOf, weekStart } = kpiWeek(END)
    const params = resolveStageParams(computeKpisStage, {}, {})
    const prev = addDays(weekStart, -7)
    if (!(await kpiWeekIsFinal(db, prev))) {
      console.error(`finalising the week ${prev} once (not timed) …`)
      await finaliseKpiWeek(db, prev, params, { asOf: END, dryRun: false, logger: silentLogger })
    }

    // compute-kpis as the user runs it: the whole process.
    const env = { ...process.env, DATABASE_URL: benchDbUrl(name), LOG_FORMAT: '' }
    const cli: { wall: number; rss: number | null }[] = []
    for (let i = 0; i < runs; i++) {
      const m = await timeCommand(process.execPath, [BIN, 'run', 'compute-kpis', '--date', END], { env })
      cli.push({ wall: m.wallSeconds, rss: m.peakRssMB })
      const inputs = /inputs for .*/.exec(m.stderr)?.[0] ?? ''
      // The stage's own time from its log (the run, without process start and connecting).
      const stage = /succeeded in ([\d.]+ s)/.exec(m.stdout + m.stderr)?.[1] ?? '?'
      console.error(`  compute-kpis run ${i + 1}: ${m.wallSeconds.toFixed(2)} s, peak RSS ${m.peakRssMB?.toFixed(0) ?? '?'} MB (stage ${stage}; ${inputs})`)
    }
    const users = (await db.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM weekly_kpi WHERE week_start = $1`, [weekStart])).rows[0]!.n

    // The reference loop on a spread sample of the active users (every k-th), compared with the rows compute-kpis wrote.
    const c = await db.pool.connect()
    let refMs: number
    let sample: string[]
    let maxDiff = 0
    let compared = 0
    try {
      const written = await c.query<{ user_id: string; kpis: Record<string, number | null> }>(`SELECT user_id, kpis FROM weekly_kpi WHERE week_start = $1 ORDER BY user_id`, [weekStart])
      const setBased = new Map(written.rows.map((r) => [r.user_id, r.kpis]))
      const all = written.rows.map((r) => r.user_id)
      const step = Math.max(1, Math.floor(all.length / sampleN))
      sample = all.filter((_, i) => i % step === 0).slice(0, sampleN)
      const o: KpiOptions = { ...params, tau2: 0 }
      const ref = await time(async () => {
        const out: [string, ReturnType<typeof computeKpis>][] = []
        for (const u of sample) out.push([u, computeKpis(await referenceInputs(c, u, asOf), o)])
        return out
      })
      refMs = ref.ms
      for (const [u, k] of ref.value) {
        const s = setBased.get(u)!
        for (const key of ['I_t', 'E_t', 'R_t', 'A_t', 'P', 'S'] as const) {
          const a = k[key]
          const b = s[key] ?? null
          if ((a === null) !== (b === null)) maxDiff = Infinity
          else if (a !== null && b !== null) maxDiff = Math.max(maxDiff, Math.abs(a - b))
          compared++
        }
      }
    } finally {
      c.release()
    }
    const bare = await time(() =>
      db.pool.query(
        `SELECT count(*), sum(response_time_ms), count(*) FILTER (WHERE correct), count(*) FILTER (WHERE hint_used), max(completed_at)
         FROM seedops_attempt_base WHERE completed_at >= $1 AND completed_at < $2`,
        [`${addDays(asOf, -55)}T00:00:00Z`, `${addDays(asOf, 1)}T00:00:00Z`],
      ),
    )
    const wall = median(cli.map((x) => x.wall))
    const rss = cli.map((x) => x.rss).reduce<number | null>((m, x) => (x === null ? m : Math.max(m ?? 0, x)), null)
    const perUser = refMs / sample.length
    const loopAll = (perUser * users) / 1000
    const speedup = loopAll / wall
    const server = (await db.pool.query<{ v: string }>(`SELECT current_setting('server_version') AS v`)).rows[0]!.v
    const f = (x: number) => x.toFixed(2)
    console.log(`compute-kpis benchmark — PostgreSQL ${server}, ${os.cpus().length} cores, load average ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}, week ${weekStart} (as of ${asOf})`)
    console.log(`data: ${learners.toLocaleString('en')} learners, ${sessions.toLocaleString('en')} exam_results sessions, ${answered.toLocaleString('en')} answered questions over ${days} days; ${history.toLocaleString('en')} ability-history rows`)
    console.log(`node bin/run.js run compute-kpis --date ${END} (whole process), ${users.toLocaleString('en')} active users: ${cli.map((x) => f(x.wall)).join(' s, ')} s → median ${f(wall)} s, peak RSS ${rss?.toFixed(0) ?? '?'} MB`)
    console.log(`  for scale, a bare scan of the 56 days of answers it reads (seedops_attempt_base, 4 aggregates): ${f(bare.ms / 1000)} s → compute-kpis = ${(wall / (bare.ms / 1000)).toFixed(2)}× that scan`)
    console.log(`per-user reference loop (13 queries per user) on ${sample.length} users: ${f(refMs / 1000)} s = ${perUser.toFixed(1)} ms/user → ${f(loopAll)} s extrapolated to ${users.toLocaleString('en')} users`)
    console.log(`speed-up: ${speedup.toFixed(1)}× (goal ≥ 50×: ${speedup >= 50 ? 'met' : 'NOT met'}); wall time goal ≤ 20 s: ${wall <= 20 ? 'met' : 'NOT met'}`)
    console.log(`sample agreement: ${compared} KPI values compared, max |set-based − per-user| = ${maxDiff === Infinity ? 'null mismatch' : maxDiff.toExponential(2)}`)
    return [
      {
        scenario: `compute-kpis, ${(learners / 1000).toFixed(0)}k learners (${users.toLocaleString('en')} active), whole command`,
        wallSeconds: wall,
        peakRssMB: rss,
        reference: `per-user loop ${f(loopAll)} s extrapolated (ratio = speed-up); bare scan ${f(bare.ms / 1000)} s`,
        ratio: speedup,
        target: '≤ 20 s, ≥ 50× the loop',
        met: wall <= 20 && speedup >= 50,
      },
    ]
  } finally {
    await db.close()
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await run({ quick: process.argv.includes('--quick') })
}
