/**
 * The six weekly KPIs (SPEC 2, "KPI definitions"), as pure functions over per-user inputs that
 * the set-based SQL in ./sql.ts computes for the whole population at once. Every result is
 * clamped to its range and is `null` (never NaN) where the spec says null.
 */

/**
 * Standard normal CDF Φ(x), double precision (absolute error < 1e-14): Hart's (1968) rational
 * approximation as given by G. West, "Better approximations to cumulative normal functions",
 * Wilmott Magazine (2005), fig. 2. Abramowitz–Stegun 7.1.26 (error 1.5e-7) is too coarse here.
 */
export function normalCdf(x: number): number {
  if (Number.isNaN(x)) return NaN
  const ax = Math.abs(x)
  let c: number
  if (ax > 37) {
    c = 0
  } else {
    const e = Math.exp(-(ax * ax) / 2)
    if (ax < 7.07106781186547) {
      let n = 3.52624965998911e-2 * ax + 0.700383064443688
      n = n * ax + 6.37396220353165
      n = n * ax + 33.912866078383
      n = n * ax + 112.079291497871
      n = n * ax + 221.213596169931
      n = n * ax + 220.206867912376
      let d = 8.83883476483184e-2 * ax + 1.75566716318264
      d = d * ax + 16.064177579207
      d = d * ax + 86.7807322029461
      d = d * ax + 296.564248779674
      d = d * ax + 637.333633378831
      d = d * ax + 793.826512519948
      d = d * ax + 440.413735824752
      c = (e * n) / d
    } else {
      let b = ax + 0.65
      b = ax + 4 / b
      b = ax + 3 / b
      b = ax + 2 / b
      b = ax + 1 / b
      c = e / b / 2.506628274631
    }
  }
  return x > 0 ? 1 - c : c
}

export const clamp = (v: number, lo = 0, hi = 1): number => Math.min(hi, Math.max(lo, v))
/** Clamp, and turn any non-finite value into null (JSON null, never NaN). */
const fin = (v: number | null, lo: number, hi: number): number | null => (v === null || !Number.isFinite(v) ? null : clamp(v, lo, hi))

/** Per-user inputs, as the SQL returns them (counts are numbers, absent values null). */
export interface KpiInputs {
  user_id: string
  /** I_t: attempts and correct in recent (14 days ending at as_of) and prev (14 days ending at as_of−14). */
  n_recent: number
  c_recent: number
  n_prev: number
  c_prev: number
  /** Latest θ (and its SE) measured inside each 14-day window (ability history). */
  theta_recent: number | null
  se_recent: number | null
  theta_prev: number | null
  /** E_t: medians (ms) of correct attempts' response times, 28 days ending at as_of / at as_of−28. */
  med_recent: number | null
  med_prev: number | null
  /** R_t: wrong answers in the 28 days ending at as_of−28 (K is empty iff 0), attempts/correct on K keys in the last 28 days. */
  r_wrong: number
  r_n: number
  r_c: number
  /** A_t over the 28 days ending at as_of. */
  a_attempts: number
  a_sessions: number
  /** Mean gap in days between consecutive sessions (null with fewer than two). */
  a_mean_gap_days: number | null
  /** Attempts carrying hint data (an integer hints_used), and the sum of their hint counts. */
  a_hint_n: number
  a_hints: number
  /** Mean dwell (s) over sessions that carry response times; null when none does. */
  a_mean_dwell_s: number | null
  /** S over the 56 days ending at as_of. */
  s_sessions: number
  s_mean_gap_days: number | null
  /** Whole days from the last session (UTC date) to as_of; null with no session. */
  s_days_since_last: number | null
  /** P: latest θ/SE at as_of (history, else mirt_ability) and its source; the user's goal. */
  theta_latest: number | null
  se_latest: number | null
  theta_source: 'history' | 'mirt_ability' | null
  goal_target: number | null
}

export interface KpiOptions {
  /** Default goal when the user has none (--target / METRICS_DEFAULT_TARGET). */
  target: number
  bayesian: boolean
  /** τ²: population variance of weekly θ change (floored at 0.01 by the caller). */
  tau2: number
  /** h: weeks to the goal date (default 1). */
  horizonWeeks: number
  /** H in S (METRICS_CHURN_HORIZON_DAYS, 14). */
  churnHorizonDays: number
}

export interface Kpis {
  I_t: number | null
  E_t: number | null
  R_t: number | null
  A_t: number | null
  P: number | null
  S: number | null
  /** Diagnostics (documented in the README): which I_t formula applied, attempts in the recent window. */
  I_mode: 'theta' | 'accuracy' | null
  n_recent: number
  P_target: number | null
  P_mode: 'plain' | 'bayesian'
  /** Only with --bayesian: the predictive σ and the 95% interval of P. */
  sigma?: number | null
  P_ci?: [number, number] | null
}

