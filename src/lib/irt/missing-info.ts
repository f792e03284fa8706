/**
 * The missing-information term of Louis' (1982) identity, person by person:
 *   Σ_i Cov_post_i[s_i(θ)],   s_i(θ) = ∂ log f(y_i, θ | ψ)/∂ψ
 * (the complete-data score of person i at ability θ, over the item and group parameters).
 *
 * Taken literally this is a sum over every grid node a person's posterior reaches, with an
 * outer product of the person's whole score vector at each node: O(nodes · p²) per person. The
 * score is a smooth function of θ and each posterior is narrow, so the covariance is computed
 * with a K-node Gauss rule for the person's own posterior on the grid (nodes and weights from
 * the discretised Stieltjes procedure and the eigen-decomposition of the K × K Jacobi matrix):
 * it reproduces the grid posterior's first 2K − 1 moments exactly, so the covariance of any
 * score that is a polynomial of degree < K in θ is exact, and the logistic scores are
 * approximated to a relative error far below the sampling error (K = 4: ≤ 0.1% on every
 * reference set against the full-grid sum). K grows to the full grid (exactly Louis) when a
 * person has few items and the exact sum is as cheap as an E-step.
 *
 * The same kernel runs on the main thread and in the E-step workers (parallel.ts), each over
 * its own contiguous person range and its own output matrix; the caller sums them.
 */
export interface MissingInfoInput {
  rowPtr: Int32Array
  /** (2·item + y)·Q of each observation (items with status ≠ 0 only), as the E-step uses. */
  cells: Int32Array
  Q: number
  nodes: Float64Array
  /** log P_j(y | θ_q) at the final estimates, as the E-step's log table. */
  logT: Float64Array
  /** Log prior weights of the nodes (normalised N(mean, variance)). */
  logW: Float64Array
  status: Uint8Array
  /** Position of each estimated item (status 1) in the parameter vector, in units of `perItem`. */
  pos: Int32Array
  a: Float64Array
  d: Float64Array
  c: Float64Array
  /** 1 (intercept only), 2 (slope, intercept) or 3 (slope, intercept, logit c). */
  perItem: number
  freeMean: boolean
  freeVar: boolean
  mean: number
  variance: number
  /** Total parameter count: the output is P × P, row-major, upper triangle only. */
  P: number
  /** Fewest rule nodes for a person (never more than the nodes their posterior covers). */
  minNodes: number
  /** Work allowed per person, in multiples of its E-step cost (items · Q): K·p²/2 ≤ budget · items · Q. */
  budget: number
  /** Use every grid node (Louis' identity without the rule; tests and comparisons). */
  exact: boolean
}

/** Posterior weights below this share of the total are dropped (they cannot move a sum of order one). */
const TAIL = 1e-13

/**
 * Subtracts Σ_i Cov_post_i[s_i] over persons p0 ≤ i < p1 from `out` (upper triangle of a P × P
 * row-major matrix). `out` is not cleared.
 */
