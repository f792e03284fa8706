import { once } from 'node:events'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Db } from '../../src/lib/db/index.js'
import { normalCdf } from '../../src/lib/kpi/formulas.js'
import computeKpisStage from '../../src/lib/kpi/stage.js'
import { silentLogger } from '../../src/lib/output/index.js'
import { runStage } from '../../src/lib/stages/runner.js'
import { runCli, spawnCli } from '../support/cli.js'
import { DB_KINDS, freshDatabase, type TestDatabase } from '../support/db.js'
import { insertExams, waitForOutput } from '../support/fixtures.js'
import { AS_OF, loadKpiFixture, WEEK } from './fixture.js'
import { resolveStageParams } from '../../src/lib/stages/options.js'

type Row = { user_id: string; kpis: Record<string, unknown> }

async function kpiRows(db: Db, week = WEEK): Promise<Record<string, Record<string, any>>> {
  const r = await db.pool.query<Row>(`SELECT user_id, kpis FROM weekly_kpi WHERE week_start = $1 ORDER BY user_id`, [week])
  return Object.fromEntries(r.rows.map((x) => [x.user_id, x.kpis]))
}

const run = (db: Db, options: Record<string, unknown> = {}, env: NodeJS.ProcessEnv = {}, opts: { asOf?: string; dryRun?: boolean } = {}) =>
  runStage(db, computeKpisStage, resolveStageParams(computeKpisStage, options, env), { asOf: opts.asOf ?? '2026-03-11', dryRun: opts.dryRun ?? false, logger: silentLogger })

