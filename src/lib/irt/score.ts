import type { ResponseMatrix } from './data.js'
import { accumulate, fillLogTable } from './estep.js'
import { DEFAULT_QUADPTS, DEFAULT_THETA_LIM, logNormalWeights, makeGrid, type Grid } from './grid.js'
import { sigmoid } from './model.js'

/** Item parameters for scoring: IRT (a, b, c) or slope–intercept (a, d, c). */
export interface ScoringItem {
  item_id?: string
  a: number
  b?: number
  c?: number
  d?: number
}

export type ScoreMethod = 'eap' | 'map' | 'ml'

export interface NormalPrior {
  mean: number
  variance: number
}

export interface ScoreOptions {
  method?: ScoreMethod
  /**
   * Prior: normal (EAP/MAP; default N(0, 1)), or for EAP a grid posterior (e.g. a person's stored
   * posterior from earlier sessions) applied to every person scored. Its grid replaces quadpts/thetaLim.
   */
  prior?: NormalPrior | GridPosterior
  quadpts?: number
  thetaLim?: readonly [number, number]
}

export interface ScoreResult {
  method: ScoreMethod
  theta: Float64Array
  se: Float64Array
  /** Number of responses used per person. */
  nResponses: Int32Array
  /**
   * ML only: 1 where the likelihood has no finite maximum (all correct / all wrong) or the
   * maximum lies beyond the θ range; θ is then the range bound and the SE is NaN.
   */
  extreme: Uint8Array
  personIds?: string[]
  /** Item ids present in the responses but without parameters (their responses are ignored). */
  unknownItems: string[]
}

/** Slope, intercept and asymptote arrays from parameters given as (a, b, c) or (a, d, c). */
export function itemArrays(items: ScoringItem[]): { a: Float64Array; d: Float64Array; c: Float64Array } {
  const J = items.length
  const a = new Float64Array(J)
  const d = new Float64Array(J)
  const c = new Float64Array(J)
  items.forEach((it, j) => {
    if (!Number.isFinite(it.a)) throw new RangeError(`item ${it.item_id ?? j + 1}: slope a must be a finite number`)
    a[j] = it.a
    const dd = it.d !== undefined && Number.isFinite(it.d) ? it.d : it.b !== undefined && Number.isFinite(it.b) ? -it.a * it.b : NaN
    if (!Number.isFinite(dd)) throw new RangeError(`item ${it.item_id ?? j + 1}: needs b or d`)
    d[j] = dd
    const cc = it.c ?? 0
    if (!(cc >= 0 && cc < 1)) throw new RangeError(`item ${it.item_id ?? j + 1}: c must be in [0, 1)`)
    c[j] = cc
  })
  return { a, d, c }
}

/** Dense rows (null = not presented) or a sparse matrix, mapped to CSR over the given item order. */
function toCsr(items: ScoringItem[], responses: ResponseMatrix | Array<Array<number | null | undefined>>): {
  rowPtr: Int32Array
  items: Int32Array
  resp: Uint8Array
  personIds?: string[]
  unknownItems: string[]
} {
  if (Array.isArray(responses)) {
    const nP = responses.length
    const rowPtr = new Int32Array(nP + 1)
    const it: number[] = []
    const rs: number[] = []
    responses.forEach((row, i) => {
      rowPtr[i] = it.length
      if (row.length > items.length) throw new RangeError(`response row ${i + 1} has ${row.length} entries for ${items.length} items`)
      row.forEach((v, j) => {
        if (v === null || v === undefined) return
        if (v !== 0 && v !== 1) throw new RangeError(`response row ${i + 1}, item ${j + 1}: ${String(v)} is not 0, 1 or null`)
        it.push(j)
        rs.push(v)
      })
    })
    rowPtr[nP] = it.length
    return { rowPtr, items: Int32Array.from(it), resp: Uint8Array.from(rs), unknownItems: [] }
  }
  const byId = new Map<string, number>()
  items.forEach((x, j) => {
    if (x.item_id !== undefined) byId.set(x.item_id, j)
  })
  const map = new Int32Array(responses.nItems)
  const unknownItems: string[] = []
  responses.itemIds.forEach((id, k) => {
    const j = byId.get(id)
    map[k] = j ?? -1
    if (j === undefined) unknownItems.push(id)
  })
  const rowPtr = new Int32Array(responses.nPersons + 1)
  const it = new Int32Array(responses.nObs)
  const rs = new Uint8Array(responses.nObs)
  let o = 0
  for (let i = 0; i < responses.nPersons; i++) {
    rowPtr[i] = o
    for (let k = responses.rowPtr[i]; k < responses.rowPtr[i + 1]; k++) {
      const j = map[responses.items[k]]
      if (j < 0) continue
      it[o] = j
      rs[o] = responses.resp[k]
      o++
    }
  }
  rowPtr[responses.nPersons] = o
  return { rowPtr, items: it.subarray(0, o), resp: rs.subarray(0, o), personIds: responses.personIds, unknownItems }
}

