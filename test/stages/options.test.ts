import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import { translateError } from '../../src/lib/errors/index.js'
import { getStage, loadStages } from '../../src/lib/stages/all.js'
import { resolveOptions, resolveStageParams } from '../../src/lib/stages/options.js'
import { runCli } from '../support/cli.js'
import { freshDatabase } from '../support/db.js'

/**
 * Stage options through the built CLI: one zod schema per stage, its env twins resolved there,
 * flag > env > default; a bad value from either source is a usage error (exit 2) whose message
 * names the field and where the value came from. Validation comes before the database is opened,
 * so the bad-value runs need none (SEEDOPS_HOME points at an empty folder all the same).
 */
const home = () => mkdtempSync(join(tmpdir(), 'seedops-options-'))

interface BadCase {
  stage: string
  /** What the command maps its flags to (the flag named in the message is the option's). */
  options: Record<string, unknown>
  env?: Record<string, string>
  message: string
  suggestion: string
}

const BAD: BadCase[] = [
  { stage: 'aggregate-features', options: { lookbackDays: 400 }, message: 'aggregate-features: lookbackDays from flag --lookback-days=400 must be ≤ 366', suggestion: 'seedops run aggregate-features --help' },
  { stage: 'aggregate-features', options: {}, env: { AGG_INCLUDE_THETA: 'maybe' }, message: 'includeTheta from env AGG_INCLUDE_THETA="maybe" is not a boolean', suggestion: 'Fix or unset AGG_INCLUDE_THETA (the flag --include-theta overrides it)' },
  { stage: 'calibrate-irt', options: { model: '4PL' }, message: 'calibrate-irt: model from flag --model="4PL" must be one of 1PL, Rasch, 2PL, 3PL', suggestion: 'seedops run calibrate-irt --help' },
  // The predecessor's name is an env twin too, and is the one named.
  { stage: 'calibrate-irt', options: {}, env: { MIRT_LOOKBACK_DAYS: 'thirty' }, message: 'lookbackDays from env MIRT_LOOKBACK_DAYS="thirty" is not an integer', suggestion: 'Fix or unset MIRT_LOOKBACK_DAYS (the flag --lookback-days overrides it)' },
  { stage: 'update-theta', options: { user: 'u1', lookbackDays: 0 }, message: 'update-theta: lookbackDays from flag --lookback-days=0 must be ≥ 1', suggestion: 'seedops run update-theta --help' },
  { stage: 'update-theta', options: { user: 'u1' }, env: { THETA_LOOKBACK_DAYS: '1.5' }, message: 'lookbackDays from env THETA_LOOKBACK_DAYS="1.5" is not an integer', suggestion: 'Fix or unset THETA_LOOKBACK_DAYS' },
  { stage: 'compute-kpis', options: { horizonWeeks: '0' }, message: 'compute-kpis: horizonWeeks from flag --goal-weeks="0" must be > 0', suggestion: 'seedops run compute-kpis --help' },
  { stage: 'compute-kpis', options: {}, env: { METRICS_CHURN_HORIZON_DAYS: '400' }, message: 'churnHorizonDays from env METRICS_CHURN_HORIZON_DAYS="400" must be ≤ 365', suggestion: 'Fix or unset METRICS_CHURN_HORIZON_DAYS (the flag --churn-horizon-days overrides it)' },
  { stage: 'detect-inactivity', options: { thresholdDays: 0 }, message: 'detect-inactivity: thresholdDays from flag --threshold-days=0 must be ≥ 1', suggestion: 'seedops run detect-inactivity --help' },
  { stage: 'detect-inactivity', options: {}, env: { INACTIVITY_LOOKBACK_DAYS: '1' }, message: 'inactivityLookbackDays from env INACTIVITY_LOOKBACK_DAYS="1" must be ≥ 2', suggestion: 'Fix or unset INACTIVITY_LOOKBACK_DAYS (the flag --lookback-days overrides it)' },
  { stage: 'generate-report', options: { batchSize: 0 }, message: 'generate-report: batchSize from flag --batch-size=0 must be ≥ 1', suggestion: 'seedops run generate-report --help' },
  { stage: 'generate-report', options: {}, env: { REPORT_RENDERER: 'latex' }, message: 'renderer from env REPORT_RENDERER="latex" must be one of auto, builtin, quarto', suggestion: 'Fix or unset REPORT_RENDERER (the flag --renderer overrides it)' },
]

