/**
 * Fixed quadrature grid for the latent trait, as in Bock & Aitkin (1981) and mirt's default:
 * Q = 61 equally spaced nodes on [-6, 6]; the weight of node q is the N(mean, variance) density
 * at θ_q, normalised so the weights sum to 1 (a discrete latent distribution, not Gauss–Hermite).
 */
export interface Grid {
  /** Node positions θ_q. */
  readonly nodes: Float64Array
  readonly size: number
}

export const DEFAULT_QUADPTS = 61
export const DEFAULT_THETA_LIM: readonly [number, number] = [-6, 6]

export function makeGrid(quadpts = DEFAULT_QUADPTS, lim: readonly [number, number] = DEFAULT_THETA_LIM): Grid {
  if (!Number.isInteger(quadpts) || quadpts < 3) throw new RangeError(`quadpts must be an integer >= 3, got ${quadpts}`)
  const nodes = new Float64Array(quadpts)
  const step = (lim[1] - lim[0]) / (quadpts - 1)
  for (let q = 0; q < quadpts; q++) nodes[q] = lim[0] + q * step
  return { nodes, size: quadpts }
}

/** log w_q of the normalised normal weights w_q ∝ exp(−(θ_q − μ)² / (2σ²)), Σ w_q = 1, computed stably (log-sum-exp). */
export function logNormalWeights(grid: Grid, mean = 0, variance = 1, out = new Float64Array(grid.size)): Float64Array {
  if (!(variance > 0)) throw new RangeError(`variance must be > 0, got ${variance}`)
  let max = -Infinity
  for (let q = 0; q < grid.size; q++) {
    const z = grid.nodes[q] - mean
    out[q] = (-z * z) / (2 * variance)
    if (out[q] > max) max = out[q]
  }
  let s = 0
  for (let q = 0; q < grid.size; q++) s += Math.exp(out[q] - max)
  const lse = max + Math.log(s)
  for (let q = 0; q < grid.size; q++) out[q] -= lse
  return out
}