export function missingInfoRange(inp: MissingInfoInput, p0: number, p1: number, out: Float64Array): void {
  const { rowPtr, cells, Q, nodes, logT, logW, status, pos, a, d, c, perItem, P } = inp
  const nGroup = (inp.freeMean ? 1 : 0) + (inp.freeVar ? 1 : 0)
  const gBase = P - nGroup
  const v2 = inp.variance
  let maxN = 0
  for (let i = p0; i < p1; i++) maxN = Math.max(maxN, rowPtr[i + 1] - rowPtr[i])
  const maxP = maxN * perItem + nGroup
  const post = new Float64Array(Q)
  const loc = new Int32Array(maxP)
  const itemOf = new Int32Array(maxN)
  const yOf = new Uint8Array(maxN)
  // Rule nodes and weights (at most Q), and score vectors at each rule node: S[k·maxP + x].
  const tk = new Float64Array(Q)
  const wk = new Float64Array(Q)
  const S = new Float64Array(Q * maxP)
  const m = new Float64Array(maxP)
  const jac = new Float64Array(Q * Q)
  const vec = new Float64Array(Q * Q)
  const pPrev = new Float64Array(Q)
  const pCur = new Float64Array(Q)
  const pNext = new Float64Array(Q)
  const alpha = new Float64Array(Q)
  const beta = new Float64Array(Q)

  for (let i = p0; i < p1; i++) {
    const s0 = rowPtr[i]
    const e0 = rowPtr[i + 1]
    if (s0 === e0) continue
    for (let q = 0; q < Q; q++) post[q] = logW[q]
    let n = 0
    for (let k = s0; k < e0; k++) {
      const off = cells[k]
      for (let q = 0; q < Q; q++) post[q] += logT[off + q]
      const cell = off / Q
      const j = cell >> 1
      if (status[j] === 1) {
        itemOf[n] = j
        yOf[n] = cell & 1
        for (let u = 0; u < perItem; u++) loc[n * perItem + u] = pos[j] * perItem + u
        n++
      }
    }
    const p = n * perItem + nGroup
    if (p === 0) continue
    {
      let g = n * perItem
      if (inp.freeMean) loc[g++] = gBase
      if (inp.freeVar) loc[g++] = gBase + (inp.freeMean ? 1 : 0)
    }
    let mx = -Infinity
    for (let q = 0; q < Q; q++) if (post[q] > mx) mx = post[q]
    let sum = 0
    for (let q = 0; q < Q; q++) {
      post[q] = Math.exp(post[q] - mx)
      sum += post[q]
    }
    let lo = Q
    let hi = -1
    for (let q = 0; q < Q; q++) {
      post[q] /= sum
      if (post[q] > TAIL) {
        if (q < lo) lo = q
        hi = q
      }
    }
    const span = hi - lo + 1
    // How many rule nodes: the full span when that costs no more than `budget` E-steps of this person.
    const affordable = Math.floor((2 * inp.budget * Math.max(1, e0 - s0) * Q) / (p * p))
    let K = inp.exact ? span : Math.min(span, Math.max(inp.minNodes, affordable))
    if (K >= span) {
      K = 0
      for (let q = lo; q <= hi; q++) {
        tk[K] = nodes[q]
        wk[K++] = post[q]
      }
    } else {
      K = gaussRule(nodes, post, lo, hi, K, tk, wk, { jac, vec, pPrev, pCur, pNext, alpha, beta })
    }

    // Score vectors at the rule nodes; the constant parts of the group scores cancel in the covariance.
    for (let k = 0; k < K; k++) {
      const t = tk[k]
      const row = k * maxP
      for (let r = 0; r < n; r++) {
        const j = itemOf[r]
        const y = yOf[r]
        const z = a[j] * t + d[j]
        const s = 1 / (1 + Math.exp(-z))
        const o = row + r * perItem
        const cj = c[j]
        if (perItem === 1) S[o] = y - s
        else if (perItem === 2 || cj === 0) {
          S[o] = (y - s) * t
          S[o + 1] = y - s
          if (perItem === 3) S[o + 2] = 0
        } else {
          const sm = 1 - s
          const Pr = cj + (1 - cj) * s
          const Pm = (1 - cj) * sm
          const l1 = (y - Pr) / (Pr * Pm)
          const g = (1 - cj) * s * sm
          S[o] = l1 * g * t
          S[o + 1] = l1 * g
          S[o + 2] = l1 * sm * cj * (1 - cj)
        }
      }
      let g = n * perItem
      const zc = t - inp.mean
      if (inp.freeMean) S[row + g++] = zc / v2
      if (inp.freeVar) S[row + g++] = (zc * zc) / (2 * v2 * v2)
    }
    m.fill(0, 0, p)
    for (let k = 0; k < K; k++) {
      const w = wk[k]
      const row = k * maxP
      for (let x = 0; x < p; x++) m[x] += w * S[row + x]
    }
    for (let k = 0; k < K; k++) {
      const row = k * maxP
      for (let x = 0; x < p; x++) S[row + x] -= m[x]
    }
    accumulate(out, P, S, maxP, wk, K, loc, p)
  }
}

/**
 * out[loc[x], loc[y]] −= Σ_k w_k D[k, x] D[k, y] for y ≥ x, four rule nodes at a time so each
 * output element is loaded and stored once per four products.
 */
function accumulate(out: Float64Array, P: number, D: Float64Array, stride: number, w: Float64Array, K: number, loc: Int32Array, p: number): void {
  let k = 0
  for (; k + 4 <= K; k += 4) {
    const r0 = k * stride
    const r1 = r0 + stride
    const r2 = r1 + stride
    const r3 = r2 + stride
    const w0 = w[k]
    const w1 = w[k + 1]
    const w2 = w[k + 2]
    const w3 = w[k + 3]
    for (let x = 0; x < p; x++) {
      const a0 = w0 * D[r0 + x]
      const a1 = w1 * D[r1 + x]
      const a2 = w2 * D[r2 + x]
      const a3 = w3 * D[r3 + x]
      const base = loc[x] * P
      for (let y = x; y < p; y++) out[base + loc[y]] -= a0 * D[r0 + y] + a1 * D[r1 + y] + a2 * D[r2 + y] + a3 * D[r3 + y]
    }
  }
  for (; k + 2 <= K; k += 2) {
    const r0 = k * stride
    const r1 = r0 + stride
    const w0 = w[k]
    const w1 = w[k + 1]
    for (let x = 0; x < p; x++) {
      const a0 = w0 * D[r0 + x]
      const a1 = w1 * D[r1 + x]
      const base = loc[x] * P
      for (let y = x; y < p; y++) out[base + loc[y]] -= a0 * D[r0 + y] + a1 * D[r1 + y]
    }
  }
  for (; k < K; k++) {
    const r0 = k * stride
    const w0 = w[k]
    for (let x = 0; x < p; x++) {
      const a0 = w0 * D[r0 + x]
      const base = loc[x] * P
      for (let y = x; y < p; y++) out[base + loc[y]] -= a0 * D[r0 + y]
    }
  }
}

