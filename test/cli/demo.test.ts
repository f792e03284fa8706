import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { lastCompleteWeek } from '../../src/lib/config/index.js'
import { runCli } from '../support/cli.js'

describe('seedops demo (the README\'s first command, on the embedded default)', () => {
  it('seeds, runs every stage, fills every derived table and writes a report one can open; a second run reuses the data', { timeout: 300_000 }, async () => {
    const home = mkdtempSync(join(tmpdir(), 'seedops-demo-'))
    // Whatever the weekday, the report is of the last complete ISO week (on a Monday: the one just ended).
    const lastWeek = lastCompleteWeek(new Date().toISOString().slice(0, 10))
    const r = await runCli(['demo', '--learners', '120', '--items', '48', '--days', '42', '--json'], { env: { SEEDOPS_HOME: home }, timeoutMs: 280_000 })
    expect(r.code, r.stderr).toBe(0)
    const { result } = JSON.parse(r.stdout)
    expect(result.seeded).toMatchObject({ learners: 120, items: 48, malformed: 4 })
    expect(result.stages.map((s: { stage: string }) => s.stage)).toEqual([
      'calibrate-irt (4 past weeks)',
      'calibrate-irt',
      'aggregate-features',
      `compute-kpis (week ${lastWeek}, final)`,
      'compute-kpis',
      'detect-inactivity',
      'generate-report',
    ])
    for (const s of result.stages) expect(s.status, s.stage).toBe('succeeded')
    for (const t of ['features_topic_daily', 'weekly_kpi', 'mirt_item_params', 'mirt_ability', 'report_artifacts']) expect(result.tables[t], t).toBeGreaterThan(0)
    // Past weeks' calibrations leave an ability history with a trend.
    expect(result.stages[0].rows.calibrated).toBeGreaterThanOrEqual(2)
    expect(result.tables.seedops_ability_history).toBeGreaterThan(2 * 100)
    // …while mirt_ability keeps one latest estimate per learner and model.
    expect(result.tables.mirt_ability).toBeLessThanOrEqual(120)
    expect(existsSync(result.sampleReport)).toBe(true)
    const html = readFileSync(result.sampleReport, 'utf8')
    expect(html).toContain('Weekly learning report')
    expect(html).toContain('<svg')
    expect(result.sampleReport).toContain(`/${lastWeek}/report.html`)
    expect(html).toContain(`(${lastWeek} to `)
    // A full week, not the empty one that began this morning: the learners' reports show its attempts.
    const dir = join(home, 'reports')
    const weekly = readdirSync(dir).map((u) => readFileSync(join(dir, u, lastWeek, 'report.html'), 'utf8'))
    const attempts = weekly.map((h) => Number(/(\d+) attempts? this week/.exec(h)?.[1] ?? 0))
    expect(attempts.filter((n) => n > 0).length).toBeGreaterThan(weekly.length / 2)

    const again = await runCli(['demo', '--json'], { env: { SEEDOPS_HOME: home }, timeoutMs: 280_000 })
    expect(again.code, again.stderr).toBe(0)
    const second = JSON.parse(again.stdout).result
    expect(second.seeded).toBeNull()
    expect(second.tables.exam_results).toBe(result.tables.exam_results)
    expect(second.tables.report_artifacts).toBe(result.tables.report_artifacts)

    const v = await runCli(['verify', 'features', '--json'], { env: { SEEDOPS_HOME: home } })
    expect(v.code, v.stdout).toBe(0)
  })
})