/**
 * Scores persons given fixed item parameters.
 * - EAP (Bock & Mislevy 1982): θ̂ = Σ_q θ_q w_q L(θ_q) / Σ_q w_q L(θ_q) on the quadrature grid with
 *   prior weights w_q; SE = posterior SD. This is mirt's `fscores(method = "EAP")`.
 * - MAP: the mode of L(θ)·φ(θ; μ, σ²) by Newton–Raphson; SE = (−∂² log posterior)^(−1/2).
 * - ML: the maximum of L(θ); SE = (observed information)^(−1/2). All-correct / all-wrong patterns
 *   have no finite maximum: θ is set to the range bound, SE NaN, and `extreme` marks them.
 */
export function score(items: ScoringItem[], responses: ResponseMatrix | Array<Array<number | null | undefined>>, opts: ScoreOptions = {}): ScoreResult {
  const method = opts.method ?? 'eap'
  if (opts.prior && 'logDensity' in opts.prior && method !== 'eap') throw new RangeError(`a grid posterior prior applies to EAP only, not ${method.toUpperCase()}`)
  const item = itemArrays(items)
  const csr = toCsr(items, responses)
  return { ...scoreArrays(item, csr, opts), personIds: csr.personIds, unknownItems: csr.unknownItems }
}

/** Item arrays (slope a, intercept d, asymptote c) and responses in CSR form (person i: rowPtr[i]..rowPtr[i+1]). */
export interface ScoringArrays {
  a: Float64Array
  d: Float64Array
  c: Float64Array
}
export interface ResponseCsr {
  rowPtr: Int32Array
  items: Int32Array
  resp: Uint8Array
}

/**
 * score() on typed arrays, for callers that build them directly (the θ service parses request
 * bodies into them); `logT` may be a cached fillLogTable for these items on the options' grid.
 */
export function scoreArrays(item: ScoringArrays, csr: ResponseCsr, opts: ScoreOptions & { logT?: Float64Array } = {}): Omit<ScoreResult, 'unknownItems' | 'personIds'> {
  const method = opts.method ?? 'eap'
  const given = opts.prior ?? { mean: 0, variance: 1 }
  const gridPrior = 'logDensity' in given ? given : null
  if (gridPrior && method !== 'eap') throw new RangeError(`a grid posterior prior applies to EAP only, not ${method.toUpperCase()}`)
  const prior: NormalPrior | Float64Array = gridPrior ? gridPrior.logDensity : (given as NormalPrior)
  const n = gridPrior ? gridPrior.nodes.length : (opts.quadpts ?? DEFAULT_QUADPTS)
  const lim: readonly [number, number] = gridPrior ? [gridPrior.nodes[0], gridPrior.nodes[n - 1]] : (opts.thetaLim ?? DEFAULT_THETA_LIM)
  const grid = makeGrid(n, lim)
  const { a, d, c } = item
  const nP = csr.rowPtr.length - 1
  const theta = new Float64Array(nP)
  const se = new Float64Array(nP)
  const extreme = new Uint8Array(nP)
  const nResponses = new Int32Array(nP)
  for (let i = 0; i < nP; i++) nResponses[i] = csr.rowPtr[i + 1] - csr.rowPtr[i]
  eapScores(grid, a, d, c, csr.rowPtr, csr.items, csr.resp, prior, theta, se, opts.logT)
  if (method !== 'eap') {
    for (let i = 0; i < nP; i++) {
      const r = modeScore(a, d, c, csr.items, csr.resp, csr.rowPtr[i], csr.rowPtr[i + 1], method === 'map' ? (prior as NormalPrior) : null, theta[i], grid)
      theta[i] = r.theta
      se[i] = r.se
      extreme[i] = r.extreme ? 1 : 0
    }
  }
  return { method, theta, se, nResponses, extreme }
}