describe.each(DB_KINDS)('compute-kpis on %s', (kind) => {
  let t: TestDatabase
  let db: Db
  beforeAll(async () => {
    t = await freshDatabase(kind)
    db = await t.open()
    await loadKpiFixture(db.pool)
  })
  afterAll(async () => {
    await db?.close().catch(() => {})
  })

  it('computes every KPI by hand for the week of --date (a Wednesday → as of its Sunday)', async () => {
    const r = await run(db)
    expect(r.asOf).toBe('2026-03-11')
    expect(r.summary).toMatchObject({ weekStart: WEEK, asOf: AS_OF, users: 5, written: 5 })
    const k = await kpiRows(db)
    // Active = an attempt in 02-14..03-15: u_old (last 02-05) is not; u_hist has no attempts.
    expect(Object.keys(k)).toEqual(['u_acc', 'u_lown', 'u_one', 'u_theta', 'u_zse'])

    // u_acc — accuracy mode. recent (03-02..03-15): r1 3 (2✓) + r2 3 (2✓) → n 6, p_r 4/6; prev (02-16..03-01): p2 2 (1✓) → p_p 1/2
    //   exposure min(1, 6/30) = 0.2; shrink 1 − min(0.5, 1.96·√((2/3)(1/3)/6)) = 1 − 1.96·√(1/27) = 0.62280
    //   I = (2/3 − 1/2)·0.2·0.62280 = 0.020760
    const a = k.u_acc!
    expect(a.I_mode).toBe('accuracy')
    expect(a.n_recent).toBe(6)
    expect(a.I_t).toBeCloseTo((2 / 3 - 1 / 2) * 0.2 * (1 - 1.96 * Math.sqrt(1 / 27)), 12)
    // E: correct times 02-16..03-15 = 10, 20, 30, 20 s (r2's q2 has no time: missing, not 0) → median 20 s;
    //    01-19..02-15 = 40, 60 s → median 50 s; (50 − 20)/50 = 0.6
    expect(a.E_t).toBeCloseTo(0.6, 12)
    // R: K = {(item 1, alg)} (wrong on 02-01); recent attempts on it: ✓ 02-24, ✓ 03-10, ✗ 03-14 → 2/3
    expect(a.R_t).toBeCloseTo(2 / 3, 12)
    // A: 3 sessions (02-24, 03-10, 03-14) → 0.35·3/28; mean gap 18 d / 2 = 9 d → g = 1/9;
    //    hint data on 7 attempts, counts 0 | 1, 0, 0 | 2, 0, 0 → mean 3/7 → h = 1 − (3/7)/3 (not the share with a hint, 2/7);
    //    dwell 40, 100, 60 s → mean 200/3 s → w = (200/3)/900
    expect(a.A_t).toBeCloseTo(0.35 * (3 / 28) + 0.25 / 9 + 0.2 * (1 - 3 / 7 / 3) + 0.2 * (200 / 3 / 900), 12)
    // S: 4 sessions in 01-19..03-15, last 03-14 → d = 1; mean gap 41 d / 3 = 13.7 → clamp(13.7/7) = 1; sessions 4 → 0.15·0.6
    expect(a.S).toBeCloseTo(0.6 * (1 / 14) + 0.25 * 1 + 0.15 * 0.6, 12)
    expect(a.P).toBeNull() // no θ anywhere
    expect(a.P_mode).toBe('plain')
    expect(a).not.toHaveProperty('P_ci')

    // u_theta — θ mode: latest θ in 03-02..03-15 = 0.5 (SE 0.2, 03-12; the 03-16 estimate is after as_of),
    //   latest in 02-16..03-01 = 0.1 (02-25); n = 10 ≥ 5 → (0.5 − 0.1)·(10/30)·(1 − 1.96·0.2) = 0.4·(1/3)·0.608 = 0.081067
    const th = k.u_theta!
    expect(th.I_mode).toBe('theta')
    expect(th.I_t).toBeCloseTo(0.4 * (10 / 30) * (1 - 0.392), 12)
    expect(th.E_t).toBeNull() // no response times at all
    expect(th.R_t).toBeNull() // nothing in the 28 days ending 02-15 → K empty
    // A: 2 sessions, gap 20 d → g 0.05; no hint data → h 0.5; no times → w 0.5:
    //    0.35·2/28 + 0.25·0.05 + 0.2·0.5 + 0.2·0.5 = 0.025 + 0.0125 + 0.1 + 0.1 = 0.2375
    expect(th.A_t).toBeCloseTo(0.2375, 12)
    // S: last session 03-12 → d = 3; gap 20 d → 1; 2 sessions → 0.15·0.8: 0.6·3/14 + 0.25 + 0.12
    expect(th.S).toBeCloseTo(0.6 * (3 / 14) + 0.25 + 0.12, 12)
    // P: goal = the priority-1 goal 0.8 (not 0.2); μ 0.5, σ 0.2 → 1 − Φ(1.5) = 0.0668072
    expect(th.P_target).toBe(0.8)
    expect(th.P).toBeCloseTo(1 - 0.9331927987311419, 12)

    // u_one — one attempt (03-15 23:59:59, the last second of as_of): I, E, R null (empty prev windows)
    const one = k.u_one!
    expect([one.I_t, one.E_t, one.R_t, one.I_mode]).toEqual([null, null, null, null])
    // A: 1 session → g 0.5; hint data 1, none used → h 1; dwell 30 s → w 30/900: 0.35/28 + 0.125 + 0.2 + 0.2·30/900
    expect(one.A_t).toBeCloseTo(0.35 / 28 + 0.125 + 0.2 + (0.2 * 30) / 900, 12)
    // S: d = 0, one session → gap term 0, 0.15·(1 − 1/10) = 0.135
    expect(one.S).toBeCloseTo(0.135, 12)
    // P: no history → mirt_ability fitted before as_of (v1: θ 0.3, SE 0.5; v2 is fitted after as_of);
    //    no goal → target 0.0: 1 − Φ((0 − 0.3)/0.5) = Φ(0.6) = 0.7257469
    expect(one.P_target).toBe(0)
    expect(one.P).toBeCloseTo(0.7257468822499265, 12)

    // u_lown — θ in both windows but n = 4 < 5 → accuracy: p_r 3/4, p_p 1/2, exposure 4/30,
    //   shrink 1 − 1.96·√(0.75·0.25/4) → (0.25)(4/30)(1 − 1.96·√0.046875)
    const lo = k.u_lown!
    expect(lo.I_mode).toBe('accuracy')
    expect(lo.I_t).toBeCloseTo(0.25 * (4 / 30) * (1 - 1.96 * Math.sqrt(0.046875)), 12)
    expect(lo.R_t).toBeNull() // 02-10's attempts were all correct: no wrong key
    expect(lo.P).toBeCloseTo(1 - normalCdf((0 - 1.0) / 0.1), 12) // latest θ 1.0 (03-10), SE 0.1

    // u_zse — θ with SE 0 → P null; no JSON NaN anywhere
    expect(k.u_zse!.P).toBeNull()
    for (const row of Object.values(k)) for (const v of Object.values(row)) expect(Number.isNaN(v as number)).toBe(false)
    expect(r.summary).toMatchObject({ iMode: { theta: 1, accuracy: 2, none: 2 }, thetaSource: { history: 3, mirt_ability: 1, none: 1 } })
  })

  it('--bayesian: σ² = se² + τ²·h with τ² from weekly θ changes; P_ci and sigma stored beside P', async () => {
    await run(db, { bayesian: true })
    const th = (await kpiRows(db)).u_theta!
    // Weekly θ changes (consecutive ISO weeks only, up to as_of): u_theta 02-16→02-23→03-02→03-09: +0.3, +0.2, +0.2;
    //   u_hist 02-02→02-09→02-16: +1, −1 (its 03-09 estimate is 3 weeks later: skipped); u_lown's two are 3 weeks apart.
    //   var_pop{0.3, 0.2, 0.2, 1, −1}: mean 0.14, Σ dev² = 0.0256 + 0.0036 + 0.0036 + 0.7396 + 1.2996 = 2.072 → τ² = 0.4144
    const sigma = Math.sqrt(0.2 ** 2 + 0.4144 * 1)
    expect(th.sigma).toBeCloseTo(sigma, 12)
    expect(th.P_mode).toBe('bayesian')
    expect(th.P).toBeCloseTo(1 - normalCdf((0.8 - 0.5) / sigma), 12)
    // 95% interval of P: μ ∓ 1.96·SE = 0.108 / 0.892
    expect(th.P_ci[0]).toBeCloseTo(1 - normalCdf((0.8 - 0.108) / sigma), 12)
    expect(th.P_ci[1]).toBeCloseTo(1 - normalCdf((0.8 - 0.892) / sigma), 12)
    const acc = (await kpiRows(db)).u_acc!
    expect(acc.P).toBeNull()
    expect(acc.P_ci).toBeNull()
    expect(acc.sigma).toBeNull()
  })

  it('--target, --lookback-days and --user; env METRICS_DEFAULT_TARGET when no flag', async () => {
    const r = await run(db, { target: '0.3', lookbackDays: 45, users: ['u_one', 'u_old', 'u_nobody'] })
    expect(r.summary!.users).toBe(2) // u_old is active within 45 days
    expect(r.warnings.join(' ')).toMatch(/1 requested user\(s\) had no attempt .*u_nobody/)
    let k = await kpiRows(db)
    expect(k.u_one!.P).toBeCloseTo(0.5, 12) // target 0.3 = μ
    // u_old: its one attempt (02-05) is 38 days back: outside A's 28 days (null), inside S's 56:
    //   d = 38 → 0.6·clamp(38/14) = 0.6; one session → gap term 0; 0.15·(1 − 1/10) = 0.135
    expect(k.u_old!.A_t).toBeNull()
    expect(k.u_old!.S).toBeCloseTo(0.735, 12)
    await run(db, { users: ['u_one'] }, { METRICS_DEFAULT_TARGET: '0.3' })
    k = await kpiRows(db)
    expect(k.u_one!.P).toBeCloseTo(0.5, 12)
  })

  it('re-runs to the same rows, keeps keys it does not own, and --dry-run writes nothing', async () => {
    await db.pool.query(`DELETE FROM weekly_kpi`)
    await db.pool.query(
      `INSERT INTO weekly_kpi (user_id, week_start, kpis, created_at) VALUES ('u_acc', $1, '{"I_t": 9, "sigma": 0.7, "note": "kept"}', '2026-03-01T00:00:00Z')`,
      [WEEK],
    )
    await run(db)
    const first = await db.pool.query(`SELECT user_id, kpis, created_at FROM weekly_kpi ORDER BY user_id`)
    expect(first.rows).toHaveLength(5)
    const acc = first.rows.find((x) => x.user_id === 'u_acc')!
    expect(acc.kpis.sigma).toBe(0.7)
    expect(acc.kpis.note).toBe('kept')
    expect(acc.kpis.I_t).toBeCloseTo(0.02076, 5)
    expect(new Date(acc.created_at).toISOString()).toBe('2026-03-01T00:00:00.000Z')
    await run(db)
    const second = await db.pool.query(`SELECT user_id, kpis, created_at FROM weekly_kpi ORDER BY user_id`)
    expect(second.rows).toEqual(first.rows)

    await db.pool.query(`DELETE FROM weekly_kpi`)
    const dry = await run(db, {}, {}, { dryRun: true })
    expect(dry.table!.rows).toHaveLength(5)
    expect(dry.table!.head.slice(0, 8)).toEqual(['user_id', 'week_start', 'I_t', 'E_t', 'R_t', 'A_t', 'P', 'S'])
    expect((await db.pool.query(`SELECT count(*)::int AS n FROM weekly_kpi`)).rows[0].n).toBe(0)
  })

  it('an empty week writes nothing and says so', async () => {
    const r = await run(db, {}, {}, { asOf: '2025-01-01' })
    expect(r.rows.weekly_kpi).toBe(0)
    expect(r.warnings.join(' ')).toMatch(/no user has an attempt/)
  })

  describe('as a process', () => {
    beforeAll(async () => {
      await run(db) // the previous results a killed run must leave intact
      await db.close()
    })
    afterAll(async () => {
      db = await t.open()
    })

    it('a killed run leaves the previous rows intact; a concurrent run is refused; --json reports', async () => {
      let d = await t.open()
      const before = await kpiRows(d)
      // New data that would change u_one's KPIs if the killed run committed.
      await insertExams(d.pool, [{ session_id: 'one-3', user_id: 'u_one', at: '2026-03-13T08:00:00Z', questions: [{ question_id: 2, is_correct: false, time_spent_sec: 5 }] }])
      await d.close()

      const child = spawnCli(['run', 'compute-kpis', '--date', AS_OF], { ...t.env, SEEDOPS_TEST_HOLD_TX_MS: '60000' })
      await waitForOutput(child.stderr!, (s) => s.includes('holding transaction'), 180_000)
      const second = await runCli(['run', 'compute-kpis', '--date', AS_OF], { env: t.env })
      expect(second.code).toBe(1)
      expect(second.stderr).toMatch(kind === 'postgres' ? /another run of compute-kpis is in progress/ : /in use by another seedops process/)
      child.kill('SIGKILL')
      await once(child, 'close')

      d = await t.open()
      try {
        expect(await kpiRows(d)).toEqual(before)
      } finally {
        await d.close()
      }
      // A bad SEEDOPS_PARALLEL_CONNECTIONS is a usage error naming the variable, and writes nothing.
      const bad = await runCli(['run', 'compute-kpis', '--date', AS_OF], { env: { ...t.env, SEEDOPS_PARALLEL_CONNECTIONS: 'two' } })
      expect(bad.code).toBe(2)
      expect(bad.stderr).toContain('SEEDOPS_PARALLEL_CONNECTIONS="two" is not an integer')
      const ok = await runCli(['run', 'compute-kpis', '--date', AS_OF, '--json'], { env: t.env })
      expect(ok.code).toBe(0)
      const doc = JSON.parse(ok.stdout)
      expect(doc.result).toMatchObject({ stage: 'compute-kpis', status: 'succeeded', rows: { weekly_kpi: 5 }, summary: { weekStart: WEEK, asOf: AS_OF } })
      d = await t.open()
      try {
        const after = await kpiRows(d)
        expect(after.u_one!.A_t).not.toEqual(before.u_one!.A_t)
        const log = await d.pool.query(`SELECT status FROM seedops_stage_runs WHERE stage = 'compute-kpis' ORDER BY id`)
        expect(log.rows.map((x) => x.status)).toContain('abandoned')
        expect(log.rows.at(-1).status).toBe('succeeded')
      } finally {
        await d.close()
      }
    }, 240_000) // spawns the CLI: slow on a loaded machine
  })
})
