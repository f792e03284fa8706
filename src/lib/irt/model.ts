/**
 * Item response functions and parameterisations.
 *
 * Unidimensional logistic models without the 1.702 scaling constant (as mirt):
 *   P(y = 1 | θ) = c + (1 − c) · σ(a·θ + d),   σ(z) = 1 / (1 + e^(−z)),   b = −d / a.
 * 1PL/Rasch fix a = 1 and c = 0; 2PL fixes c = 0; 3PL estimates c (mirt's g) internally as
 * γ = logit(c) so the EM works on an unbounded scale (Baker & Kim 2004, ch. 4 and 6).
 */
export type IrtModel = '1PL' | 'Rasch' | '2PL' | '3PL'
export const MODELS: readonly IrtModel[] = ['1PL', 'Rasch', '2PL', '3PL']

/** Parameters of one item in IRT (a, b, c) and slope–intercept (a, d) form. */
export interface ItemParams {
  item_id: string
  a: number
  b: number
  c: number
  /** Intercept d = −a·b (mirt's `d`, not an upper asymptote). */
  d: number
}

export function sigmoid(z: number): number {
  return z >= 0 ? 1 / (1 + Math.exp(-z)) : Math.exp(z) / (1 + Math.exp(z))
}

export function logit(p: number): number {
  return Math.log(p / (1 - p))
}

/** P(y = 1 | θ) for slope a, intercept d, lower asymptote c. */
export function irf(theta: number, a: number, d: number, c: number): number {
  return c + (1 - c) * sigmoid(a * theta + d)
}

export function toIrt(item_id: string, a: number, d: number, c: number): ItemParams {
  return { item_id, a, b: -d / a, c, d }
}

/**
 * Prior on the lower asymptote c of a 3PL item.
 * - `beta`: log dbeta(c; α, β) added to the log-likelihood (mirt's `expbeta`: the density of c
 *   itself, no Jacobian for the logit parameterisation).
 * - `logit-normal`: log dnorm(logit c; mean, sd) (mirt's `norm` on logit g).
 */
export type GuessingPrior = { type: 'beta'; alpha: number; beta: number } | { type: 'logit-normal'; mean: number; sd: number }

export const DEFAULT_GUESSING_PRIOR: GuessingPrior = { type: 'beta', alpha: 5, beta: 17 }

function logBetaFn(a: number, b: number): number {
  return lgamma(a) + lgamma(b) - lgamma(a + b)
}

/** Lanczos approximation of log Γ(x), x > 0 (Numerical Recipes, 3rd ed., §6.1). */
export function lgamma(x: number): number {
  const g = 7
  const coef = [
    0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059, 12.507343278686905,
    -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
  ]
  if (x < 0.5) return Math.log(Math.PI / Math.abs(Math.sin(Math.PI * x))) - lgamma(1 - x)
  x -= 1
  let s = coef[0]
  for (let i = 1; i < g + 2; i++) s += coef[i] / (x + i)
  const t = x + g + 0.5
  return 0.5 * Math.log(2 * Math.PI) + (x + 0.5) * Math.log(t) - t + Math.log(s)
}

/**
 * Log prior of c with its first two derivatives with respect to γ = logit(c)
 * (the parameter the M-step moves). For Beta(α, β): log p = (α−1) log c + (β−1) log(1−c) − log B(α, β),
 * d/dγ = (α−1)(1−c) − (β−1)c, d²/dγ² = −(α+β−2)·c(1−c).
 */
export function guessingPriorTerms(prior: GuessingPrior | null, c: number): { value: number; d1: number; d2: number } {
  if (!prior) return { value: 0, d1: 0, d2: 0 }
  if (prior.type === 'beta') {
    const { alpha, beta } = prior
    const value = (alpha - 1) * Math.log(c) + (beta - 1) * Math.log(1 - c) - logBetaFn(alpha, beta)
    return { value, d1: (alpha - 1) * (1 - c) - (beta - 1) * c, d2: -(alpha + beta - 2) * c * (1 - c) }
  }
  const g = logit(c)
  const z = (g - prior.mean) / prior.sd
  return { value: -0.5 * z * z - Math.log(prior.sd) - 0.5 * Math.log(2 * Math.PI), d1: -z / prior.sd, d2: -1 / (prior.sd * prior.sd) }
}