describe('stage options: bad values are usage errors naming the field and its source', () => {
  it.each(BAD.map((c) => [`${c.stage} ${c.env ? `env ${Object.keys(c.env)[0]}` : `option ${Object.keys(c.options).at(-1)}`}`, c] as const))('%s: exit code 2', async (_, c) => {
    await loadStages()
    let thrown: unknown
    try {
      resolveStageParams(getStage(c.stage)!, c.options, c.env ?? {})
    } catch (e) {
      thrown = e
    }
    const err = translateError(thrown)
    expect(err).toMatchObject({ code: 'USAGE', exitCode: 2 })
    expect(err.message).toContain(c.message)
    expect(err.suggestions.join('\n')).toContain(c.suggestion)
  })

  it('through the built CLI: a bad flag and a bad env value exit 2 with the error document', async () => {
    const [flag, env] = await Promise.all([
      runCli(['run', 'compute-kpis', '--goal-weeks', '0', '--json'], { env: { SEEDOPS_HOME: home() } }),
      runCli(['run', 'calibrate-irt', '--json'], { env: { SEEDOPS_HOME: home(), MIRT_LOOKBACK_DAYS: 'thirty' } }),
    ])
    expect(flag.code, flag.stderr).toBe(2)
    expect(JSON.parse(flag.stdout)).toMatchObject({ status: 2, code: 'USAGE', exitCode: 2, message: 'compute-kpis: horizonWeeks from flag --goal-weeks="0" must be > 0' })
    expect(env.code, env.stderr).toBe(2)
    expect(JSON.parse(env.stdout)).toMatchObject({ status: 2, code: 'USAGE', message: 'calibrate-irt: lookbackDays from env MIRT_LOOKBACK_DAYS="thirty" is not an integer', data: { issues: [{ field: 'lookbackDays', source: 'env MIRT_LOOKBACK_DAYS="thirty"' }] } })
  })

  it('a cross-field rule names its field and source: detect-inactivity threshold ≥ lookback (text output)', async () => {
    const r = await runCli(['run', 'detect-inactivity', '--lookback-days', '10'], { env: { SEEDOPS_HOME: home(), INACTIVITY_THRESHOLD_DAYS: '10' } })
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('Error (USAGE): detect-inactivity: thresholdDays from env INACTIVITY_THRESHOLD_DAYS="10": the inactivity threshold (10 days) must be shorter than the lookback (10 days, --lookback-days)')
  })

  it('run daily checks every stage of its chain before running any: a bad env value exits 2, nothing is recorded', async () => {
    const t = await freshDatabase('embedded')
    const r = await runCli(['run', 'daily', '--date', '2026-03-10', '--json'], { env: { ...t.env, KPI_LOOKBACK_DAYS: 'abc' } })
    expect(r.code, r.stderr).toBe(2)
    expect(JSON.parse(r.stdout).message).toBe('compute-kpis: lookbackDays from env KPI_LOOKBACK_DAYS="abc" is not an integer')
    const db = await t.open()
    try {
      expect((await db.pool.query('SELECT count(*)::int AS n FROM seedops_stage_runs')).rows[0].n).toBe(0)
    } finally {
      await db.close()
    }
  })

  it('verify kpis reads KPI_LOOKBACK_DAYS through compute-kpis\' own option', async () => {
    const r = await runCli(['verify', 'kpis', '--json'], { env: { SEEDOPS_HOME: home(), KPI_LOOKBACK_DAYS: '0' } })
    expect(r.code).toBe(2)
    expect(JSON.parse(r.stdout).message).toBe('verify kpis: lookbackDays from env KPI_LOOKBACK_DAYS="0" must be ≥ 1')
  })
})

