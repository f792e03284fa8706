import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Db, Queryable } from '../../src/lib/db/index.js'
import { addDays } from '../../src/lib/config/index.js'
import { knownMigrations } from '../../src/lib/db/migrate-files.js'
import { migrate } from '../../src/lib/db/migrate.js'
import { shapeDifferences } from '../../src/lib/db/shape.js'
import { Rng } from '../../src/lib/demo/random.js'
import calibrateIrt, { type CalibrateParams } from '../../src/lib/irt-stage/calibrate-stage.js'
import { driftReport, itemHistory, listVersions } from '../../src/lib/irt-stage/history.js'
import { rollbackItemParams } from '../../src/lib/irt-stage/rollback.js'
import { silentLogger } from '../../src/lib/output/index.js'
import { runStage } from '../../src/lib/stages/runner.js'
import { irtGroup } from '../../src/lib/verify/irt.js'
import { runChecks } from '../../src/lib/verify/run.js'
import { runCli } from '../support/cli.js'
import { DB_KINDS, freshDatabase, type TestDatabase } from '../support/db.js'

/**
 * Two calibrations on simulated 2PL data, each over its own week of new learners (θ ~ N(0, 1), so
 * both land on the same scale): between them three items changed: 5004 and 5017 in difficulty
 * (b ± 1), 5026 in discrimination (a × 2.2). Everything else is drawn from the same parameters,
 * with 2500 learners answering all 30 items per week, so estimation noise (SE(b) ≈ 0.05) stays far
 * below the thresholds.
 */
const D1 = '2026-03-10'
const D2 = '2026-03-20'
const V1 = `${D1}.2PL`
const V2 = `${D2}.2PL`
const N_ITEMS = 30
const PERSONS = 2500
const SHIFTED = ['5004', '5017', '5026']
const params: CalibrateParams = { lookbackDays: 7, model: '2PL', anchorMode: 'none', writeBack: false, allowNonConverged: false, minResponses: 5, engine: 'native', timeoutSeconds: 300, retries: 3 }

function itemTruth(week: 1 | 2) {
  return Array.from({ length: N_ITEMS }, (_, j) => {
    const id = 5001 + j
    let a = 0.8 + (0.8 * (j % 5)) / 4
    let b = -1.5 + (3 * j) / (N_ITEMS - 1)
    if (week === 2 && id === 5004) b += 1
    if (week === 2 && id === 5017) b -= 1
    if (week === 2 && id === 5026) a *= 2.2
    return { id, a, b }
  })
}

async function simulateWeek(q: Queryable, week: 1 | 2, end: string, seed: number) {
  const rng = new Rng(seed)
  const items = itemTruth(week)
  const cols = { s: [] as string[], u: [] as string[], r: [] as string[], at: [] as string[] }
  for (let i = 0; i < PERSONS; i++) {
    const theta = rng.normal(0, 1)
    const day = addDays(end, -(i % 7))
    const questions = items.map((it) => ({ question_id: it.id, is_correct: rng.chance(1 / (1 + Math.exp(-it.a * (theta - it.b)))) }))
    cols.s.push(`w${week}-${i}`)
    cols.u.push(`w${week}-learner-${i}`)
    cols.r.push(JSON.stringify({ questions }))
    cols.at.push(`${day}T${String(8 + (i % 10)).padStart(2, '0')}:00:00Z`)
  }
  await q.query(
    `INSERT INTO exam_results (session_id, user_id, exam_id, status, result_json, created_at, updated_at)
     SELECT s, u, 1, 'completed', r::jsonb, at, at FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[]) AS t(s, u, r, at)`,
    [cols.s, cols.u, cols.r, cols.at],
  )
}

const calibrate = (db: Db, asOf: string) => runStage(db, calibrateIrt, params, { asOf, dryRun: false, logger: silentLogger })

/** mirt_item_params exactly as the platform reads it. */
const itemParams = async (q: Queryable) =>
  (await q.query(`SELECT item_id::text, model, params, version, fitted_at, se, fit FROM mirt_item_params ORDER BY item_id`)).rows

const verify = (q: Queryable, options: Record<string, number> = {}) => runChecks([irtGroup], { q: q as never, asOf: D2, now: new Date(), options })

