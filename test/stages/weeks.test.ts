import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import type { Db } from '../../src/lib/db/index.js'
import { withTransaction } from '../../src/lib/db/index.js'
import { seedDemo } from '../../src/lib/demo/seed.js'
import updateThetaStage from '../../src/lib/irt-stage/update-theta.js'
import computeKpisStage from '../../src/lib/kpi/stage.js'
import { silentLogger } from '../../src/lib/output/index.js'
import generateReport from '../../src/lib/reports/stage.js'
import { kpiWeekIsFinal, runRange, runWithPrerequisites } from '../../src/lib/stages/chain.js'
import { runCli } from '../support/cli.js'
import { DB_KINDS, freshDatabase } from '../support/db.js'
import { insertExams, insertQuestions } from '../support/fixtures.js'
import { resolveStageParams } from '../../src/lib/stages/options.js'

// Two ISO weeks: W = Monday 2026-03-09 .. Sunday 2026-03-15, then the week of Monday 2026-03-16.
const W = '2026-03-09'
const SATURDAY = '2026-03-14'
const SUNDAY = '2026-03-15'
const MONDAY = '2026-03-16'
const WEDNESDAY = '2026-03-18'

const q = (id: number, ok: boolean, hints = 0) => ({ question_id: id, is_correct: ok, time_spent_sec: 20 + id, used_hints: hints, topic: id % 2 ? 'algebra' : 'geometry' })

/** u1 and u2 practise Monday..Saturday of W (and the week before); Sunday's sessions arrive later. */
async function weekdays(db: Db) {
  await insertQuestions(db.pool, [1, 2, 3, 4, 5, 6].map((id) => ({ id, topic: id % 2 ? 'algebra' : 'geometry' })))
  const rows = []
  for (const [d, day] of ['2026-03-03', '2026-03-05', '2026-03-09', '2026-03-10', '2026-03-12', SATURDAY].entries()) {
    rows.push({ session_id: `u1-${d}`, user_id: 'u1', at: `${day}T10:00:00Z`, questions: [q(1, d % 2 === 0), q(2, true), q(3, false, 1)] })
    rows.push({ session_id: `u2-${d}`, user_id: 'u2', at: `${day}T15:00:00Z`, questions: [q(4, true), q(5, d > 2)] })
  }
  await insertExams(db.pool, rows)
}

/** Sunday: a long session of u1 and the first ever session of u3, written after the Sunday 02:10 run. */
async function sunday(db: Db) {
  await insertExams(db.pool, [
    { session_id: 'u1-sun', user_id: 'u1', at: `${SUNDAY}T18:00:00Z`, questions: [q(1, true), q(2, true), q(3, true), q(4, true), q(5, true), q(6, true)] },
    { session_id: 'u3-sun', user_id: 'u3', at: `${SUNDAY}T20:00:00Z`, questions: [q(1, true), q(6, false, 2)] },
  ])
}

const kpiRows = async (db: Db, week: string) =>
  (await db.pool.query<{ user_id: string; kpis: Record<string, unknown> }>(`SELECT user_id, kpis FROM weekly_kpi WHERE week_start = $1 ORDER BY user_id`, [week])).rows

const opts = (asOf: string) => ({ asOf, dryRun: false, logger: silentLogger })

