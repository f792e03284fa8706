import { guessingPriorTerms, logit, sigmoid, type GuessingPrior } from './model.js'

/**
 * M-step of Bock–Aitkin EM for one item: maximise the expected complete-data log-likelihood
 *   f(ψ) = Σ_q r_q log P(θ_q; ψ) + (n_q − r_q) log(1 − P(θ_q; ψ))  [+ log prior]
 * given the expected counts r_q (correct) and n_q (examinees) at each node
 * (Bock & Aitkin 1981, eq. 12; Baker & Kim 2004, §6.3).
 *
 * ψ = (a, d, γ = logit c). Which components are free depends on the model:
 * 1PL/Rasch [d]; 2PL [a, d]; 3PL [a, d, γ].
 *
 * Derivatives with ℓ'(P) = (r − nP)/(P(1 − P)) and ℓ''(P) = −r/P² − (n − r)/(1 − P)²:
 *   ∇f = Σ_q ℓ' ∇P,   ∇²f = Σ_q ℓ'' ∇P∇Pᵀ + ℓ' ∇²P,
 *   ∂P/∂a = (1−c)s(1−s)θ, ∂P/∂d = (1−c)s(1−s), ∂P/∂γ = (1−s)c(1−c), s = σ(aθ + d).
 * With c = 0 these reduce to the logistic-regression forms ∇f = Σ (r − ns)(θ, 1),
 * ∇²f = −Σ n s(1−s)(θ, 1)(θ, 1)ᵀ, which we use directly for accuracy.
 */
export type FreeSet = 'd' | 'ad' | 'adg'

export interface ItemState {
  a: number
  d: number
  /** Lower asymptote c on the probability scale (0 unless 3PL). */
  c: number
}

export interface ItemDerivs {
  f: number
  /** Gradient in (a, d, γ) order (γ entry 0 when c is not free). */
  g: Float64Array
  /** Row-major 3×3 Hessian. */
  H: Float64Array
}

const C_MIN = 1e-8
const C_MAX = 1 - 1e-8

export function itemDerivs(nodes: Float64Array, r: Float64Array, n: Float64Array, st: ItemState, withC: boolean, prior: GuessingPrior | null): ItemDerivs {
  const Q = nodes.length
  const g = new Float64Array(3)
  const H = new Float64Array(9)
  let f = 0
  const { a, d } = st
  if (!withC) {
    const c = st.c
    if (c === 0) {
      for (let q = 0; q < Q; q++) {
        const t = nodes[q]
        const z = a * t + d
        const s = sigmoid(z)
        const lp = z >= 0 ? -Math.log1p(Math.exp(-z)) : z - Math.log1p(Math.exp(z))
        const rq = r[q]
        const nq = n[q]
        f += rq * lp + (nq - rq) * (lp - z)
        const res = rq - nq * s
        g[0] += res * t
        g[1] += res
        const w = nq * s * (1 - s)
        H[0] -= w * t * t
        H[1] -= w * t
        H[4] -= w
      }
      H[3] = H[1]
      return { f, g, H }
    }
  }
  const c = st.c
  const gg = c * (1 - c)
  for (let q = 0; q < Q; q++) {
    const t = nodes[q]
    const z = a * t + d
    const s = sigmoid(z)
    const sm = sigmoid(-z)
    const P = c + (1 - c) * s
    const Pm = Math.max((1 - c) * sm, 1e-300)
    const rq = r[q]
    const nq = n[q]
    f += rq * Math.log(P) + (nq - rq) * Math.log(Pm)
    const l1 = (rq - nq * P) / (P * Pm)
    const l2 = -rq / (P * P) - (nq - rq) / (Pm * Pm)
    const ss = s * sm
    const pz = (1 - c) * ss
    const u0 = pz * t
    const u1 = pz
    const u2 = withC ? sm * gg : 0
    g[0] += l1 * u0
    g[1] += l1 * u1
    g[2] += l1 * u2
    // second derivatives of P
    const pzz = pz * (1 - 2 * s)
    const paa = pzz * t * t
    const pad = pzz * t
    const pdd = pzz
    const pag = withC ? -gg * ss * t : 0
    const pdg = withC ? -gg * ss : 0
    const pgg = withC ? sm * gg * (1 - 2 * c) : 0
    H[0] += l2 * u0 * u0 + l1 * paa
    H[1] += l2 * u0 * u1 + l1 * pad
    H[2] += l2 * u0 * u2 + l1 * pag
    H[4] += l2 * u1 * u1 + l1 * pdd
    H[5] += l2 * u1 * u2 + l1 * pdg
    H[8] += l2 * u2 * u2 + l1 * pgg
  }
  if (withC && prior) {
    const pt = guessingPriorTerms(prior, c)
    f += pt.value
    g[2] += pt.d1
    H[8] += pt.d2
  }
  H[3] = H[1]
  H[6] = H[2]
  H[7] = H[5]
  return { f, g, H }
}