describe.each(DB_KINDS)('calibration history, drift and rollback on %s', (kind) => {
  let t: TestDatabase
  let db: Db
  let afterV1: Record<string, unknown>[]
  let afterV2: Record<string, unknown>[]
  beforeAll(async () => {
    t = await freshDatabase(kind)
    db = await t.open()
    await simulateWeek(db.pool, 1, D1, 101)
    await simulateWeek(db.pool, 2, D2, 202)
  }, 120_000)
  afterAll(async () => db?.close())

  it('drift: two calibrations on data where three items were shifted → exactly those three listed; rollback restores the earlier parameters and verify irt passes', { timeout: 300_000 }, async () => {
    const r1 = await calibrate(db, D1)
    expect(r1.summary!.fit.converged).toBe(true)
    expect(r1.rows.seedops_item_params_history).toBe(N_ITEMS)
    afterV1 = await itemParams(db.pool)
    expect(afterV1).toHaveLength(N_ITEMS)
    // One calibration: nothing to compare with, and the check says so without failing.
    const only = (await verify(db.pool)).checks.find((c) => c.id === 'irt.drift')!
    expect(only).toMatchObject({ status: 'ok', numbers: { current_version: V1, previous_version: null } })
    expect(only.message).toContain('no previous version')

    expect((await calibrate(db, D2)).summary!.fit.converged).toBe(true)
    afterV2 = await itemParams(db.pool)
    const d = await driftReport(db.pool)
    expect(d).toMatchObject({ current: V2, previous: V1, previousBySeedops: true, compared: N_ITEMS, failAbove: 3 })
    expect(d.flagged.map((x) => x.item_id)).toEqual(SHIFTED)
    const by = new Map(d.flagged.map((x) => [x.item_id, x]))
    expect(by.get('5004')!.delta_b).toBeGreaterThan(0.7)
    expect(by.get('5004')!.delta_b).toBeLessThan(1.3)
    expect(by.get('5017')!.delta_b).toBeLessThan(-0.7)
    expect(by.get('5017')!.delta_b).toBeGreaterThan(-1.3)
    expect(by.get('5026')!.rel_delta_a).toBeGreaterThan(0.8)
    expect(Math.abs(by.get('5026')!.delta_b)).toBeLessThan(0.3)
    for (const x of d.flagged) {
      expect(x.previous_version).toBe(V1)
      for (const se of [x.se_a_prev, x.se_a_cur, x.se_b_prev, x.se_b_cur]) expect(se).toBeGreaterThan(0)
    }

    // verify irt: 3 of 30 is not above the default 10% → warn, listing both values and SEs.
    const v = await verify(db.pool)
    const drift = v.checks.find((c) => c.id === 'irt.drift')!
    expect(drift.status).toBe('warn')
    expect(drift.numbers).toMatchObject({ current_version: V2, previous_version: V1, compared: 30, flagged: 3, fail_above: 3 })
    expect(drift.rows!.map((e) => e.item_id)).toEqual(SHIFTED)
    expect(Object.keys(drift.rows![0]!)).toEqual(expect.arrayContaining(['a_prev', 'se_a_prev', 'a_cur', 'se_a_cur', 'b_prev', 'se_b_prev', 'b_cur', 'se_b_cur', 'z_b', 'z_a']))
    expect(v.summary.fail).toBe(0)
    // Above a count it fails and names the way back; looser thresholds pass.
    const strict = (await verify(db.pool, { driftFailCount: 2 })).checks.find((c) => c.id === 'irt.drift')!
    expect(strict.status).toBe('fail')
    expect(strict.message).toContain(`seedops irt rollback --to ${V1}`)
    expect((await verify(db.pool, { driftB: 1.5, driftA: 1.5 })).checks.find((c) => c.id === 'irt.drift')!.status).toBe('ok')

    // History: both versions, newest first, the current one marked, with their fit.
    const versions = await listVersions(db.pool)
    expect(versions.map((x) => [x.version, x.current, x.items, x.inUse])).toEqual([[V2, true, 30, 30], [V1, false, 30, 0]])
    for (const x of versions) {
      expect(x).toMatchObject({ model: '2PL', converged: true, nItems: 30, nPersons: PERSONS, source: 'calibrate-irt', runId: `calibrate-irt:${x.version.slice(0, 10)}:2PL` })
      expect(x.logLik).toBeLessThan(0)
      expect(x.fitFittedAt).toBe(x.fittedAt)
    }

    // Rollback: a dry run changes nothing; the real one restores V1's rows exactly, run-logged.
    const dry = await rollbackItemParams(db, V1, { dryRun: true, logger: silentLogger })
    expect(dry.summary).toMatchObject({ to: V1, from: V2, changed: 30, removed: 0 })
    expect(await itemParams(db.pool)).toEqual(afterV2)
    const rb = await rollbackItemParams(db, V1, { dryRun: false, logger: silentLogger })
    expect(rb).toMatchObject({ stage: 'irt-rollback', status: 'succeeded', summary: { to: V1, from: V2, changed: 30, removed: 0, items: 30, snapshot: 0 } })
    expect(await itemParams(db.pool)).toEqual(afterV1)
    const log = (await db.pool.query(`SELECT stage, status, params, rows FROM seedops_stage_runs WHERE id = $1`, [rb.runId])).rows[0]
    expect(log).toMatchObject({ stage: 'irt-rollback', status: 'succeeded', params: { to: V1 }, rows: { mirt_item_params: 30, removed: 0 } })
    // verify irt passes: V1 is current and has no predecessor.
    const after = await verify(db.pool)
    expect(after.checks.filter((c) => c.status !== 'ok')).toEqual([])
    expect(after.checks.find((c) => c.id === 'irt.drift')!.numbers).toMatchObject({ current_version: V1, previous_version: null })
    // converged names the newest fit, and the parameters in use as V1's (not the newest calibration's).
    expect(after.checks.find((c) => c.id === 'irt.converged')!.numbers).toMatchObject({ run_id: `calibrate-irt:${D2}:2PL`, parameters_from: `calibrate-irt:${D1}:2PL` })
    expect((await listVersions(db.pool)).map((x) => [x.version, x.current])).toEqual([[V2, false], [V1, true]])

    // Reversible: back to the version that was current before.
    const back = await rollbackItemParams(db, V2, { dryRun: false, logger: silentLogger })
    expect(back.summary).toMatchObject({ to: V2, from: V1, changed: 30 })
    expect(await itemParams(db.pool)).toEqual(afterV2)
    expect((await driftReport(db.pool)).flagged.map((x) => x.item_id)).toEqual(SHIFTED)

    // An unknown version is refused before anything runs, with the known ones.
    const runs = (await db.pool.query(`SELECT count(*)::int AS n FROM seedops_stage_runs`)).rows[0].n
    await expect(rollbackItemParams(db, '2020-01-01.2PL', { dryRun: false, logger: silentLogger })).rejects.toMatchObject({
      code: 'IRT_UNKNOWN_VERSION',
      exitCode: 2,
      data: { known: [V2, V1] },
      message: expect.stringContaining(`known versions (newest first): ${V2}, ${V1}`),
    })
    expect((await db.pool.query(`SELECT count(*)::int AS n FROM seedops_stage_runs`)).rows[0].n).toBe(runs)

    // Re-running a version replaces its history rows (no duplicates, the new fitted_at).
    await calibrate(db, D2)
    const h = (await db.pool.query(`SELECT version, count(*)::int AS n, count(DISTINCT fitted_at)::int AS stamps FROM seedops_item_params_history GROUP BY version ORDER BY version`)).rows
    expect(h).toEqual([{ version: V1, n: 30, stamps: 1 }, { version: V2, n: 30, stamps: 1 }])
    const cur = (await db.pool.query(`SELECT DISTINCT fitted_at FROM mirt_item_params`)).rows
    const hist = (await db.pool.query(`SELECT DISTINCT fitted_at FROM seedops_item_params_history WHERE version = $1`, [V2])).rows
    expect(hist).toEqual(cur)
    afterV2 = await itemParams(db.pool)
  })

  it('irt history (--item), verify irt drift flags and irt rollback through the CLI', { timeout: 300_000 }, async () => {
    await db.close() // embedded: one process per data folder
    try {
      const list = await runCli(['irt', 'history', '--json'], { env: t.env })
      expect(list.code, list.stderr).toBe(0)
      expect(JSON.parse(list.stdout).result.versions.map((x: { version: string; current: boolean }) => [x.version, x.current])).toEqual([[V2, true], [V1, false]])
      const text = await runCli(['irt', 'history'], { env: t.env })
      expect(text.stdout).toMatch(new RegExp(`\\*\\s+${V2.replace('.', '\\.')}\\s+2PL`))

      const item = await runCli(['irt', 'history', '--item', '5004', '--json'], { env: t.env })
      expect(item.code, item.stderr).toBe(0)
      const rows = JSON.parse(item.stdout).result as { item: string; versions: { version: string; current: boolean; b: number; seB: number; a: number }[] }
      expect(rows.item).toBe('5004')
      expect(rows.versions.map((x) => [x.version, x.current])).toEqual([[V2, true], [V1, false]])
      expect(rows.versions[0]!.b - rows.versions[1]!.b).toBeGreaterThan(0.7)
      expect(rows.versions.every((x) => x.seB > 0 && x.a > 0)).toBe(true)
      const itemText = await runCli(['irt', 'history', '--item', '5004'], { env: t.env })
      expect(itemText.stdout).toContain('SE B')
      expect(itemText.stdout).toContain(rows.versions[1]!.b.toFixed(3))
      const bad = await runCli(['irt', 'history', '--item', 'abc'], { env: t.env })
      expect(bad.code).toBe(2)

      const warn = await runCli(['verify', 'irt'], { env: t.env })
      expect(warn.code, warn.stdout + warn.stderr).toBe(0)
      expect(warn.stdout).toMatch(/^WARN\s+irt\.drift/m)
      expect(warn.stdout).toContain('irt.drift: flagged rows (first 3)')
      const fail = await runCli(['verify', 'irt', '--drift-fail-count', '2', '--json'], { env: t.env })
      expect(fail.code).toBe(1)
      expect(JSON.parse(fail.stdout).result.checks.find((c: { id: string }) => c.id === 'irt.drift').status).toBe('fail')
      const loose = await runCli(['verify', 'irt', '--drift-b', '1.5', '--drift-a', '1.5', '--json'], { env: t.env })
      expect(JSON.parse(loose.stdout).result.checks.find((c: { id: string }) => c.id === 'irt.drift').status).toBe('ok')
      expect((await runCli(['verify', 'irt', '--drift-b', 'x'], { env: t.env })).code).toBe(2)
      expect((await runCli(['verify', 'irt', '--drift-z', '-1'], { env: t.env })).code).toBe(2)

      const unknown = await runCli(['irt', 'rollback', '--to', 'nope'], { env: t.env })
      expect(unknown.code).toBe(2)
      expect(unknown.stderr).toContain(`known versions (newest first): ${V2}, ${V1}`)
      const rb = await runCli(['irt', 'rollback', '--to', V1], { env: t.env })
      expect(rb.code, rb.stderr).toBe(0)
      expect(rb.stdout).toContain(`made ${V1} current (was ${V2}): 30 item(s) changed`)
      expect(rb.stdout).toContain(`undo: seedops irt rollback --to ${V2}`)
      const ok = await runCli(['verify', 'irt', '--date', D2, '--json'], { env: t.env })
      expect(ok.code, ok.stdout).toBe(0)
      expect(JSON.parse(ok.stdout).result).toMatchObject({ summary: { fail: 0, warn: 0 } })
      const undo = await runCli(['irt', 'rollback', '--to', V2, '--json'], { env: t.env })
      expect(JSON.parse(undo.stdout).result.summary).toMatchObject({ to: V2, from: V1 })
    } finally {
      db = await t.open()
    }
    expect(await itemParams(db.pool)).toEqual(afterV2)
  })

  it.runIf(kind === 'postgres')('a rollback never interleaves with a calibration: it takes calibrate-irt\'s lock', async () => {
    const url = t.env.DATABASE_URL!
    const holder = new pg.Client({ connectionString: url })
    await holder.connect()
    try {
      // What the runner holds while calibrate-irt runs (runner.ts lockKey).
      await holder.query(`SELECT pg_advisory_lock(hashtext('seedops:stage:calibrate-irt'))`)
      await expect(rollbackItemParams(db, V1, { dryRun: false, logger: silentLogger })).rejects.toMatchObject({ code: 'STAGE_LOCKED' })
      expect(await itemParams(db.pool)).toEqual(afterV2)
      const log = (await db.pool.query(`SELECT status, error FROM seedops_stage_runs WHERE stage = 'irt-rollback' ORDER BY id DESC LIMIT 1`)).rows[0]
      expect(log).toMatchObject({ status: 'failed', error: expect.stringContaining('calibrate-irt run is in progress') })
      await holder.query(`SELECT pg_advisory_unlock(hashtext('seedops:stage:calibrate-irt'))`)
      expect((await rollbackItemParams(db, V1, { dryRun: true, logger: silentLogger })).status).toBe('succeeded')
    } finally {
      await holder.end()
    }
  })
})