describe.each(DB_KINDS)('which week, which day (%s)', (kind) => {
  it('generate-report on Monday 04:00 reports the week that just ended, with Sunday in its KPIs (finalised first); a Wednesday run reports the same week', { timeout: 120_000 }, async () => {
    const db = await (await freshDatabase(kind)).open()
    const out = mkdtempSync(join(tmpdir(), 'seedops-weeks-'))
    try {
      await weekdays(db)
      // The daily 02:10 run that computed W last: Saturday's (Sunday's had seen two hours of Sunday).
      await runWithPrerequisites(db, computeKpisStage, resolveStageParams(computeKpisStage, {}, {}), opts(SATURDAY))
      const before = await kpiRows(db, W)
      expect(before.map((r) => r.user_id)).toEqual(['u1', 'u2'])
      expect(await kpiWeekIsFinal(db, W)).toBe(false)
      await sunday(db)

      const params = resolveStageParams(generateReport, { outDir: out, renderer: 'builtin' }, {})
      const monday = await runWithPrerequisites(db, generateReport, params, opts(MONDAY))
      // First the week's KPIs were made final (a compute-kpis run as of its Sunday), then the report.
      expect(monday.before.map((b) => [b.stage, b.asOf, b.status])).toEqual([['compute-kpis', SUNDAY, 'succeeded']])
      expect(await kpiWeekIsFinal(db, W)).toBe(true)
      expect(monday.report.summary).toMatchObject({ weekStart: W, asOf: SUNDAY, users: 3 })
      const after = await kpiRows(db, W)
      expect(after.map((r) => r.user_id)).toEqual(['u1', 'u2', 'u3'])
      // u1's Sunday session counts: more sessions in the 28 days → a different engagement.
      expect(after[0]!.kpis.A_t).not.toEqual(before[0]!.kpis.A_t)
      const html = readFileSync(join(out, 'u3', W, 'report.html'), 'utf8')
      expect(html).toContain('2 attempts this week')
      expect(readFileSync(join(out, 'u1', W, 'report.html'), 'utf8')).toContain('18 attempts this week')

      const wednesday = await runWithPrerequisites(db, generateReport, params, opts(WEDNESDAY))
      expect(wednesday.before).toEqual([])
      expect(wednesday.report.summary).toMatchObject({ weekStart: W, users: 3 })
      expect(await kpiRows(db, W)).toEqual(after)
    } finally {
      await db.close()
    }
  })

  it('--require-final-kpis refuses when the week is not final; --week picks another week', { timeout: 120_000 }, async () => {
    const db = await (await freshDatabase(kind)).open()
    const out = mkdtempSync(join(tmpdir(), 'seedops-weeks-'))
    try {
      await weekdays(db)
      await runWithPrerequisites(db, computeKpisStage, resolveStageParams(computeKpisStage, {}, {}), opts(SATURDAY))
      const strict = resolveStageParams(generateReport, { outDir: out, renderer: 'builtin', requireFinalKpis: true }, {})
      await expect(runWithPrerequisites(db, generateReport, strict, opts(MONDAY))).rejects.toMatchObject({ code: 'KPIS_NOT_FINAL' })
      const picked = resolveStageParams(generateReport, { outDir: out, renderer: 'builtin', week: '2026-W11' }, {})
      expect(picked.week).toBe(W)
      const r = await runWithPrerequisites(db, generateReport, picked, opts(MONDAY))
      expect(r.before).toEqual([])
      expect(r.report.summary).toMatchObject({ weekStart: W, users: 2 })
    } finally {
      await db.close()
    }
  })

  it('compute-kpis: the first run of a new week finalises the previous one (Sunday included), once', { timeout: 120_000 }, async () => {
    const db = await (await freshDatabase(kind)).open()
    try {
      await weekdays(db)
      await runWithPrerequisites(db, computeKpisStage, resolveStageParams(computeKpisStage, {}, {}), opts(SATURDAY))
      await sunday(db)
      const mon = await runWithPrerequisites(db, computeKpisStage, resolveStageParams(computeKpisStage, {}, {}), opts(MONDAY))
      expect(mon.before.map((b) => b.asOf)).toEqual([SUNDAY])
      expect((mon.report.summary as { weekStart: string }).weekStart).toBe(MONDAY)
      expect((await kpiRows(db, W)).map((r) => r.user_id)).toEqual(['u1', 'u2', 'u3'])
      const tue = await runWithPrerequisites(db, computeKpisStage, resolveStageParams(computeKpisStage, {}, {}), opts('2026-03-17'))
      expect(tue.before).toEqual([])
      const log = (await db.pool.query(`SELECT as_of::text, params->>'final' AS final FROM seedops_stage_runs WHERE stage = 'compute-kpis' ORDER BY id`)).rows
      expect(log).toEqual([
        { as_of: '2026-03-08', final: 'true' }, // Saturday's run was the first of its week: it finalised 03-02..03-08
        { as_of: SATURDAY, final: null },
        { as_of: SUNDAY, final: 'true' },
        { as_of: MONDAY, final: null },
        { as_of: '2026-03-17', final: null },
      ])
    } finally {
      await db.close()
    }
  })

  it('run compute-kpis --from … --to … over 14 days equals 14 single-day runs', { timeout: 180_000 }, async () => {
    const days = Array.from({ length: 14 }, (_, i) => new Date(Date.parse('2026-03-04T00:00:00Z') + i * 86_400_000).toISOString().slice(0, 10))
    const results: { kpis: unknown; runs: unknown }[] = []
    for (const mode of ['range', 'single'] as const) {
      const db = await (await freshDatabase(kind)).open()
      try {
        await weekdays(db)
        await sunday(db)
        const p = resolveStageParams(computeKpisStage, {}, {})
        if (mode === 'range') {
          const r = await runRange(db, computeKpisStage, p, { days, keepGoing: false, dryRun: false, logger: silentLogger })
          expect(r.status).toBe('succeeded')
          expect(r.runs.filter((x) => (x.params as { final?: boolean }).final !== true).map((x) => x.asOf)).toEqual(days)
        } else {
          for (const d of days) await runWithPrerequisites(db, computeKpisStage, p, opts(d))
        }
        results.push({
          kpis: (await db.pool.query(`SELECT user_id, week_start::text, kpis FROM weekly_kpi ORDER BY week_start, user_id`)).rows,
          runs: (await db.pool.query(`SELECT as_of::text, status, params->>'final' AS final FROM seedops_stage_runs WHERE stage = 'compute-kpis' ORDER BY id`)).rows,
        })
      } finally {
        await db.close()
      }
    }
    expect(results[0]!.kpis).toEqual(results[1]!.kpis)
    expect(results[0]!.runs).toEqual(results[1]!.runs)
    // One row per day plus the two finalised weeks (03-02..03-08 on 03-09's run, W on 03-16's).
    expect((results[0]!.runs as unknown[]).length).toBe(16)
  })

  it('a range stops at the first failing day and names it; --keep-going runs the rest', { timeout: 120_000 }, async () => {
    const db = await (await freshDatabase(kind)).open()
    try {
      await weekdays(db)
      await db.pool.query(`INSERT INTO mirt_item_params (item_id, model, params, version) SELECT id, '2PL', '{"a":1,"b":0,"c":0}', 'cal-1' FROM question`)
      // u1 has sessions on 03-09, 03-10, 03-12: with a one-day lookback, 03-11 has none.
      const p = { user: 'u1', lookbackDays: 1 }
      const days = ['2026-03-09', '2026-03-10', '2026-03-11', '2026-03-12']
      const stop = await runRange(db, updateThetaStage, p, { days, keepGoing: false, dryRun: false, logger: silentLogger })
      expect(stop.status).toBe('failed')
      expect(stop.runs.map((r) => r.asOf)).toEqual(['2026-03-09', '2026-03-10'])
      expect(stop.failures).toEqual([{ asOf: '2026-03-11', stage: 'update-theta', code: 'NOT_FOUND', message: 'user u1 has no session in the 1 days ending 2026-03-11' }])
      expect(stop.notRun).toEqual(['2026-03-12'])
      const go = await runRange(db, updateThetaStage, p, { days, keepGoing: true, dryRun: false, logger: silentLogger })
      expect(go.runs.map((r) => r.asOf)).toEqual(['2026-03-09', '2026-03-10', '2026-03-12'])
      expect(go.failures.map((f) => f.asOf)).toEqual(['2026-03-11'])
      // The CLI says the same and exits 1.
      await db.close()
    } catch (e) {
      await db.close().catch(() => {})
      throw e
    }
  })
})

