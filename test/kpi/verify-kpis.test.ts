import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Db } from '../../src/lib/db/index.js'
import computeKpisStage from '../../src/lib/kpi/stage.js'
import { silentLogger } from '../../src/lib/output/index.js'
import { runStage } from '../../src/lib/stages/runner.js'
import { runChecks } from '../../src/lib/verify/run.js'
import { kpisGroup, maxNullOptions } from '../../src/lib/verify/kpis.js'
import { runCli } from '../support/cli.js'
import { DB_KINDS, freshDatabase, type TestDatabase } from '../support/db.js'
import { AS_OF, loadKpiFixture, WEEK } from './fixture.js'
import { resolveStageParams } from '../../src/lib/stages/options.js'

const verify = (db: Db, options: Record<string, number> = {}, asOf = AS_OF) =>
  runChecks([kpisGroup], { q: db.pool, asOf, now: new Date(), options: { maxAgeHours: 26, lookbackDays: 30, ...options } })
const byId = (r: Awaited<ReturnType<typeof verify>>) => Object.fromEntries(r.checks.map((c) => [c.id, c]))

describe.each(DB_KINDS)('verify kpis on %s', (kind) => {
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

  it('fails before compute-kpis ran: freshness and coverage name the fix', async () => {
    const c = byId(await verify(db))
    expect(c['kpis.freshness']).toMatchObject({ status: 'fail', message: expect.stringMatching(/never succeeded/) })
    expect(c['kpis.coverage']).toMatchObject({ status: 'fail', numbers: { active_users: 5, covered: 0, missing: 5 } })
    expect(c['kpis.coverage']!.rows!.map((e) => e.user_id)).toEqual(['u_acc', 'u_lown', 'u_one', 'u_theta', 'u_zse'])
  })

  it('passes after a run, with the numbers; null rates against thresholds', async () => {
    await runStage(db, computeKpisStage, resolveStageParams(computeKpisStage, {}, {}), { asOf: AS_OF, dryRun: false, logger: silentLogger })
    const r = await verify(db)
    const c = byId(r)
    expect(c['kpis.freshness']!.status).toBe('ok')
    expect(c['kpis.coverage']).toMatchObject({ status: 'ok', numbers: { active_users: 5, covered: 5, coverage_pct: 100 } })
    expect(c['kpis.ranges']).toMatchObject({ status: 'ok', numbers: { rows_checked: 5, out_of_range: 0 } })
    // Nulls among the 5 (see kpis.test.ts): I_t u_one, u_zse → 0.4; E_t u_theta, u_one, u_lown, u_zse → 0.8 > 0.7;
    // R_t all but u_acc → 0.8; A_t 0; P u_acc, u_zse → 0.4; S 0
    const nr = c['kpis.null-rates']!
    expect(nr.numbers).toMatchObject({ rows: 5, I_t_null_rate: 0.4, E_t_null_rate: 0.8, R_t_null_rate: 0.8, A_t_null_rate: 0, P_null_rate: 0.4, S_null_rate: 0 })
    expect(nr.status).toBe('fail')
    expect(nr.message).toMatch(/E_t 80.0% > 70%/)
    expect(byId(await verify(db, maxNullOptions(['E_t=0.8'])))['kpis.null-rates']!.status).toBe('ok')
    expect(() => maxNullOptions(['X=0.1'])).toThrow(/is not KPI=rate/)
    // A mid-week date: active users are those seen by then (u_acc, u_theta, u_lown), all covered
    expect(byId(await verify(db, {}, '2026-03-11'))['kpis.coverage']!.numbers).toMatchObject({ active_users: 3, covered: 3 })
  })

  it('names out-of-range values, non-numbers and missing rows', async () => {
    await db.pool.query(`UPDATE weekly_kpi SET kpis = kpis || '{"I_t": 1.5}' WHERE user_id = 'u_acc' AND week_start = $1`, [WEEK])
    await db.pool.query(`UPDATE weekly_kpi SET kpis = kpis || '{"E_t": "NaN", "P_ci": [0.9, 0.1]}' WHERE user_id = 'u_one' AND week_start = $1`, [WEEK])
    await db.pool.query(`DELETE FROM weekly_kpi WHERE user_id = 'u_zse'`)
    const c = byId(await verify(db))
    expect(c['kpis.ranges']).toMatchObject({ status: 'fail', numbers: { rows_checked: 4, out_of_range: 2 } })
    expect(c['kpis.ranges']!.rows!.map((e) => e.user_id)).toEqual(['u_acc', 'u_one'])
    expect(c['kpis.coverage']).toMatchObject({ status: 'fail', numbers: { missing: 1, coverage_pct: 80 } })
    expect(c['kpis.coverage']!.rows).toEqual([{ user_id: 'u_zse' }])
  })

  it('as a process: exit 1 on failure, --json and a JUnit file', async () => {
    await db.close()
    try {
      const junit = join(process.env.TMPDIR ?? '/tmp', `verify-kpis-${kind}-${process.pid}.xml`)
      const out = await runCli(['verify', 'kpis', '--date', AS_OF, '--json', '--junit', junit, '--max-null', 'E_t=1'], { env: t.env })
      expect(out.code).toBe(1)
      const doc = JSON.parse(out.stdout)
      expect(doc.result.summary.fail).toBe(2)
      expect(doc.result.checks.map((x: { id: string }) => x.id)).toEqual(expect.arrayContaining(['kpis.freshness', 'kpis.coverage', 'kpis.ranges', 'kpis.null-rates']))
      expect(existsSync(junit) && readFileSync(junit, 'utf8')).toMatch(/<testcase classname="seedops.verify.kpis" name="kpis.ranges"><failure/)
      const usage = await runCli(['verify', 'kpis', '--max-null', 'Q=2'], { env: t.env })
      expect(usage.code).toBe(2)
    } finally {
      db = await t.open()
    }
  }, 240_000) // spawns the CLI: slow on a loaded machine
})
