/**
 * The E-step of Bock & Aitkin (1981) over sparse data, in log space.
 *
 * For person i with responses y_ij on the items j ∈ S_i and quadrature nodes θ_q with log prior
 * weights log w_q:
 *   log L_iq = Σ_{j∈S_i} log P_j(y_ij | θ_q)                     (local independence)
 *   post_iq  = w_q L_iq / Σ_q' w_q' L_iq'                         (posterior on the grid)
 *   logLik  += log Σ_q w_q L_iq                                   (marginal log-likelihood)
 * and the "artificial data" of the M-step are accumulated per item, node and response value:
 *   counts[(2j + y)·Q + q] += post_iq   for each response y_ij = y,
 * so n_jq = counts[2j] + counts[2j+1] (expected examinees at θ_q) and r_jq = counts[2j+1]
 * (expected correct). Summing logs and subtracting the row maximum before exponentiating keeps
 * long tests from underflowing.
 *
 * The log table holds logT[(2j + y)·Q + q] = log P_j(y | θ_q), and `cells[k] = (2·item + y)·Q`
 * is precomputed per observation so the hot loop is a plain contiguous add.
 */
export interface EstepInput {
  rowPtr: Int32Array
  /** Offset (2·item + y)·Q of each observation into the log table / counts. */
  cells: Int32Array
  Q: number
}

export interface EstepOutput {
  logLik: number
  /** 2·J·Q expected counts. */
  counts: Float64Array
  /** Σ_i post_iq over persons with at least one response. */
  nodeTotals: Float64Array
  /** When requested: each person's EAP (posterior mean) and posterior SD; NaN for persons without responses. */
  theta?: Float64Array
  se?: Float64Array
  /** When requested: −Σ_i Cov_post_i[s_i], upper triangle of P × P (missing-info.ts). */
  missing?: Float64Array<ArrayBufferLike>
}

/** Optional per-person outputs of an E-step: posterior mean and SD on the grid (EAP scores). */
export interface EapOut {
  nodes: Float64Array
  theta: Float64Array
  se: Float64Array
}

/** Builds cells for the persons×items data restricted to the items where `include[j]` is 1. */
export function buildCells(rowPtr: Int32Array, items: Int32Array, resp: Uint8Array, Q: number, include?: Uint8Array): { rowPtr: Int32Array; cells: Int32Array } {
  const nP = rowPtr.length - 1
  const outPtr = new Int32Array(nP + 1)
  let m = 0
  if (!include) m = items.length
  else for (let k = 0; k < items.length; k++) m += include[items[k]]
  const cells = new Int32Array(m)
  let o = 0
  for (let i = 0; i < nP; i++) {
    outPtr[i] = o
    for (let k = rowPtr[i]; k < rowPtr[i + 1]; k++) {
      const j = items[k]
      if (include && !include[j]) continue
      cells[o++] = (2 * j + resp[k]) * Q
    }
  }
  outPtr[nP] = o
  return { rowPtr: outPtr, cells }
}

/**
 * acc[q] += Σ_k logT[cells[k] + q] for k in [s, e), q in [lo, hi]. Four responses per pass halve
 * the loads and stores of acc (about 2× faster in V8 than one at a time).
 */
export function accumulate(acc: Float64Array, logT: Float64Array, cells: Int32Array, s: number, e: number, lo: number, hi: number): void {
  let k = s
  for (; k + 3 < e; k += 4) {
    const o1 = cells[k]
    const o2 = cells[k + 1]
    const o3 = cells[k + 2]
    const o4 = cells[k + 3]
    for (let q = lo; q <= hi; q++) acc[q] += logT[o1 + q] + logT[o2 + q] + (logT[o3 + q] + logT[o4 + q])
  }
  for (; k < e; k++) {
    const off = cells[k]
    for (let q = lo; q <= hi; q++) acc[q] += logT[off + q]
  }
}

/** counts[cells[k] + q] += post[q] for k in [s, e), q in [lo, hi] (a person's items are distinct, so the four targets never alias). */
export function scatter(counts: Float64Array, post: Float64Array, cells: Int32Array, s: number, e: number, lo: number, hi: number): void {
  let k = s
  for (; k + 3 < e; k += 4) {
    const o1 = cells[k]
    const o2 = cells[k + 1]
    const o3 = cells[k + 2]
    const o4 = cells[k + 3]
    for (let q = lo; q <= hi; q++) {
      const v = post[q]
      counts[o1 + q] += v
      counts[o2 + q] += v
      counts[o3 + q] += v
      counts[o4 + q] += v
    }
  }
  for (; k < e; k++) {
    const off = cells[k]
    for (let q = lo; q <= hi; q++) counts[off + q] += post[q]
  }
}

/**
 * Per-person posterior support from the previous E-step (first and last node with posterior mass
 * above 1e-15). The next E-step starts from that window widened by two nodes and falls back to the
 * full grid when mass reaches the window's edge, so results equal the full computation to ~1e-15
 * while long tests (narrow posteriors) touch a third to a half of the 61 nodes.
 */
