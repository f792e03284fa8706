import { describe, expect, it } from 'vitest'
import { churnRisk, engagement, goalProbability, improvement, normalCdf, recovery, timeEfficiency, type KpiInputs } from '../../src/lib/kpi/formulas.js'
import computeKpisStage from '../../src/lib/kpi/stage.js'
import { resolveStageParams } from '../../src/lib/stages/options.js'

const base: KpiInputs = {
  user_id: 'u', n_recent: 0, c_recent: 0, n_prev: 0, c_prev: 0, theta_recent: null, se_recent: null, theta_prev: null,
  med_recent: null, med_prev: null, r_wrong: 0, r_n: 0, r_c: 0, a_attempts: 0, a_sessions: 0, a_mean_gap_days: null,
  a_hint_n: 0, a_hints: 0, a_mean_dwell_s: null, s_sessions: 0, s_mean_gap_days: null, s_days_since_last: null,
  theta_latest: null, se_latest: null, theta_source: null, goal_target: null,
}

describe('normalCdf', () => {
  it('matches reference values to 1e-12 (R: pnorm)', () => {
    const ref: [number, number][] = [
      [0, 0.5], [0.6, 0.7257468822499265], [1, 0.8413447460685429], [1.5, 0.9331927987311419], [1.96, 0.9750021048517795],
      [-3, 0.0013498980316301], [-6, 9.865876450376946e-10], [8, 0.9999999999999993], [-10, 7.619853024160525e-24], [-40, 0],
    ]
    for (const [x, p] of ref) {
      if (p < 1e-8) expect(Math.abs(normalCdf(x) - p) / (p || 1)).toBeLessThan(1e-8) // relative, in the far tail
      else expect(Math.abs(normalCdf(x) - p)).toBeLessThan(1e-12)
    }
    // symmetry Φ(−x) = 1 − Φ(x)
    for (let x = -5; x <= 5; x += 0.37) expect(normalCdf(-x) + normalCdf(x)).toBeCloseTo(1, 14)
  })
})

describe('KPI formulas: ranges and nulls', () => {
  it('clamps I_t to [−1, 1] and E_t to [0, 1], never NaN', () => {
    // θ jump of 10 with full exposure and SE 0 → 10, clamped to 1
    expect(improvement({ ...base, n_recent: 40, theta_recent: 5, theta_prev: -5, se_recent: 0 }).value).toBe(1)
    expect(improvement({ ...base, n_recent: 40, theta_recent: -5, theta_prev: 5, se_recent: 0 }).value).toBe(-1)
    // recent slower than before → negative, clamped to 0; med_p ≤ 0 → null
    expect(timeEfficiency({ med_recent: 60000, med_prev: 30000 })).toBe(0)
    expect(timeEfficiency({ med_recent: 10, med_prev: 0 })).toBeNull()
    expect(recovery({ r_wrong: 2, r_n: 0, r_c: 0 })).toBeNull()
    expect(engagement({ ...base })).toBeNull()
    expect(churnRisk({ ...base }, 14)).toBeNull()
    // accuracy mode with p_r = 1: the SE term is 0, shrink 1: (1 − 0)·min(1, 40/30)·1 = 1
    expect(improvement({ ...base, n_recent: 40, c_recent: 40, n_prev: 10, c_prev: 0 })).toEqual({ value: 1, mode: 'accuracy' })
  })

  it('A_t: h from the mean hint count over attempts with hint data; 0.5 without any', () => {
    const a = { ...base, a_attempts: 4, a_sessions: 1, a_hint_n: 4 }
    const rest = 0.35 / 28 + 0.25 * 0.5 + 0.2 * 0.5 // one session (g 0.5), no dwell (w 0.5)
    expect(engagement({ ...a, a_hints: 6 })).toBeCloseTo(rest + 0.2 * 0.5, 12) // 0, 2, 3, 1 → 1.5 → h 0.5
    expect(engagement({ ...a, a_hints: 20 })).toBeCloseTo(rest, 12) // mean 5 → h clamped to 0
    expect(engagement({ ...a, a_hint_n: 0, a_hints: 0 })).toBeCloseTo(rest + 0.2 * 0.5, 12)
    expect(engagement({ ...a, a_hints: 0 })).toBeCloseTo(rest + 0.2, 12)
  })

  it('S: the gap term is 0 with one session; d beyond H saturates', () => {
    // 0.6·clamp(30/14 → 1) + 0 + 0.15·(1 − 1/10) = 0.6 + 0.135
    expect(churnRisk({ s_sessions: 1, s_mean_gap_days: null, s_days_since_last: 30 }, 14)).toBeCloseTo(0.735, 12)
  })

  it('P: null without θ or with SE ≤ 0; plain and Bayesian', () => {
    const o = { target: 0, bayesian: false, tau2: 0.01, horizonWeeks: 1 }
    expect(goalProbability({ theta_latest: null, se_latest: 0.3, goal_target: null }, o).P).toBeNull()
    expect(goalProbability({ theta_latest: 1, se_latest: 0, goal_target: null }, o).P).toBeNull()
    // 1 − Φ((0 − 0)/0.3) = 0.5
    expect(goalProbability({ theta_latest: 0, se_latest: 0.3, goal_target: null }, o).P).toBeCloseTo(0.5, 14)
    // Bayesian with τ² = 0.09, h = 4: σ = √(0.16·… ) = √(0.3² + 0.09·4) = √0.45; target 0 = μ → P = 0.5, CI symmetric
    const b = goalProbability({ theta_latest: 0, se_latest: 0.3, goal_target: null }, { ...o, bayesian: true, tau2: 0.09, horizonWeeks: 4 })
    expect(b.sigma).toBeCloseTo(Math.sqrt(0.45), 14)
    expect(b.P).toBeCloseTo(0.5, 14)
    // lo = 1 − Φ(0.588/√0.45), hi = 1 − Φ(−0.588/√0.45)
    expect(b.ci![0]).toBeCloseTo(1 - normalCdf(0.588 / Math.sqrt(0.45)), 14)
    expect(b.ci![0] + b.ci![1]).toBeCloseTo(1, 14)
  })
})

describe('KPI params: flags > env > defaults', () => {
  it('reads the predecessor env names and lets flags win', () => {
    const env = { KPI_LOOKBACK_DAYS: '45', METRICS_DEFAULT_TARGET: '0.7', METRICS_USE_BAYESIAN: 'true', METRICS_CHURN_HORIZON_DAYS: '21' }
    const parseKpiParams = (o: Record<string, unknown>, e: NodeJS.ProcessEnv) => resolveStageParams(computeKpisStage, o, e)
    expect(parseKpiParams({}, env)).toEqual({ lookbackDays: 45, target: 0.7, bayesian: true, horizonWeeks: 1, churnHorizonDays: 21, users: undefined })
    expect(parseKpiParams({ lookbackDays: 10, target: '-0.5', bayesian: false, users: ['b', 'a', 'b'] }, env)).toMatchObject({ lookbackDays: 10, target: -0.5, bayesian: false, users: ['b', 'a'] })
    expect(parseKpiParams({}, {})).toEqual({ lookbackDays: 30, target: 0, bayesian: false, horizonWeeks: 1, churnHorizonDays: 14, users: undefined })
    expect(() => parseKpiParams({ target: 'high' }, {})).toThrow('target from flag --target="high" is not a number')
    expect(() => parseKpiParams({}, { METRICS_USE_BAYESIAN: 'maybe' })).toThrow('bayesian from env METRICS_USE_BAYESIAN="maybe" is not a boolean')
  })
})
