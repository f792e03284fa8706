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
 * approximated to a relative error far below the sampling error (≤ 0.1% on every reference set
 * against the full-grid sum). The rank of each person's term is K − 1, so the work per person is
 * (K − 1)·p²/2 for p parameters — about one E-step for sparse designs.
 *
 * The same kernel runs on the main thread and in the E-step workers (parallel.ts), each over
 * its own contiguous person range and its own output matrix; the caller sums them.
 */
/** What the missing-information kernel needs besides the posteriors. */
export interface MissingInfoParams {
  Q: number
  nodes: Float64Array
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
  /** Total parameter count: the result is P × P, row-major, upper triangle only. */
  P: number
  /** Rule nodes per person; 0 chooses by the person's item count (see `rulesFor`). */
  ruleNodes: number
  /** Use every grid node (Louis' identity without the rule; tests and comparisons). */
  exact: boolean
  /** Item-pair blocks larger than this are summed band by band (default 512 KiB; tests vary it). */
  tileBytes?: number
}

/** The standalone form (posteriors recomputed here): the data, the log table and the prior. */
export interface MissingInfoInput extends MissingInfoParams {
  rowPtr: Int32Array
  /** (2·item + y)·Q of each observation (items with status ≠ 0 only), as the E-step uses. */
  cells: Int32Array
  /** log P_j(y | θ_q) at the final estimates, as the E-step's log table. */
  logT: Float64Array
  /** Log prior weights of the nodes (normalised N(mean, variance)). */
  logW: Float64Array
  /**
   * Each person's posterior mean and SD from the final E-step, when known: the posterior is then
   * summed over θ̂ ± 8 SD only (and over the whole grid if it reaches that window's edge).
   */
  center?: Float64Array
  spread?: Float64Array
}

/** Half-width of the posterior window around θ̂ in posterior SDs (a normal tail beyond 8 SD is < 1e-15). */
const WINDOW_SD = 8

/** Item-pair blocks up to this size are summed in place; larger ones band by band (see MissingInfo.tiled). */
const TILE_BYTES = 512 * 1024

/** More rule nodes than this add nothing measurable (and the recurrence loses accuracy). */
const MAX_RULE = 8

/** Posterior weights below this share of the total are dropped (they cannot move a sum of order one). */
const TAIL = 1e-13

/** Most responses of one person in [p0, p1): sizes the per-person buffers. */
export function maxResponses(rowPtr: Int32Array, p0: number, p1: number): number {
  let maxN = 0
  for (let i = p0; i < p1; i++) maxN = Math.max(maxN, rowPtr[i + 1] - rowPtr[i])
  return maxN
}

/**
 * Accumulates −Σ_i Cov_post_i[s_i] person by person from each person's normalised posterior on
 * the grid. The E-step calls `person` at the converged estimates (so the posteriors are computed
 * once, for the log-likelihood, the counts and this); `result` gives the upper triangle of the
 * P × P matrix.
 */
export class MissingInfo {
  private readonly p: MissingInfoParams
  private readonly out: Float64Array<ArrayBufferLike>
  private readonly nGroup: number
  private readonly nEst: number
  private readonly blk: Float64Array
  private readonly posOf: Int32Array
  /**
   * Large banks: the item-pair blocks (nEst² · b² doubles: 8 MB for 500 2PL items) do not fit a
   * core's cache, and scattering each person's pairs into them costs a memory round trip per pair
   * (measured: 2.6 s of 4.5 s for 100k persons × 30 of 500 items). Then each person's vectors are
   * kept (compactly) and the blocks are summed a band of rows at a time (result()), every band
   * small enough to stay in cache.
   */
  private readonly tiled: boolean
  private readonly tileBytes: number
  private keptVals = new Float64Array(0)
  private keptPos = new Int32Array(0)
  private keptMeta = new Int32Array(0)
  private nVals = 0
  private nPos = 0
  private nKept = 0
  private readonly commonSlope: boolean
  private readonly a1: number
  private readonly expNegD: Float64Array
  private readonly maxP: number
  private readonly loc: Int32Array
  private readonly itemOf: Int32Array
  private readonly yOf: Uint8Array
  private readonly tk: Float64Array
  private readonly wk: Float64Array
  private readonly S: Float64Array
  private readonly m: Float64Array
  private readonly V: Float64Array
  private readonly M: Float64Array
  private readonly scratch: RuleScratch

