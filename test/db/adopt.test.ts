import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { migrate, schemaStatus } from '../../src/lib/db/migrate.js'
import { shapeDifferences } from '../../src/lib/db/shape.js'
import { runCli } from '../support/cli.js'
import { DB_KINDS, freshDatabase } from '../support/db.js'
import { DERIVED_TABLES, PLATFORM_TABLES, catalogFingerprint, columnsOf, loadPredecessor, tableSum, type TableSum } from '../support/predecessor-db.js'
import type { Queryable } from '../../src/lib/db/index.js'

/** 96 learners × 6 sessions × 6 answers, plus the one readable answer of the malformed S-bad-1. */
const ATTEMPTS = 96 * 6 * 6 + 1

async function sums(q: Queryable, tables: string[]): Promise<Record<string, TableSum>> {
  const out: Record<string, TableSum> = {}
  for (const t of tables) out[t] = await tableSum(q, t)
  return out
}

describe.each(DB_KINDS)('adopting the predecessor database on %s', (kind) => {
  it('dry run changes nothing; migrate keeps every row, replaces the attempt view and recreates its dependent; twice is a no-op; the stages run and verify all passes', { timeout: 300_000 }, async () => {
    const t = await freshDatabase(kind, { migrated: false })
    const db = await t.open()
    const counts: Record<string, { before: number; after: number }> = {}
    try {
      await loadPredecessor(db.pool)
      // The predecessor's view: one malformed row breaks every reader.
      await expect(db.pool.query('SELECT * FROM attempt')).rejects.toThrow(/bigint/)
      const before = await sums(db.pool, [...PLATFORM_TABLES, ...DERIVED_TABLES])
      const beforeCols = Object.fromEntries(await Promise.all(DERIVED_TABLES.map(async (x) => [x, await columnsOf(db.pool, x)] as const)))
      const catalog = await catalogFingerprint(db.pool)

      const drift = (await schemaStatus(db)).drift
      expect(drift).toContainEqual(expect.objectContaining({ object: 'attempt', kind: 'view', problem: expect.stringContaining('id bigint') }))
      expect(drift).toContainEqual({ object: 'mirt_item_params', kind: 'table', problem: 'column item_id is text, expected bigint' })
      expect(drift).toContainEqual({ object: 'mirt_ability', kind: 'table', problem: 'no primary key on (user_id, version)' })
      expect(drift).toContainEqual({ object: 'features_topic_daily', kind: 'table', problem: 'column theta_estimate is numeric(6,3), expected double precision' })

      const dry = await migrate(db, undefined, { dryRun: true })
      const statements = dry.plan.map((s) => s.statement)
      expect(statements).toContain('DROP VIEW "public"."attempt_daily_summary"')
      expect(statements).toContain('DROP VIEW public."attempt"')
      expect(statements).toContain('ALTER TABLE public."mirt_item_params" ALTER COLUMN "item_id" TYPE bigint USING btrim("item_id")::bigint')
      expect(statements.some((s) => /^CREATE TABLE "seedops_archive"\."mirt_ability_\d{14}" AS TABLE public\."mirt_ability"$/.test(s))).toBe(true)
      expect(statements.some((s) => s.startsWith('CREATE VIEW "public"."attempt_daily_summary" AS'))).toBe(true)
      expect(dry.rowChanges).toEqual([expect.objectContaining({ table: 'mirt_ability', duplicateGroups: 15, rowsMerged: 27, keyNullsFilled: 36, rowsMovedOut: 0 })])
      // …and nothing changed: catalog and every row.
      expect(await catalogFingerprint(db.pool)).toBe(catalog)
      expect(await sums(db.pool, [...PLATFORM_TABLES, ...DERIVED_TABLES])).toEqual(before)

      const res = await migrate(db)
      expect(res.ran).toContain('0001_base')
      expect(res.current).toBe(true)
      expect(res.rowChanges).toHaveLength(1)
      const archive = res.rowChanges[0]!.archive

      // Platform tables: not one value changed.
      for (const x of PLATFORM_TABLES) expect(await tableSum(db.pool, x), x).toEqual(before[x])
      // Derived tables: every value of every row, compared on the columns they had (types changed).
      for (const x of DERIVED_TABLES.filter((d) => d !== 'mirt_ability')) expect(await tableSum(db.pool, x, beforeCols[x]), x).toEqual(before[x])
      // mirt_ability: the archive is the table as it was; the live rows are those rows, merged to one per key.
      expect(await tableSum(db.pool, archive, beforeCols.mirt_ability)).toEqual(before.mirt_ability)
      const archived = new Set(
        (await db.pool.query<{ r: string }>(`SELECT concat_ws('|', user_id, theta::text, COALESCE(version, 'legacy'), fitted_at::text) AS r FROM ${archive}`)).rows.map((r) => r.r),
      )
      const live = (await db.pool.query<{ r: string }>(`SELECT concat_ws('|', user_id, theta::text, version, fitted_at::text) AS r FROM mirt_ability`)).rows.map((r) => r.r)
      expect(live).toHaveLength(18)
      for (const r of live) expect(archived.has(r), r).toBe(true)
      // The newest of each key was kept.
      const notNewest = await db.pool.query(
        `SELECT m.user_id FROM mirt_ability m JOIN ${archive} a ON a.user_id = m.user_id AND COALESCE(a.version, 'legacy') = m.version AND a.fitted_at > m.fitted_at`,
      )
      expect(notNewest.rowCount).toBe(0)

      for (const x of [...PLATFORM_TABLES, ...DERIVED_TABLES]) {
        counts[x] = { before: before[x]!.rows, after: (await db.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${x}`)).rows[0]!.n }
      }
      counts[archive] = { before: 0, after: (await db.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${archive}`)).rows[0]!.n }

      // The new read model reads past the malformed rows, which are counted instead.
      expect((await db.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM attempt')).rows[0]!.n).toBe(ATTEMPTS)
      expect((await db.pool.query('SELECT session_id, reason FROM seedops_malformed_exam_results ORDER BY session_id')).rows).toEqual([
        { session_id: 'S-bad-1', reason: 'questions with a missing or non-numeric question_id' },
        { session_id: 'S-bad-2', reason: 'result_json.questions is not an array' },
      ])
      // The dependent view is back, on the new columns.
      const dep = await db.pool.query<{ n: number; days: number }>('SELECT sum(attempts)::int AS n, count(*)::int AS days FROM attempt_daily_summary')
      expect(dep.rows[0]!.n).toBe(ATTEMPTS)
      expect(await shapeDifferences(db.pool)).toEqual([])
      const status = await schemaStatus(db)
      expect(status.attempts.source).toBe('attempt')

      // Twice: nothing planned, nothing changed.
      const fp = await catalogFingerprint(db.pool)
      const second = await migrate(db)
      expect(second.ran).toEqual([])
      expect(second.plan).toEqual([])
      expect(await catalogFingerprint(db.pool)).toBe(fp)
    } finally {
      await db.close()
    }
    console.log(`[${kind}] rows before → after migrate:\n` + Object.entries(counts).map(([k, v]) => `  ${k}: ${v.before} → ${v.after}`).join('\n'))

    // The stages run on the adopted tables, and verify passes.
    const env = { ...t.env, SEEDOPS_HOME: t.env.SEEDOPS_HOME ?? mkdtempSync(join(tmpdir(), 'seedops-adopt-')) }
    for (const stage of ['calibrate-irt', 'aggregate-features', 'compute-kpis', 'detect-inactivity', 'generate-report']) {
      const r = await runCli(['run', stage, '--date', '2026-02-01', '--json'], { env, timeoutMs: 200_000 })
      expect(r.code, `${stage}: ${r.stdout}${r.stderr}`).toBe(0)
    }
    // The predecessor's R service is still writing its own mirt_fit_meta rows (its CronJob not yet suspended).
    const db2 = await t.open()
    try {
      await db2.pool.query(`INSERT INTO mirt_fit_meta (run_id, model_spec, metrics) VALUES ('mirt-tonight', '{"model":"2PL","n_persons":90,"n_items":8}', '{"linking_constants":{"A":1,"B":0}}')`)
    } finally {
      await db2.close()
    }
    const v = await runCli(['verify', 'all', '--json'], { env })
    const report = JSON.parse(v.stdout).result as { failed: number; checks: { id: string; group: string; status: string; message: string; numbers: Record<string, unknown> }[] }
    // The first calibration is compared with the predecessor's parameters (0004 backfilled them into
    // the history): the drift check lists what moved, as a warning, never a failure (another writer's scale).
    expect(report.checks.filter((c) => c.status !== 'ok').map((c) => [c.id, c.status, c.numbers.previous_version]), v.stdout).toEqual([['irt.drift', 'warn', 'v2025-12-28']])
    expect(v.code).toBe(0)
    const converged = report.checks.find((c) => c.id === 'irt.converged')!
    expect(converged.numbers).toMatchObject({ run_id: 'calibrate-irt:2026-02-01:2PL', other_writer_rows: 3 })
    // Over a window that holds them, verify counts the malformed rows.
    const f = await runCli(['verify', 'features', '--days', '14', '--json'], { env })
    const malformed = JSON.parse(f.stdout).result.checks.find((c: { id: string }) => c.id === 'features.malformed-source')
    expect(malformed.numbers.malformed_rows).toBe(2)
  })

  it('a dependent view that cannot be recreated on the new columns: an error naming it, nothing applied', async () => {
    const t = await freshDatabase(kind, { migrated: false })
    const db = await t.open()
    try {
      await loadPredecessor(db.pool)
      // The predecessor's attempt.id was a bigint; seedops' is a uuid.
      await db.pool.query('CREATE VIEW legacy_attempt_ids AS SELECT id + 1 AS next_id FROM attempt')
      const catalog = await catalogFingerprint(db.pool)
      const before = await sums(db.pool, [...PLATFORM_TABLES, ...DERIVED_TABLES])
      const err = await migrate(db).catch((e) => e)
      expect(err).toMatchObject({ code: 'ADOPT_DEPENDENT_VIEW', data: { view: 'public.legacy_attempt_ids' } })
      expect(err.message).toContain('public.legacy_attempt_ids')
      expect(err.message).toContain('Nothing was applied')
      expect(await catalogFingerprint(db.pool)).toBe(catalog)
      expect(await sums(db.pool, [...PLATFORM_TABLES, ...DERIVED_TABLES])).toEqual(before)
    } finally {
      await db.close()
    }
  })

  it('an older features_topic_daily (theta_mean, acc, no key, duplicate rows): renamed, correct derived, merged after archiving', async () => {
    const t = await freshDatabase(kind, { migrated: false })
    const db = await t.open()
    try {
      await loadPredecessor(db.pool, { legacyFeatures: true })
      const cols = await columnsOf(db.pool, 'features_topic_daily')
      const before = await tableSum(db.pool, 'features_topic_daily')
      const keys = (await db.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM (SELECT DISTINCT user_id, topic_id, date FROM features_topic_daily) k')).rows[0]!.n
      expect(before.rows).toBe(66)
      expect(keys).toBe(42)
      const expected = (await db.pool.query<{ k: string; theta: string; correct: number; computed_at: Date }>(
        `SELECT DISTINCT ON (user_id, topic_id, date) user_id || '|' || topic_id || '|' || date AS k, theta_mean::float8::text AS theta,
                round(acc * attempts)::int AS correct, computed_at
         FROM features_topic_daily ORDER BY user_id, topic_id, date, computed_at DESC`,
      )).rows

      const res = await migrate(db)
      const change = res.rowChanges.find((c) => c.table === 'features_topic_daily')!
      expect(change).toMatchObject({ duplicateGroups: 24, rowsMerged: 24 })
      expect(res.plan.map((s) => s.statement)).toContain('ALTER TABLE public."features_topic_daily" RENAME COLUMN "theta_mean" TO "theta_estimate"')
      // The archive holds the table as it was.
      expect(await tableSum(db.pool, change.archive, cols)).toEqual(before)
      // One row per key, the newest, with theta_mean's value under theta_estimate and correct = acc × attempts; acc is kept.
      const after = (await db.pool.query<{ k: string; theta: string; correct: number; computed_at: Date; acc: number }>(
        `SELECT user_id || '|' || topic_id || '|' || date AS k, theta_estimate::text AS theta, correct, computed_at, acc FROM features_topic_daily ORDER BY user_id, topic_id, date`,
      )).rows
      expect(after.map(({ acc: _a, ...r }) => r)).toEqual(expected)
      expect(after.every((r) => r.acc !== null)).toBe(true)
      // Every archived row is either live or a merged duplicate of a live key.
      const orphans = await db.pool.query(`SELECT 1 FROM ${change.archive} a WHERE NOT EXISTS (SELECT 1 FROM features_topic_daily f WHERE (f.user_id, f.topic_id, f.date) = (a.user_id, a.topic_id, a.date))`)
      expect(orphans.rowCount).toBe(0)
      expect(await shapeDifferences(db.pool)).toEqual([])
      expect((await migrate(db)).plan).toEqual([])
    } finally {
      await db.close()
    }
  })

  it('a freshly migrated database has exactly the expected shape: no difference, an empty plan', async () => {
    const t = await freshDatabase(kind)
    const db = await t.open()
    try {
      expect(await shapeDifferences(db.pool)).toEqual([])
      expect((await migrate(db, undefined, { dryRun: true })).plan).toEqual([])
      expect((await schemaStatus(db)).attempts.source).toBe('attempt')
    } finally {
      await db.close()
    }
  })
})

describe('DATABASE_URL that is not a PostgreSQL URL', () => {
  it('says so, exit 2, without printing the value', async () => {
    for (const url of ['base', 'mysql://root:s3cr3t-pw@db:3306/seedtest']) {
      const r = await runCli(['db', 'status'], { env: { DATABASE_URL: url } })
      expect(r.code, r.stderr).toBe(2)
      expect(r.stderr).toContain('DATABASE_URL is not a PostgreSQL URL')
      expect(r.stderr).not.toContain('ENOTFOUND')
      expect(r.stderr).not.toContain('s3cr3t-pw')
    }
    const m = await runCli(['db', 'status', '--json'], { env: { DATABASE_URL: 'mysql://root:s3cr3t-pw@db:3306/seedtest' } })
    expect(JSON.parse(m.stdout)).toMatchObject({ status: 2 })
    expect(m.stdout).toContain('a mysql: URL')
  })
})