describe.each(DB_KINDS)('drift against the standard errors on %s', (kind) => {
  it('a move beyond the threshold but within the noise of its SEs is not listed (--drift-z 0: thresholds alone); items without SEs are judged by the thresholds', async () => {
    const db = await (await freshDatabase(kind)).open()
    try {
      const row = (version: string, item: number, a: number, b: number, se: { a: number; b: number } | null, at: string) =>
        db.pool.query(
          `INSERT INTO seedops_item_params_history (version, item_id, model, params, se, fitted_at, run_id, source) VALUES ($1, $2, '2PL', $3::jsonb, $4::jsonb, $5, $6, 'calibrate-irt')`,
          [version, item, JSON.stringify({ a, b, c: 0 }), se && JSON.stringify(se), at, `calibrate-irt:${version.slice(0, 10)}:2PL`],
        )
      const [P, C] = ['2026-04-01.2PL', '2026-04-08.2PL']
      // 1: b +0.5 with SEs 0.4 (z ≈ 0.9): noise. 2: b +0.5 with SEs 0.1 (z ≈ 3.5): drift. 3: a ×1.5 with SEs 0.05 (z ≈ 7). 4: b +0.5, no SEs (an anchor): threshold alone.
      for (const [item, a0, b0, a1, b1, se] of [[1, 1, 0, 1, 0.5, 0.4], [2, 1, 0, 1, 0.5, 0.1], [3, 1, 0, 1.5, 0, 0.05], [4, 1, 0, 1, 0.5, null]] as const) {
        await row(P, item, a0, b0, se === null ? null : { a: se, b: se }, '2026-04-01T03:00:00Z')
        await row(C, item, a1, b1, se === null ? null : { a: se, b: se }, '2026-04-08T03:00:00Z')
        await db.pool.query(`INSERT INTO mirt_item_params (item_id, model, params, version, fitted_at) VALUES ($1, '2PL', $2::jsonb, $3, '2026-04-08T03:00:00Z')`, [item, JSON.stringify({ a: a1, b: b1, c: 0 }), C])
      }
      const d = await driftReport(db.pool)
      expect(d).toMatchObject({ current: C, previous: P, compared: 4 })
      expect(d.flagged.map((x) => [x.item_id, x.z_b === null ? null : Math.round(x.z_b * 10) / 10])).toEqual([['2', 3.5], ['3', 0], ['4', null]])
      expect(d.flagged.find((x) => x.item_id === '3')!.z_a).toBeCloseTo(0.5 / Math.sqrt(0.005), 6)
      expect((await driftReport(db.pool, { z: 0 })).flagged.map((x) => x.item_id)).toEqual(['1', '2', '3', '4'])
      const check = (await runChecks([irtGroup], { q: db.pool, asOf: '2026-04-08', now: new Date(), options: { driftZ: 0, driftFailCount: 3 } })).checks.find((c) => c.id === 'irt.drift')!
      expect(check).toMatchObject({ status: 'fail', numbers: { flagged: 4, fail_above: 3, z: 0 } })
      // Another writer (the predecessor's service, still running) wrote mirt_item_params last: nothing seedops recorded to compare.
      await db.pool.query(`INSERT INTO mirt_item_params (item_id, model, params, version, fitted_at) VALUES (9, '2PL', '{"a":1,"b":0}', 'v2026-04-09', '2026-04-09T03:00:00Z')`)
      expect(await driftReport(db.pool)).toMatchObject({ current: 'v2026-04-09', currentInHistory: false, previous: null, flagged: [] })
      const other = (await runChecks([irtGroup], { q: db.pool, asOf: '2026-04-09', now: new Date(), options: {} })).checks.find((c) => c.id === 'irt.drift')!
      expect(other).toMatchObject({ status: 'ok', message: expect.stringContaining('v2026-04-09, which no calibration by seedops recorded') })
    } finally {
      await db.close()
    }
  })
})