describe.each(DB_KINDS)('seedops run daily and --from/--to through the CLI (%s)', (kind) => {
  it('runs the chain in dependency order, generate-report on Monday for the week just ended; a range failure names the day and exits 1', { timeout: 240_000 }, async () => {
    const t = await freshDatabase(kind)
    const home = t.env.SEEDOPS_HOME ?? mkdtempSync(join(tmpdir(), 'seedops-daily-'))
    const env = { ...t.env, SEEDOPS_HOME: home }
    let db = await t.open()
    await withTransaction(db.pool, (c) => seedDemo(c, { learners: 120, items: 30, days: 21, seed: 3, endDate: '2026-03-15' }))
    await db.close()

    const r = await runCli(['run', 'daily', '--date', MONDAY, '--json'], { env, timeoutMs: 180_000 })
    expect(r.code, r.stderr).toBe(0)
    const doc = JSON.parse(r.stdout)
    expect(doc.result.runs.map((x: { stage: string; asOf: string }) => `${x.stage}@${x.asOf}`)).toEqual([
      `aggregate-features@${MONDAY}`,
      `calibrate-irt@${MONDAY}`,
      `compute-kpis@${SUNDAY}`, // the week just ended, finalised
      `compute-kpis@${MONDAY}`,
      `detect-inactivity@${MONDAY}`,
      `generate-report@${MONDAY}`,
    ])
    expect(doc.result.runs.at(-1).summary.weekStart).toBe(W)

    // update-theta for a learner who has no session on the range's last day (one-day lookback).
    db = await t.open()
    const u = (await db.pool.query(`SELECT user_id FROM exam_results GROUP BY user_id HAVING max(created_at) < '2026-03-15' ORDER BY user_id LIMIT 1`)).rows[0]!.user_id as string
    const last = (await db.pool.query(`SELECT max(created_at)::date::text AS d FROM exam_results WHERE user_id = $1`, [u])).rows[0]!.d as string
    await db.close()
    const to = new Date(Date.parse(`${last}T00:00:00Z`) + 3 * 86_400_000).toISOString().slice(0, 10)
    const range = await runCli(['run', 'update-theta', '--user', u, '--lookback-days', '1', '--from', last, '--to', to], { env, timeoutMs: 120_000 })
    expect(range.code).toBe(1)
    expect(range.stdout).toContain(`update-theta run #`)
    expect(range.stdout).toMatch(new RegExp(`update-theta as of \\d{4}-\\d{2}-\\d{2}: FAILED \\(NOT_FOUND\\) user ${u} has no session in the 1 days ending`))
    expect(range.stdout).toContain(`not run: `)
    expect(range.stdout).toMatch(/\(2 day\(s\)\); fix the failure and re-run with --from \d{4}-\d{2}-\d{2}, or use --keep-going/)
    const both = await runCli(['run', 'compute-kpis', '--date', MONDAY, '--from', MONDAY], { env })
    expect(both.code).toBe(2)
  })
})