/** EAP and posterior SD for every person (log-space on the grid, so long tests do not underflow). */
export function eapScores(
  grid: Grid,
  a: Float64Array,
  d: Float64Array,
  c: Float64Array,
  rowPtr: Int32Array,
  items: Int32Array,
  resp: Uint8Array,
  prior: NormalPrior | Float64Array,
  theta: Float64Array,
  se: Float64Array,
  table?: Float64Array,
): void {
  const Q = grid.size
  const nodes = grid.nodes
  const logT = table ?? fillLogTable(nodes, a, d, c, new Float64Array(2 * a.length * Q))
  const logW = prior instanceof Float64Array ? prior : logNormalWeights(grid, prior.mean, prior.variance)
  const acc = new Float64Array(Q)
  const nP = rowPtr.length - 1
  let maxLen = 0
  for (let i = 0; i < nP; i++) maxLen = Math.max(maxLen, rowPtr[i + 1] - rowPtr[i])
  const cells = new Int32Array(maxLen)
  for (let i = 0; i < nP; i++) {
    for (let q = 0; q < Q; q++) acc[q] = logW[q]
    const s = rowPtr[i]
    const e = rowPtr[i + 1]
    for (let k = s; k < e; k++) cells[k - s] = (2 * items[k] + resp[k]) * Q
    accumulate(acc, logT, cells, 0, e - s, 0, Q - 1)
    const m = momentsFromLog(nodes, acc)
    theta[i] = m.theta
    se[i] = m.se
  }
}

function momentsFromLog(nodes: Float64Array, logp: Float64Array): { theta: number; se: number } {
  const Q = nodes.length
  let max = -Infinity
  for (let q = 0; q < Q; q++) if (logp[q] > max) max = logp[q]
  let s0 = 0
  let s1 = 0
  let s2 = 0
  for (let q = 0; q < Q; q++) {
    const w = Math.exp(logp[q] - max)
    s0 += w
    s1 += w * nodes[q]
    s2 += w * nodes[q] * nodes[q]
  }
  const m = s1 / s0
  return { theta: m, se: Math.sqrt(Math.max(0, s2 / s0 - m * m)) }
}

/** Log-likelihood of one person's responses at θ with first and second derivatives. */
function personDerivs(a: Float64Array, d: Float64Array, c: Float64Array, items: Int32Array, resp: Uint8Array, s: number, e: number, th: number) {
  let f = 0
  let g = 0
  let h = 0
  for (let k = s; k < e; k++) {
    const j = items[k]
    const aj = a[j]
    const cj = c[j]
    const z = aj * th + d[j]
    const sp = sigmoid(z)
    const sm = sigmoid(-z)
    const P = cj + (1 - cj) * sp
    const Pm = Math.max((1 - cj) * sm, 1e-300)
    const y = resp[k]
    f += y ? Math.log(P) : Math.log(Pm)
    const p1 = aj * (1 - cj) * sp * sm
    const p2 = aj * p1 * (1 - 2 * sp)
    const l1 = (y - P) / (P * Pm)
    const l2 = y ? -1 / (P * P) : -1 / (Pm * Pm)
    g += l1 * p1
    h += l2 * p1 * p1 + l1 * p2
  }
  return { f, g, h }
}