interface RuleScratch {
  jac: Float64Array
  vec: Float64Array
  pPrev: Float64Array
  pCur: Float64Array
  pNext: Float64Array
  alpha: Float64Array
  beta: Float64Array
}

/**
 * K-node Gauss rule for the discrete measure (nodes[q], w[q]), lo ≤ q ≤ hi: recurrence
 * coefficients by the discretised Stieltjes procedure (on θ centred at the measure's mean, for
 * accuracy), then nodes = eigenvalues of the Jacobi matrix and weights = total mass × (first
 * eigenvector component)² (Golub & Welsch 1969). Returns the number of nodes written.
 */
export function gaussRule(nodes: Float64Array, w: Float64Array, lo: number, hi: number, K: number, tOut: Float64Array, wOut: Float64Array, sc: RuleScratch): number {
  const n = hi - lo + 1
  const { jac, vec, pPrev, pCur, pNext, alpha, beta } = sc
  let mass = 0
  let mean = 0
  for (let q = lo; q <= hi; q++) {
    mass += w[q]
    mean += w[q] * nodes[q]
  }
  mean /= mass
  pPrev.fill(0, 0, n)
  pCur.fill(1, 0, n)
  let normPrev = 1
  let used = K
  for (let k = 0; k < K; k++) {
    let norm = 0
    let xm = 0
    for (let t = 0; t < n; t++) {
      const ww = w[lo + t] * pCur[t] * pCur[t]
      norm += ww
      xm += ww * (nodes[lo + t] - mean)
    }
    if (!(norm > 0) || (k > 0 && norm / normPrev < 1e-300)) {
      used = k
      break
    }
    alpha[k] = xm / norm
    beta[k] = k === 0 ? norm : norm / normPrev
    for (let t = 0; t < n; t++) pNext[t] = (nodes[lo + t] - mean - alpha[k]) * pCur[t] - (k === 0 ? 0 : beta[k]) * pPrev[t]
    pPrev.set(pCur.subarray(0, n))
    pCur.set(pNext.subarray(0, n))
    normPrev = norm
  }
  K = used
  // Symmetric tridiagonal Jacobi matrix, diagonalised by cyclic Jacobi rotations (K is small).
  jac.fill(0, 0, K * K)
  vec.fill(0, 0, K * K)
  for (let k = 0; k < K; k++) {
    jac[k * K + k] = alpha[k]
    vec[k * K + k] = 1
    if (k > 0) {
      const b = Math.sqrt(beta[k])
      jac[k * K + k - 1] = b
      jac[(k - 1) * K + k] = b
    }
  }
  for (let sweep = 0; sweep < 60; sweep++) {
    let off = 0
    let diag = 0
    for (let r = 0; r < K; r++) {
      diag += jac[r * K + r] ** 2
      for (let s = r + 1; s < K; s++) off += jac[r * K + s] ** 2
    }
    if (off <= 1e-30 * (diag + 1e-300)) break
    for (let r = 0; r < K; r++) {
      for (let s = r + 1; s < K; s++) {
        const ars = jac[r * K + s]
        if (Math.abs(ars) < 1e-300) continue
        const th = (jac[s * K + s] - jac[r * K + r]) / (2 * ars)
        const t = (th >= 0 ? 1 : -1) / (Math.abs(th) + Math.sqrt(th * th + 1))
        const cs = 1 / Math.sqrt(t * t + 1)
        const sn = t * cs
        for (let k = 0; k < K; k++) {
          const akr = jac[k * K + r]
          const aks = jac[k * K + s]
          jac[k * K + r] = cs * akr - sn * aks
          jac[k * K + s] = sn * akr + cs * aks
        }
        for (let k = 0; k < K; k++) {
          const ark = jac[r * K + k]
          const ask = jac[s * K + k]
          jac[r * K + k] = cs * ark - sn * ask
          jac[s * K + k] = sn * ark + cs * ask
        }
        for (let k = 0; k < K; k++) {
          const vkr = vec[k * K + r]
          const vks = vec[k * K + s]
          vec[k * K + r] = cs * vkr - sn * vks
          vec[k * K + s] = sn * vkr + cs * vks
        }
      }
    }
  }
  for (let k = 0; k < K; k++) {
    tOut[k] = jac[k * K + k] + mean
    wOut[k] = mass * vec[k] * vec[k]
  }
  return K
}