  /** `responses`: how many responses the caller will feed (sizes the kept vectors of large banks up front). */
  constructor(params: MissingInfoParams, maxItems: number, out: Float64Array<ArrayBufferLike> = new Float64Array(params.P * params.P), responses = 0) {
    const { Q, P, perItem, status, a, d } = params
    this.p = params
    this.out = out
    this.nGroup = (params.freeMean ? 1 : 0) + (params.freeVar ? 1 : 0)
    this.nEst = (P - this.nGroup) / perItem
    const blockBytes = this.nEst * this.nEst * perItem * perItem * 8
    this.tileBytes = params.tileBytes ?? TILE_BYTES
    this.tiled = blockBytes > this.tileBytes
    this.blk = new Float64Array(this.tiled ? 0 : this.nEst * this.nEst * perItem * perItem)
    this.posOf = new Int32Array(Math.max(1, maxItems))
    if (this.tiled && responses > 0) {
      // Two rank vectors per response is the common case (3 rule nodes from 20 items); growth covers the rest.
      this.keptVals = new Float64Array(2 * perItem * responses)
      this.keptPos = new Int32Array(responses)
    }
    let a1 = NaN
    let common = perItem === 1
    for (let j = 0; j < status.length && common; j++) {
      if (status[j] !== 1) continue
      if (Number.isNaN(a1)) a1 = a[j]
      else if (a[j] !== a1) common = false
    }
    this.commonSlope = common
    this.a1 = a1
    this.expNegD = common ? d.map((x) => Math.exp(-x)) : d
    const maxP = maxItems * perItem + this.nGroup
    this.maxP = maxP
    this.loc = new Int32Array(maxP)
    this.itemOf = new Int32Array(maxItems)
    this.yOf = new Uint8Array(maxItems)
    // Rule nodes and weights (at most Q), and score vectors at each rule node: S[k·maxP + x].
    this.tk = new Float64Array(Q)
    this.wk = new Float64Array(Q)
    this.S = new Float64Array(Q * maxP)
    this.m = new Float64Array(maxP)
    this.V = new Float64Array(Q * maxP)
    this.M = new Float64Array(Q * Q)
    this.scratch = { pPrev: new Float64Array(Q), pCur: new Float64Array(Q), pNext: new Float64Array(Q), alpha: new Float64Array(Q), beta: new Float64Array(Q), z: new Float64Array(Q) }
  }