describe('stage options: flag > env > default, through the CLI on the embedded database', () => {
  it('compute-kpis and aggregate-features record the value each source gave', { timeout: 120_000 }, async () => {
    const t = await freshDatabase('embedded')
    const env = { ...t.env, KPI_LOOKBACK_DAYS: '45', METRICS_DEFAULT_TARGET: '0.7', METRICS_USE_BAYESIAN: 'yes' }
    // target: flag beats env; lookbackDays and bayesian: env beats default; churn horizon and goal weeks: defaults.
    const k = await runCli(['run', 'compute-kpis', '--date', '2026-03-11', '--dry-run', '--target=-0.5', '--json'], { env })
    expect(k.code, k.stderr).toBe(0)
    expect(JSON.parse(k.stdout).result.params).toEqual({ lookbackDays: 45, target: -0.5, bayesian: true, horizonWeeks: 1, churnHorizonDays: 14 })
    // --no-bayesian (a flag set to false) still beats the env's yes.
    const off = await runCli(['run', 'compute-kpis', '--date', '2026-03-11', '--dry-run', '--no-bayesian', '--lookback-days', '10', '--json'], { env })
    expect(JSON.parse(off.stdout).result.params).toMatchObject({ lookbackDays: 10, target: 0.7, bayesian: false })

    const a = await runCli(['run', 'aggregate-features', '--date', '2026-03-11', '--dry-run', '--json'], { env: { ...t.env, AGG_LOOKBACK_DAYS: '3' } })
    expect(JSON.parse(a.stdout).result.params).toEqual({ lookbackDays: 3, includeTheta: false })
    const b = await runCli(['run', 'aggregate-features', '--date', '2026-03-11', '--dry-run', '--lookback-days', '5', '--include-theta', '--json'], { env: { ...t.env, AGG_LOOKBACK_DAYS: '3', AGG_INCLUDE_THETA: 'false' } })
    expect(JSON.parse(b.stdout).result.params).toEqual({ lookbackDays: 5, includeTheta: true })
  })
})

describe('resolveOptions and the ZodError translation', () => {
  const schema = z.object({
    days: z.number().int().min(1).default(7).meta({ flag: 'days', env: ['NEW_DAYS', 'OLD_DAYS'] }),
    mode: z.enum(['a', 'b']).default('a').meta({ flag: 'mode' }),
  })

  it('the first env twin set wins; a key the schema lacks is a programming error, not a usage error', () => {
    expect(resolveOptions(schema, {}, { OLD_DAYS: '3', NEW_DAYS: '4' }, 'x').options).toEqual({ days: 4, mode: 'a' })
    expect(resolveOptions(schema, {}, { OLD_DAYS: '3' }, 'x').sources.days).toEqual({ kind: 'env', name: 'OLD_DAYS', value: '3' })
    expect(() => resolveOptions(schema, { dayz: 3 } as never, {}, 'x')).toThrow('x: no option dayz')
  })

  it('several bad fields are all named, each with its source', () => {
    let err: unknown
    try {
      resolveOptions(schema, { mode: 'c' }, { OLD_DAYS: '0' }, 'x')
    } catch (e) {
      err = e
    }
    const t = translateError(err)
    expect(t.exitCode).toBe(2)
    expect(t.message).toBe('x: days from env OLD_DAYS="0" must be ≥ 1; mode from flag --mode="c" must be one of a, b')
  })

  it('a ZodError that escapes elsewhere becomes a usage error naming the field', () => {
    const r = z.object({ port: z.number().int() }).safeParse({ port: 'x' })
    const t = translateError(r.error)
    expect(t.code).toBe('USAGE')
    expect(t.exitCode).toBe(2)
    expect(t.message).toMatch(/^invalid port: /)
  })
})