describe.each(DB_KINDS)('migration 0004 backfills the item-parameter history on %s', (kind) => {
  it('the parameters in use become a history entry of their own version; a seedops version is linked to its fit', async () => {
    const db = await (await freshDatabase(kind)).open()
    try {
      // A database from before 0004 with parameters in use: a seedops calibration and the predecessor's unversioned rows.
      await db.pool.query(`DROP TABLE seedops_item_params_history`)
      await db.pool.query(`DELETE FROM seedops_migrations WHERE name >= '0004_item_params_history'`)
      await db.pool.query(
        `INSERT INTO mirt_item_params (item_id, model, params, version, fitted_at, se) VALUES
           (1, '2PL', '{"a":1.1,"b":-0.4,"c":0}', '2026-01-05.2PL', '2026-01-05 03:00+00', '{"a":0.1,"b":0.08}'),
           (2, '2PL', '{"a":0.9,"b":0.7,"c":0}', '2026-01-05.2PL', '2026-01-05 03:00+00', '{"a":0.09,"b":0.1}'),
           (3, '2PL', '{"a":1.3,"b":1.2}', NULL, '2025-12-01 03:00+00', NULL)`,
      )
      await db.pool.query(`INSERT INTO mirt_fit_meta (run_id, model_spec, metrics, fitted_at) VALUES ('calibrate-irt:2026-01-05:2PL', '{"writer":"seedops","n_items":2,"n_persons":40}', '{"logLik":-123.5,"converged":true}', '2026-01-05 03:00+00')`)
      expect((await migrate(db)).ran).toEqual(knownMigrations().filter((m) => m >= '0004_item_params_history'))
      expect(await shapeDifferences(db.pool)).toEqual([])
      const rows = (await db.pool.query(`SELECT version, item_id::int, run_id, source FROM seedops_item_params_history ORDER BY item_id`)).rows
      expect(rows).toEqual([
        { version: '2026-01-05.2PL', item_id: 1, run_id: 'calibrate-irt:2026-01-05:2PL', source: 'backfill' },
        { version: '2026-01-05.2PL', item_id: 2, run_id: 'calibrate-irt:2026-01-05:2PL', source: 'backfill' },
        { version: 'legacy', item_id: 3, run_id: null, source: 'backfill' },
      ])
      const versions = await listVersions(db.pool)
      expect(versions.map((v) => [v.version, v.current, v.items, v.logLik, v.nPersons])).toEqual([
        ['2026-01-05.2PL', true, 2, -123.5, 40],
        ['legacy', false, 1, null, null],
      ])
      expect((await itemHistory(db.pool, '1'))[0]).toMatchObject({ version: '2026-01-05.2PL', current: true, a: 1.1, b: -0.4, seA: 0.1, seB: 0.08 })
      // The first drift check has a previous version: 2026-01-05.2PL's items against 'legacy' (no common item here).
      expect(await driftReport(db.pool)).toMatchObject({ current: '2026-01-05.2PL', previous: 'legacy', previousBySeedops: false, compared: 0 })
      // Rolling back to the legacy state keeps item 3 and takes out items 1 and 2 (kept in the history).
      const rb = await rollbackItemParams(db, 'legacy', { dryRun: false, logger: silentLogger })
      expect(rb.summary).toMatchObject({ from: '2026-01-05.2PL', to: 'legacy', removed: 2, items: 1 })
      expect((await db.pool.query(`SELECT item_id::int, version FROM mirt_item_params`)).rows).toEqual([{ item_id: 3, version: 'legacy' }])
      expect((await rollbackItemParams(db, '2026-01-05.2PL', { dryRun: false, logger: silentLogger })).summary).toMatchObject({ removed: 0, items: 3 })
      expect((await db.pool.query(`SELECT item_id::int, version FROM mirt_item_params ORDER BY 1`)).rows).toEqual([
        { item_id: 1, version: '2026-01-05.2PL' },
        { item_id: 2, version: '2026-01-05.2PL' },
        { item_id: 3, version: 'legacy' },
      ])
    } finally {
      await db.close()
    }
  })
})