  /** One person: `post` normalised on [lo, hi] (negligible outside), responses cells[s0..e0). */
  person(post: Float64Array, lo: number, hi: number, cells: Int32Array, s0: number, e0: number): void {
    const { Q, nodes, status, pos, a, d, c, perItem, P } = this.p
    const { loc, itemOf, yOf, tk, wk, S, m, maxP, nGroup } = this
    let n = 0
    for (let k = s0; k < e0; k++) {
      const cell = cells[k] / Q
      const j = cell >> 1
      if (status[j] === 1) {
        itemOf[n] = j
        yOf[n] = cell & 1
        for (let u = 0; u < perItem; u++) loc[n * perItem + u] = pos[j] * perItem + u
        n++
      }
    }
    const p = n * perItem + nGroup
    if (p === 0) return
    {
      const gBase = P - nGroup
      let g = n * perItem
      if (this.p.freeMean) loc[g++] = gBase
      if (this.p.freeVar) loc[g++] = gBase + (this.p.freeMean ? 1 : 0)
    }
    // Trim the negligible tails the caller may have left in.
    while (lo < hi && post[lo] <= TAIL) lo++
    while (hi > lo && post[hi] <= TAIL) hi--
    const span = hi - lo + 1
    // How many rule nodes (measured against the full-grid sum on the reference sets): from 20
    // items on 3 nodes are within 0.4% (2PL, 20 items) and 0.02% (60 items, or one parameter per
    // item); from 10 items 4 nodes are within 0.05%; with fewer items the posterior is wide and
    // skewed (LSAT7: 4 nodes 1.4%, 5 nodes 0.1%), so 8.
    const nResp = e0 - s0
    const rule = nResp >= 20 ? 3 : nResp >= 10 ? 4 : MAX_RULE
    let K = this.p.exact ? span : Math.min(span, this.p.ruleNodes > 0 ? this.p.ruleNodes : rule)
    if (K >= span) {
      K = 0
      for (let q = lo; q <= hi; q++) {
        tk[K] = nodes[q]
        wk[K++] = post[q]
      }
    } else {
      K = gaussRule(nodes, post, lo, hi, K, tk, wk, this.scratch)
    }

    // Score vectors at the rule nodes; the constant parts of the group scores cancel in the covariance.
    const v2 = this.p.variance
    const commonSlope = this.commonSlope
    const expNegD = this.expNegD
    for (let k = 0; k < K; k++) {
      const t = tk[k]
      const row = k * maxP
      const et = commonSlope ? Math.exp(-this.a1 * t) : 0
      for (let r = 0; r < n; r++) {
        const j = itemOf[r]
        const y = yOf[r]
        // One slope for every item (1PL, Rasch): exp(−a·t − d_j) = exp(−a·t)·exp(−d_j), one exp per node.
        const s = commonSlope ? 1 / (1 + et * expNegD[j]) : 1 / (1 + Math.exp(-(a[j] * t + d[j])))
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
      const zc = t - this.p.mean
      if (this.p.freeMean) S[row + g++] = zc / v2
      if (this.p.freeVar) S[row + g++] = (zc * zc) / (2 * v2 * v2)
    }
    m.fill(0, 0, p)
    let kMax = 0
    for (let k = 0; k < K; k++) {
      const w = wk[k]
      if (w > wk[kMax]) kMax = k
      const row = k * maxP
      for (let x = 0; x < p; x++) m[x] += w * S[row + x]
    }
    for (let k = 0; k < K; k++) {
      const row = k * maxP
      for (let x = 0; x < p; x++) S[row + x] -= m[x]
    }
    const R = reduceRank(S, maxP, wk, K, kMax, p, this.V, this.M)
    const posOf = this.posOf
    for (let r = 0; r < n; r++) posOf[r] = pos[itemOf[r]]
    if (this.tiled) this.keep(R, n, perItem)
    else accumulateBlocks(this.blk, this.nEst, perItem, this.V, 0, maxP, R, posOf, 0, n, 0, n, 0)
    if (nGroup) accumulateGroup(this.out, P, this.V, maxP, R, loc, n * perItem, nGroup)
  }

  /** Keeps a person's item part of V (R × n·b, compact) and item positions for the banded sum. */
  private keep(R: number, n: number, b: number): void {
    const w = n * b
    const needV = this.nVals + R * w
    if (needV > this.keptVals.length) {
      const grown = new Float64Array(Math.max(needV, this.keptVals.length * 2, 1 << 16))
      grown.set(this.keptVals.subarray(0, this.nVals))
      this.keptVals = grown
    }
    if (this.nPos + n > this.keptPos.length) {
      const grown = new Int32Array(Math.max(this.nPos + n, this.keptPos.length * 2, 1 << 14))
      grown.set(this.keptPos.subarray(0, this.nPos))
      this.keptPos = grown
    }
    if (4 * (this.nKept + 1) > this.keptMeta.length) {
      const grown = new Int32Array(Math.max(4 * (this.nKept + 1), this.keptMeta.length * 2, 1 << 12))
      grown.set(this.keptMeta.subarray(0, 4 * this.nKept))
      this.keptMeta = grown
    }
    const V = this.V
    const maxP = this.maxP
    const kv = this.keptVals
    for (let l = 0; l < R; l++) {
      const src = l * maxP
      const dst = this.nVals + l * w
      for (let x = 0; x < w; x++) kv[dst + x] = V[src + x]
    }
    const kp = this.keptPos
    for (let r = 0; r < n; r++) kp[this.nPos + r] = this.posOf[r]
    const m = 4 * this.nKept
    this.keptMeta[m] = this.nVals
    this.keptMeta[m + 1] = this.nPos
    this.keptMeta[m + 2] = n
    this.keptMeta[m + 3] = R
    this.nVals += R * w
    this.nPos += n
    this.nKept++
  }

  /** The banded sum of the kept persons' item blocks into the output (upper triangle). */
  private foldBands(): void {
    const { perItem: b, P } = this.p
    const nEst = this.nEst
    const bb = b * b
    const rowsPerBand = Math.max(1, Math.floor(this.tileBytes / (nEst * bb * 8)))
    const band = new Float64Array(rowsPerBand * nEst * bb)
    const cursor = new Int32Array(this.nKept)
    const meta = this.keptMeta
    const posStore = this.keptPos
    for (let t0 = 0; t0 < nEst; t0 += rowsPerBand) {
      const t1 = Math.min(nEst, t0 + rowsPerBand)
      band.fill(0)
      for (let i = 0; i < this.nKept; i++) {
        const vBase = meta[4 * i]
        const pBase = meta[4 * i + 1]
        const n = meta[4 * i + 2]
        const R = meta[4 * i + 3]
        // Items are in ascending position, so each person's rows in this band are one run, and the runs move forward band by band.
        const r1 = cursor[i]
        let r2 = r1
        while (r2 < n && posStore[pBase + r2] < t1) r2++
        cursor[i] = r2
        if (r2 > r1) accumulateBlocks(band, nEst, b, this.keptVals, vBase, n * b, R, posStore, pBase, n, r1, r2, t0)
      }
      const out = this.out
      for (let p1 = t0; p1 < t1; p1++) {
        for (let p2 = p1; p2 < nEst; p2++) {
          const o = ((p1 - t0) * nEst + p2) * bb
          for (let u = 0; u < b; u++) {
            const row = (p1 * b + u) * P + p2 * b
            for (let v = p1 === p2 ? u : 0; v < b; v++) out[row + v] -= band[o + u * b + v]
          }
        }
      }
    }
    this.nKept = 0
    this.nVals = 0
    this.nPos = 0
  }

  /** Folds the item blocks into the output (once) and returns it: the upper triangle of −Σ Cov. */
  result(): Float64Array<ArrayBufferLike> {
    if (this.tiled) {
      this.foldBands()
      return this.out
    }
    const { perItem, P } = this.p
    const nEst = this.nEst
    const blk = this.blk
    const out = this.out
    const bb = perItem * perItem
    for (let p1 = 0; p1 < nEst; p1++) {
      for (let p2 = p1; p2 < nEst; p2++) {
        const o = (p1 * nEst + p2) * bb
        for (let u = 0; u < perItem; u++) {
          const row = (p1 * perItem + u) * P + p2 * perItem
          for (let v = p1 === p2 ? u : 0; v < perItem; v++) out[row + v] -= blk[o + u * perItem + v]
        }
      }
    }
    blk.fill(0)
    return out
  }
}

/**
 * The standalone form, for runners that do not compute it in their final E-step: recomputes each
 * posterior (over θ̂ ± 8 SD when the E-step's means and SDs are given) and subtracts
 * Σ_i Cov_post_i[s_i] over persons p0 ≤ i < p1 from `out` (upper triangle).
 */
export function missingInfoRange(inp: MissingInfoInput, p0: number, p1: number, out: Float64Array): void {
  const { rowPtr, cells, Q, nodes, logT, logW, center, spread } = inp
  const h = Q > 1 ? nodes[1] - nodes[0] : 1
  const mi = new MissingInfo(inp, maxResponses(rowPtr, p0, p1), out)
  const post = new Float64Array(Q)
  for (let i = p0; i < p1; i++) {
    const s0 = rowPtr[i]
    const e0 = rowPtr[i + 1]
    if (s0 === e0) continue
    let wlo = 0
    let whi = Q - 1
    if (center && spread && Number.isFinite(center[i]) && Number.isFinite(spread[i])) {
      wlo = Math.max(0, Math.floor((center[i] - WINDOW_SD * spread[i] - nodes[0]) / h) - 1)
      whi = Math.min(Q - 1, Math.ceil((center[i] + WINDOW_SD * spread[i] - nodes[0]) / h) + 1)
      if (whi < wlo) {
        wlo = 0
        whi = Q - 1
      }
    }
    let lo = 0
    let hi = Q - 1
    for (;;) {
      for (let q = wlo; q <= whi; q++) post[q] = logW[q]
      for (let k = s0; k < e0; k++) {
        const off = cells[k]
        for (let q = wlo; q <= whi; q++) post[q] += logT[off + q]
      }
      let mx = -Infinity
      for (let q = wlo; q <= whi; q++) if (post[q] > mx) mx = post[q]
      let sum = 0
      for (let q = wlo; q <= whi; q++) {
        post[q] = Math.exp(post[q] - mx)
        sum += post[q]
      }
      lo = Q
      hi = -1
      for (let q = wlo; q <= whi; q++) {
        post[q] /= sum
        if (post[q] > TAIL) {
          if (q < lo) lo = q
          hi = q
        }
      }
      // Mass at a window edge that is not the grid's: the window was too narrow, use the whole grid.
      if ((wlo > 0 && lo === wlo) || (whi < Q - 1 && hi === whi)) {
        wlo = 0
        whi = Q - 1
        continue
      }
      break
    }
    mi.person(post, lo, hi, cells, s0, e0)
  }
  mi.result()
}

/**
 * Σ_k w_k d_k d_kᵀ with Σ_k w_k d_k = 0 has rank K − 1: eliminating the heaviest node k*,
 * it is Dᵀ M D over the other nodes with M = diag(w) + w wᵀ / w_k*, so with M = L Lᵀ the
 * K − 1 vectors v_l = Σ_k L_kl d_k give the same matrix as Σ_l v_l v_lᵀ — one product fewer
 * per element than summing over the K nodes. Returns K − 1 (vectors written to V).
 */
function reduceRank(S: Float64Array, stride: number, w: Float64Array, K: number, kMax: number, p: number, V: Float64Array, M: Float64Array): number {
  const R = K - 1
  if (R <= 0) return 0
  // Indices of the kept nodes.
  const idx = (l: number) => (l < kMax ? l : l + 1)
  const wm = w[kMax]
  for (let r = 0; r < R; r++) {
    for (let c = 0; c <= r; c++) M[r * R + c] = (r === c ? w[idx(r)] : 0) + (w[idx(r)] * w[idx(c)]) / wm
  }
  // Cholesky in place (lower); M is positive definite because every weight is positive.
  for (let r = 0; r < R; r++) {
    for (let c = 0; c <= r; c++) {
      let s = M[r * R + c]
      for (let k = 0; k < c; k++) s -= M[r * R + k] * M[c * R + k]
      M[r * R + c] = r === c ? Math.sqrt(Math.max(s, 0)) : s / M[c * R + c]
    }
  }
  for (let l = 0; l < R; l++) {
    const out = l * stride
    V.fill(0, out, out + p)
    for (let k = l; k < R; k++) {
      const L = M[k * R + l]
      const src = idx(k) * stride
      for (let x = 0; x < p; x++) V[out + x] += L * S[src + x]
    }
  }
  return R
}

/**
 * blk[(pos1·nEst + pos2)·b² + u·b + v] += Σ_l V[l, r1·b + u] V[l, r2·b + v] for each pair of the
 * person's items r1 ≤ r2: item-pair blocks are contiguous, so a person touches one cache line
 * per pair instead of one per parameter row.
 */
function accumulateBlocks(blk: Float64Array, nEst: number, b: number, V: Float64Array, vBase: number, stride: number, R: number, posOf: Int32Array, pBase: number, n: number, r1Start: number, r1End: number, rowOffset: number): void {
  if (b === 2 && R === 3) {
    const o1 = vBase + stride
    const o2 = vBase + 2 * stride
    for (let r1 = r1Start; r1 < r1End; r1++) {
      const rowBase = (posOf[pBase + r1] - rowOffset) * nEst
      const x = 2 * r1
      const a00 = V[vBase + x]
      const a01 = V[vBase + x + 1]
      const a10 = V[o1 + x]
      const a11 = V[o1 + x + 1]
      const a20 = V[o2 + x]
      const a21 = V[o2 + x + 1]
      for (let r2 = r1; r2 < n; r2++) {
        const y = 2 * r2
        const b00 = V[vBase + y]
        const b01 = V[vBase + y + 1]
        const b10 = V[o1 + y]
        const b11 = V[o1 + y + 1]
        const b20 = V[o2 + y]
        const b21 = V[o2 + y + 1]
        const t = (rowBase + posOf[pBase + r2]) * 4
        blk[t] += a00 * b00 + a10 * b10 + a20 * b20
        blk[t + 1] += a00 * b01 + a10 * b11 + a20 * b21
        blk[t + 2] += a01 * b00 + a11 * b10 + a21 * b20
        blk[t + 3] += a01 * b01 + a11 * b11 + a21 * b21
      }
    }
    return
  }
  if (b === 2 && R === 2) {
    const o1 = vBase + stride
    for (let r1 = r1Start; r1 < r1End; r1++) {
      const rowBase = (posOf[pBase + r1] - rowOffset) * nEst
      const x = 2 * r1
      const a00 = V[vBase + x]
      const a01 = V[vBase + x + 1]
      const a10 = V[o1 + x]
      const a11 = V[o1 + x + 1]
      for (let r2 = r1; r2 < n; r2++) {
        const y = 2 * r2
        const b00 = V[vBase + y]
        const b01 = V[vBase + y + 1]
        const b10 = V[o1 + y]
        const b11 = V[o1 + y + 1]
        const t = (rowBase + posOf[pBase + r2]) * 4
        blk[t] += a00 * b00 + a10 * b10
        blk[t + 1] += a00 * b01 + a10 * b11
        blk[t + 2] += a01 * b00 + a11 * b10
        blk[t + 3] += a01 * b01 + a11 * b11
      }
    }
    return
  }
  if (b === 1 && R <= 3) {
    const o1 = vBase + stride
    const o2 = vBase + 2 * stride
    for (let r1 = r1Start; r1 < r1End; r1++) {
      const rowBase = (posOf[pBase + r1] - rowOffset) * nEst
      const a0 = V[vBase + r1]
      const a1 = R > 1 ? V[o1 + r1] : 0
      const a2 = R > 2 ? V[o2 + r1] : 0
      for (let r2 = r1; r2 < n; r2++) {
        let s00 = a0 * V[vBase + r2]
        if (R > 1) s00 += a1 * V[o1 + r2]
        if (R > 2) s00 += a2 * V[o2 + r2]
        blk[rowBase + posOf[pBase + r2]] += s00
      }
    }
    return
  }
  if (b === 2) {
    for (let r1 = r1Start; r1 < r1End; r1++) {
      const rowBase = (posOf[pBase + r1] - rowOffset) * nEst
      const x = 2 * r1
      for (let r2 = r1; r2 < n; r2++) {
        const y = 2 * r2
        let s00 = 0
        let s01 = 0
        let s10 = 0
        let s11 = 0
        for (let l = 0, o = vBase; l < R; l++, o += stride) {
          const a0 = V[o + x]
          const a1 = V[o + x + 1]
          const b0 = V[o + y]
          const b1 = V[o + y + 1]
          s00 += a0 * b0
          s01 += a0 * b1
          s10 += a1 * b0
          s11 += a1 * b1
        }
        const t = (rowBase + posOf[pBase + r2]) * 4
        blk[t] += s00
        blk[t + 1] += s01
        blk[t + 2] += s10
        blk[t + 3] += s11
      }
    }
    return
  }
  if (b === 1) {
    for (let r1 = r1Start; r1 < r1End; r1++) {
      const rowBase = (posOf[pBase + r1] - rowOffset) * nEst
      for (let r2 = r1; r2 < n; r2++) {
        let s00 = 0
        for (let l = 0, o = vBase; l < R; l++, o += stride) s00 += V[o + r1] * V[o + r2]
        blk[rowBase + posOf[pBase + r2]] += s00
      }
    }
    return
  }
  // b = 3 (3PL): nine sums per pair.
  for (let r1 = r1Start; r1 < r1End; r1++) {
    const rowBase = (posOf[pBase + r1] - rowOffset) * nEst
    const x = 3 * r1
    for (let r2 = r1; r2 < n; r2++) {
      const y = 3 * r2
      let s00 = 0
      let s01 = 0
      let s02 = 0
      let s10 = 0
      let s11 = 0
      let s12 = 0
      let s20 = 0
      let s21 = 0
      let s22 = 0
      for (let l = 0, o = vBase; l < R; l++, o += stride) {
        const a0 = V[o + x]
        const a1 = V[o + x + 1]
        const a2 = V[o + x + 2]
        const b0 = V[o + y]
        const b1 = V[o + y + 1]
        const b2 = V[o + y + 2]
        s00 += a0 * b0
        s01 += a0 * b1
        s02 += a0 * b2
        s10 += a1 * b0
        s11 += a1 * b1
        s12 += a1 * b2
        s20 += a2 * b0
        s21 += a2 * b1
        s22 += a2 * b2
      }
      const t = (rowBase + posOf[pBase + r2]) * 9
      blk[t] += s00
      blk[t + 1] += s01
      blk[t + 2] += s02
      blk[t + 3] += s10
      blk[t + 4] += s11
      blk[t + 5] += s12
      blk[t + 6] += s20
      blk[t + 7] += s21
      blk[t + 8] += s22
    }
  }
}

/** The group parameters' rows (they are the last): out[loc[x], loc[g]] −= Σ_l V[l, x] V[l, g] for every x ≤ g. */
function accumulateGroup(out: Float64Array, P: number, V: Float64Array, stride: number, R: number, loc: Int32Array, nItemPars: number, nGroup: number): void {
  for (let g = nItemPars; g < nItemPars + nGroup; g++) {
    const col = loc[g]
    for (let x = 0; x <= g; x++) {
      let s = 0
      for (let l = 0, o = 0; l < R; l++, o += stride) s += V[o + x] * V[o + g]
      out[loc[x] * P + col] -= s
    }
  }
}

interface RuleScratch {
  pPrev: Float64Array
  pCur: Float64Array
  pNext: Float64Array
  alpha: Float64Array
  beta: Float64Array
  z: Float64Array
}

/**
 * K-node Gauss rule for the discrete measure (nodes[q], w[q]), lo ≤ q ≤ hi: recurrence
 * coefficients by the discretised Stieltjes procedure (on θ centred at the measure's mean, for
 * accuracy), then nodes = eigenvalues of the Jacobi matrix and weights = total mass × (first
 * eigenvector component)² (Golub & Welsch 1969), by implicit QL iterations that carry only the
 * first row of the eigenvectors. Returns the number of nodes written (fewer than K when the
 * measure has fewer distinct support points).
 */
export function gaussRule(nodes: Float64Array, w: Float64Array, lo: number, hi: number, K: number, tOut: Float64Array, wOut: Float64Array, sc: RuleScratch): number {
  const n = hi - lo + 1
  const { alpha, beta, z } = sc
  let pPrev = sc.pPrev
  let pCur = sc.pCur
  let pNext = sc.pNext
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
  let used = Math.min(K, n)
  for (let k = 0; k < used; k++) {
    let norm = 0
    let xm = 0
    for (let t = 0; t < n; t++) {
      const ww = w[lo + t] * pCur[t] * pCur[t]
      norm += ww
      xm += ww * (nodes[lo + t] - mean)
    }
    if (!(norm > 0) || (k > 0 && norm < 1e-280 * normPrev)) {
      used = k
      break
    }
    alpha[k] = xm / norm
    beta[k] = k === 0 ? norm : norm / normPrev
    const bk = k === 0 ? 0 : beta[k]
    for (let t = 0; t < n; t++) pNext[t] = (nodes[lo + t] - mean - alpha[k]) * pCur[t] - bk * pPrev[t]
    const tmp = pPrev
    pPrev = pCur
    pCur = pNext
    pNext = tmp
    normPrev = norm
  }
  K = used
  // d = diagonal (in tOut), e = subdiagonal shifted down by one (in wOut as scratch), z = first row of the eigenvectors.
  const d = tOut
  const e = wOut
  for (let k = 0; k < K; k++) {
    d[k] = alpha[k]
    e[k] = k + 1 < K ? Math.sqrt(beta[k + 1]) : 0
    z[k] = k === 0 ? 1 : 0
  }
  for (let l = 0; l < K; l++) {
    let iter = 0
    for (;;) {
      let m = l
      for (; m < K - 1; m++) {
        const dd = Math.abs(d[m]) + Math.abs(d[m + 1])
        if (Math.abs(e[m]) <= 1e-15 * dd) break
      }
      if (m === l) break
      if (iter++ === 60) break
      let g = (d[l + 1] - d[l]) / (2 * e[l])
      let r = Math.sqrt(g * g + 1)
      g = d[m] - d[l] + e[l] / (g + (g >= 0 ? r : -r))
      let s = 1
      let c = 1
      let p = 0
      let i = m - 1
      let underflow = false
      for (; i >= l; i--) {
        const f = s * e[i]
        const b = c * e[i]
        r = Math.sqrt(f * f + g * g)
        e[i + 1] = r
        if (r === 0) {
          d[i + 1] -= p
          e[m] = 0
          underflow = true
          break
        }
        s = f / r
        c = g / r
        g = d[i + 1] - p
        r = (d[i] - g) * s + 2 * c * b
        p = s * r
        d[i + 1] = g + p
        g = c * r - b
        const fz = z[i + 1]
        z[i + 1] = s * z[i] + c * fz
        z[i] = c * z[i] - s * fz
      }
      if (underflow) continue
      d[l] -= p
      e[l] = g
      e[m] = 0
    }
  }
  for (let k = 0; k < K; k++) {
    tOut[k] = d[k] + mean
    wOut[k] = mass * z[k] * z[k]
  }
  return K
}