/** I_t ∈ [−1, 1]: θ mode when both windows hold a θ estimate and n ≥ 5, else accuracy mode. */
export function improvement(x: KpiInputs): { value: number | null; mode: 'theta' | 'accuracy' | null } {
  const n = x.n_recent
  const exposure = Math.min(1, n / 30)
  if (x.theta_recent !== null && x.theta_prev !== null && n >= 5) {
    // A recent estimate without an SE gets the largest shrinkage (0.5): no evidence of precision.
    const shrink = 1 - (x.se_recent === null ? 0.5 : Math.min(0.5, 1.96 * x.se_recent))
    return { value: fin((x.theta_recent - x.theta_prev) * exposure * shrink, -1, 1), mode: 'theta' }
  }
  if (x.n_recent === 0 || x.n_prev === 0) return { value: null, mode: null }
  const pr = x.c_recent / x.n_recent
  const pp = x.c_prev / x.n_prev
  const shrink = 1 - Math.min(0.5, 1.96 * Math.sqrt((pr * (1 - pr)) / n))
  return { value: fin((pr - pp) * exposure * shrink, -1, 1), mode: 'accuracy' }
}

/** E_t ∈ [0, 1]: (med_p − med_r)/med_p. */
export function timeEfficiency(x: Pick<KpiInputs, 'med_recent' | 'med_prev'>): number | null {
  if (x.med_recent === null || x.med_prev === null || x.med_prev <= 0) return null
  return fin((x.med_prev - x.med_recent) / x.med_prev, 0, 1)
}

/** R_t ∈ [0, 1]: share correct among recent attempts on keys answered wrong in the previous 28 days. */
export function recovery(x: Pick<KpiInputs, 'r_wrong' | 'r_n' | 'r_c'>): number | null {
  if (x.r_wrong === 0 || x.r_n === 0) return null
  return fin(x.r_c / x.r_n, 0, 1)
}

/** A_t ∈ [0, 1]: 0.35·min(1, sessions/28) + 0.25·g + 0.20·h + 0.20·w. */
export function engagement(x: Pick<KpiInputs, 'a_attempts' | 'a_sessions' | 'a_mean_gap_days' | 'a_hint_n' | 'a_hints' | 'a_mean_dwell_s'>): number | null {
  if (x.a_attempts === 0) return null
  const g = x.a_sessions < 2 || x.a_mean_gap_days === null ? 0.5 : x.a_mean_gap_days <= 0 ? 1 : Math.min(1, 1 / x.a_mean_gap_days)
  // h: the mean hint count over attempts that carry hint data (not the share with a hint).
  const h = x.a_hint_n === 0 ? 0.5 : clamp(1 - x.a_hints / x.a_hint_n / 3)
  const w = x.a_mean_dwell_s === null ? 0.5 : clamp(x.a_mean_dwell_s / 900)
  return fin(0.35 * Math.min(1, x.a_sessions / 28) + 0.25 * g + 0.2 * h + 0.2 * w, 0, 1)
}

/** S ∈ [0, 1]: 0.6·clamp(d/H) + 0.25·clamp(mean gap/7) + 0.15·clamp(1 − sessions/10). */
export function churnRisk(x: Pick<KpiInputs, 's_sessions' | 's_mean_gap_days' | 's_days_since_last'>, churnHorizonDays: number): number | null {
  if (x.s_sessions === 0 || x.s_days_since_last === null) return null
  const gapTerm = x.s_sessions < 2 || x.s_mean_gap_days === null ? 0 : clamp(x.s_mean_gap_days / 7)
  return fin(0.6 * clamp(x.s_days_since_last / churnHorizonDays) + 0.25 * gapTerm + 0.15 * clamp(1 - x.s_sessions / 10), 0, 1)
}

export interface GoalProbability {
  P: number | null
  target: number | null
  sigma: number | null
  ci: [number, number] | null
}

/**
 * P ∈ [0, 1] = 1 − Φ((target − μ)/σ). Bayesian: σ² = se² + τ²·h (posterior predictive), and the
 * 95% interval of P propagates the uncertainty of μ itself: P at μ ∓ 1.96·se with the same σ.
 */
export function goalProbability(x: Pick<KpiInputs, 'theta_latest' | 'se_latest' | 'goal_target'>, o: Pick<KpiOptions, 'target' | 'bayesian' | 'tau2' | 'horizonWeeks'>): GoalProbability {
  const target = x.goal_target ?? o.target
  const mu = x.theta_latest
  const se = x.se_latest
  if (mu === null || se === null || !Number.isFinite(se) || se <= 0) return { P: null, target: mu === null ? null : target, sigma: null, ci: null }
  if (!o.bayesian) return { P: fin(1 - normalCdf((target - mu) / se), 0, 1), target, sigma: null, ci: null }
  const sigma = Math.sqrt(se * se + o.tau2 * o.horizonWeeks)
  const p = (m: number) => clamp(1 - normalCdf((target - m) / sigma))
  return { P: fin(p(mu), 0, 1), target, sigma, ci: [p(mu - 1.96 * se), p(mu + 1.96 * se)] }
}

/** All KPIs of one user (the keys compute-kpis owns in weekly_kpi.kpis). */
export function computeKpis(x: KpiInputs, o: KpiOptions): Kpis {
  const I = improvement(x)
  const P = goalProbability(x, o)
  const k: Kpis = {
    I_t: I.value,
    E_t: timeEfficiency(x),
    R_t: recovery(x),
    A_t: engagement(x),
    P: P.P,
    S: churnRisk(x, o.churnHorizonDays),
    I_mode: I.mode,
    n_recent: x.n_recent,
    P_target: P.target,
    P_mode: o.bayesian ? 'bayesian' : 'plain',
  }
  if (o.bayesian) {
    k.sigma = P.sigma
    k.P_ci = P.ci
  }
  return k
}

/** τ² floor (SPEC: "floor 0.01"). */
export const TAU2_FLOOR = 0.01