/** MAP (prior given) or ML (prior null) by Newton–Raphson with step halving, bounded to the grid range. */
function modeScore(
  a: Float64Array,
  d: Float64Array,
  c: Float64Array,
  items: Int32Array,
  resp: Uint8Array,
  s: number,
  e: number,
  prior: NormalPrior | null,
  start: number,
  grid: Grid,
): { theta: number; se: number; extreme: boolean } {
  const lo = grid.nodes[0]
  const hi = grid.nodes[grid.size - 1]
  if (!prior) {
    if (e === s) return { theta: NaN, se: NaN, extreme: true }
    let sum = 0
    for (let k = s; k < e; k++) sum += resp[k]
    if (sum === e - s) return { theta: hi, se: NaN, extreme: true }
    if (sum === 0) return { theta: lo, se: NaN, extreme: true }
  }
  const obj = (th: number) => {
    const r = personDerivs(a, d, c, items, resp, s, e, th)
    if (prior) {
      const z = th - prior.mean
      r.f -= (z * z) / (2 * prior.variance)
      r.g -= z / prior.variance
      r.h -= 1 / prior.variance
    }
    return r
  }
  let th = Math.min(hi, Math.max(lo, Number.isFinite(start) ? start : 0))
  let cur = obj(th)
  for (let it = 0; it < 100; it++) {
    let step = cur.h < 0 ? -cur.g / cur.h : Math.sign(cur.g) * 0.5
    if (Math.abs(step) > 1) step = Math.sign(step)
    let lambda = 1
    let next = th
    let nd = cur
    let ok = false
    for (let hh = 0; hh < 40; hh++) {
      next = Math.min(hi, Math.max(lo, th + lambda * step))
      nd = obj(next)
      if (nd.f >= cur.f - 1e-12) {
        ok = true
        break
      }
      lambda /= 2
    }
    if (!ok) break
    const moved = Math.abs(next - th)
    th = next
    cur = nd
    if (moved < 1e-10 || Math.abs(cur.g) < 1e-10) break
  }
  const atBound = th <= lo + 1e-9 || th >= hi - 1e-9
  const info = -cur.h
  return { theta: th, se: info > 0 && !(atBound && !prior) ? 1 / Math.sqrt(info) : NaN, extreme: !prior && atBound }
}

/**
 * A person's posterior on the quadrature grid, kept in log space so it can be stored and updated
 * one response at a time (the posterior after n responses is the prior times n likelihood terms,
 * so folding them in sequentially equals full EAP re-scoring for fixed item parameters).
 */
export interface GridPosterior {
  nodes: Float64Array
  logDensity: Float64Array
  nResponses: number
}

export function priorPosterior(prior: NormalPrior = { mean: 0, variance: 1 }, quadpts = DEFAULT_QUADPTS, thetaLim: readonly [number, number] = DEFAULT_THETA_LIM): GridPosterior {
  const grid = makeGrid(quadpts, thetaLim)
  return { nodes: grid.nodes, logDensity: logNormalWeights(grid, prior.mean, prior.variance), nResponses: 0 }
}

/** Folds one response into the posterior: log π_q += log P(y | θ_q). O(Q). Returns a new posterior. */
export function updatePosterior(post: GridPosterior, item: ScoringItem, y: 0 | 1): GridPosterior {
  const { a, d, c } = itemArrays([item])
  const aj = a[0]
  const dj = d[0]
  const cj = c[0]
  const Q = post.nodes.length
  const out = new Float64Array(Q)
  let max = -Infinity
  for (let q = 0; q < Q; q++) {
    const z = aj * post.nodes[q] + dj
    const lp = z >= 0 ? -Math.log1p(Math.exp(-z)) : z - Math.log1p(Math.exp(z))
    const l = y ? (cj > 0 ? Math.log(cj + (1 - cj) * Math.exp(lp)) : lp) : Math.log1p(-cj) + lp - z
    out[q] = post.logDensity[q] + l
    if (out[q] > max) max = out[q]
  }
  // Renormalise so repeated updates never drift out of floating-point range.
  let s = 0
  for (let q = 0; q < Q; q++) s += Math.exp(out[q] - max)
  const lse = max + Math.log(s)
  for (let q = 0; q < Q; q++) out[q] -= lse
  return { nodes: post.nodes, logDensity: out, nResponses: post.nResponses + 1 }
}

/** EAP and posterior SD of a grid posterior. */
export function posteriorSummary(post: GridPosterior): { theta: number; se: number } {
  return momentsFromLog(post.nodes, post.logDensity)
}