export interface PosteriorWindows {
  lo: Uint8Array
  hi: Uint8Array
}

export function newWindows(nPersons: number, Q: number): PosteriorWindows {
  return { lo: new Uint8Array(nPersons), hi: new Uint8Array(nPersons).fill(Q - 1) }
}

const EDGE = 1e-15
const MARGIN = 2

/**
 * Runs the E-step for persons [p0, p1), adding into `counts` and `nodeTotals` (not cleared here),
 * and returns that range's marginal log-likelihood. With `win`, each person's sums run over their
 * posterior window (see PosteriorWindows), which is then updated.
 */
export function estepRange(
  input: EstepInput,
  logT: Float64Array,
  logPrior: Float64Array,
  counts: Float64Array,
  nodeTotals: Float64Array,
  p0: number,
  p1: number,
  win?: PosteriorWindows,
  eap?: EapOut,
  /** The standard errors' missing information, fed each converged posterior (missing-info.ts). */
  mi?: { person(post: Float64Array, lo: number, hi: number, cells: Int32Array, s0: number, e0: number): void },
): number {
  const { rowPtr, cells, Q } = input
  const acc = new Float64Array(Q)
  let ll = 0
  for (let i = p0; i < p1; i++) {
    const s = rowPtr[i]
    const e = rowPtr[i + 1]
    if (s === e) {
      if (eap) eap.theta[i] = eap.se[i] = NaN
      continue
    }
    let lo = 0
    let hi = Q - 1
    if (win) {
      lo = win.lo[i] > MARGIN ? win.lo[i] - MARGIN : 0
      hi = win.hi[i] + MARGIN < Q - 1 ? win.hi[i] + MARGIN : Q - 1
    }
    for (;;) {
      for (let q = lo; q <= hi; q++) acc[q] = logPrior[q]
      accumulate(acc, logT, cells, s, e, lo, hi)
      let max = -Infinity
      for (let q = lo; q <= hi; q++) if (acc[q] > max) max = acc[q]
      let sum = 0
      for (let q = lo; q <= hi; q++) {
        const v = Math.exp(acc[q] - max)
        acc[q] = v
        sum += v
      }
      const inv = 1 / sum
      if ((lo > 0 && acc[lo] * inv > EDGE) || (hi < Q - 1 && acc[hi] * inv > EDGE)) {
        // Posterior mass reaches the window edge: redo on the full grid.
        lo = 0
        hi = Q - 1
        continue
      }
      ll += max + Math.log(sum)
      // Nodes whose posterior mass is below 1e-15 cannot change the counts in double precision;
      // skipping them shrinks the scatter to the posterior's support (a few SDs around θ̂).
      let qlo = hi
      let qhi = lo
      for (let q = lo; q <= hi; q++) {
        const v = acc[q] * inv
        acc[q] = v
        nodeTotals[q] += v
        if (v > EDGE) {
          if (q < qlo) qlo = q
          qhi = q
        }
      }
      if (qhi < qlo) {
        qlo = lo
        qhi = hi
      }
      if (win) {
        win.lo[i] = qlo
        win.hi[i] = qhi
      }
      if (eap) {
        let m1 = 0
        let m2 = 0
        for (let q = lo; q <= hi; q++) {
          const t = eap.nodes[q]
          m1 += acc[q] * t
          m2 += acc[q] * t * t
        }
        eap.theta[i] = m1
        eap.se[i] = Math.sqrt(Math.max(0, m2 - m1 * m1))
      }
      mi?.person(acc, qlo, qhi, cells, s, e)
      scatter(counts, acc, cells, s, e, qlo, qhi)
      break
    }
  }
  return ll
}

/**
 * Fills logT with log P_j(y | θ_q) for items with slope a, intercept d, lower asymptote c
 * (Float64Arrays of length J). log σ(z) is computed as −log1p(e^(−z)) to stay accurate in the tails.
 */
export function fillLogTable(nodes: Float64Array, a: Float64Array, d: Float64Array, c: Float64Array, logT: Float64Array): Float64Array {
  const Q = nodes.length
  const J = a.length
  for (let j = 0; j < J; j++) {
    const o0 = 2 * j * Q
    const o1 = o0 + Q
    const aj = a[j]
    const dj = d[j]
    const cj = c[j]
    for (let q = 0; q < Q; q++) {
      const z = aj * nodes[q] + dj
      // log σ(z) and log σ(−z), stably.
      const lp = z >= 0 ? -Math.log1p(Math.exp(-z)) : z - Math.log1p(Math.exp(z))
      const lq = lp - z
      if (cj > 0) {
        // P = c + (1 − c)σ(z); 1 − P = (1 − c)σ(−z)
        logT[o1 + q] = Math.log(cj + (1 - cj) * Math.exp(lp))
        logT[o0 + q] = Math.log1p(-cj) + lq
      } else {
        logT[o1 + q] = lp
        logT[o0 + q] = lq
      }
    }
  }
  return logT
}