/** Indices of the free components of (a, d, γ). */
export function freeIndices(free: FreeSet): number[] {
  return free === 'd' ? [1] : free === 'ad' ? [0, 1] : [0, 1, 2]
}

/** Solves the small symmetric system A x = b (A negative definite expected) by Gaussian elimination with partial pivoting; returns null if singular. */
export function solveSmall(A: number[][], b: number[]): number[] | null {
  const n = b.length
  const M = A.map((row, i) => [...row, b[i]])
  for (let k = 0; k < n; k++) {
    let piv = k
    for (let i = k + 1; i < n; i++) if (Math.abs(M[i][k]) > Math.abs(M[piv][k])) piv = i
    if (!(Math.abs(M[piv][k]) > 1e-300)) return null
    ;[M[k], M[piv]] = [M[piv], M[k]]
    for (let i = k + 1; i < n; i++) {
      const m = M[i][k] / M[k][k]
      for (let j = k; j <= n; j++) M[i][j] -= m * M[k][j]
    }
  }
  const x = new Array<number>(n).fill(0)
  for (let i = n - 1; i >= 0; i--) {
    let s = M[i][n]
    for (let j = i + 1; j < n; j++) s -= M[i][j] * x[j]
    x[i] = s / M[i][i]
  }
  return x
}

function isNegDef(A: number[][]): boolean {
  // Cholesky of −A.
  const n = A.length
  const L = A.map(() => new Array<number>(n).fill(0))
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let s = -A[i][j]
      for (let k = 0; k < j; k++) s -= L[i][k] * L[j][k]
      if (i === j) {
        if (!(s > 0)) return false
        L[i][i] = Math.sqrt(s)
      } else L[i][j] = s / L[j][j]
    }
  }
  return true
}

export interface MstepOptions {
  free: FreeSet
  prior: GuessingPrior | null
  maxIter?: number
  tol?: number
}

/**
 * Maximises f for one item by Newton–Raphson with step halving (Baker & Kim 2004, §6.3); when the
 * Hessian is not negative definite (possible for the 3PL far from the optimum) it takes a scaled
 * gradient step instead. Returns the new state.
 */
export function mstepItem(nodes: Float64Array, r: Float64Array, n: Float64Array, start: ItemState, opts: MstepOptions): ItemState {
  const idx = freeIndices(opts.free)
  const withC = opts.free === 'adg'
  const maxIter = opts.maxIter ?? 30
  const tol = opts.tol ?? 1e-9
  let st: ItemState = { ...start }
  if (withC) st.c = Math.min(C_MAX, Math.max(C_MIN, st.c))
  let cur = itemDerivs(nodes, r, n, st, withC, opts.prior)
  for (let iter = 0; iter < maxIter; iter++) {
    const A = idx.map((i) => idx.map((j) => cur.H[i * 3 + j]))
    const b = idx.map((i) => cur.g[i])
    let step: number[] | null = isNegDef(A) ? solveSmall(A, b) : null
    if (step) step = step.map((v) => -v)
    else {
      // Gradient ascent scaled by the diagonal curvature.
      step = idx.map((i, k) => b[k] / Math.max(1, Math.abs(cur.H[i * 3 + i])))
    }
    // Keep steps bounded so a flat likelihood cannot throw the item far away.
    const maxStep = Math.max(...step.map(Math.abs))
    if (maxStep > 1) step = step.map((v) => v / maxStep)
    let lambda = 1
    let accepted = false
    let next: ItemState = st
    let nd: ItemDerivs = cur
    for (let h = 0; h < 30; h++) {
      next = applyStep(st, idx, step, lambda)
      nd = itemDerivs(nodes, r, n, next, withC, opts.prior)
      if (Number.isFinite(nd.f) && nd.f >= cur.f - 1e-12 * Math.abs(cur.f)) {
        accepted = true
        break
      }
      lambda /= 2
    }
    if (!accepted) break
    const moved = Math.max(...step.map((v) => Math.abs(v * lambda)))
    st = next
    cur = nd
    if (moved < tol) break
  }
  return st
}

function applyStep(st: ItemState, idx: number[], step: number[], lambda: number): ItemState {
  const out = { ...st }
  idx.forEach((i, k) => {
    const v = step[k] * lambda
    if (i === 0) out.a = st.a + v
    else if (i === 1) out.d = st.d + v
    else out.c = Math.min(C_MAX, Math.max(C_MIN, sigmoid(logit(st.c) + v)))
  })
  return out
}
