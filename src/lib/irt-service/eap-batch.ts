import { accumulate, fillLogTable } from '../irt/estep.js'
import type { ResponseCsr, ScoringArrays } from '../irt/score.js'

/**
 * EAP scores for a batch of response patterns against one item set, as eapScores (score.ts)
 * computes them, but with the work per person proportional to what the person did NOT answer
 * when that is less than what they did.
 *
 * With c = 0 (1PL/2PL) an item's log-likelihood is linear in its response:
 *   log P(y | θ) = log P(0 | θ) + y·z(θ),   z = aθ + d   (log σ(z) − log σ(−z) = z)
 * so for a person who answered the set R and got the subset C right
 *   Σ_{k∈R} log P(y_k | θ) = Σ_{all j} log P_j(0 | θ) − Σ_{j∉R} log P_j(0 | θ) + θ·Σ_{k∈C} a_k + Σ_{k∈C} d_k.
 * The first sum is the same for everyone (cached with the table), the last two cost O(|C|) not
 * O(|C|·Q). For c > 0 the correct answers add log P_k(1|θ) − log P_k(0|θ) node by node. A
 * person who answered most of the set (the usual batch) costs (J − |R|)·Q instead of |R|·Q
 * additions; one who answered few is summed directly. Exact algebra: the two ways agree to
 * rounding (~1e-15 on θ, tested), far inside mirt's tolerances.
 */
export interface ItemTable {
  items: ScoringArrays
  /** fillLogTable: log P(0|θ_q) at 2jQ + q, log P(1|θ_q) at (2j+1)Q + q. */
  logT: Float64Array
  /** Σ_j log P_j(0 | θ_q). */
  sum0: Float64Array
  /** Items with a lower asymptote (c > 0): their correct answers are added node by node. */
  guessing: Uint8Array
  anyGuessing: boolean
}

export function itemTable(nodes: Float64Array, items: ScoringArrays): ItemTable {
  const Q = nodes.length
  const J = items.a.length
  const logT = fillLogTable(nodes, items.a, items.d, items.c, new Float64Array(2 * J * Q))
  const sum0 = new Float64Array(Q)
  for (let j = 0; j < J; j++) {
    const o = 2 * j * Q
    for (let q = 0; q < Q; q++) sum0[q] += logT[o + q]
  }
  const guessing = new Uint8Array(J)
  let anyGuessing = false
  for (let j = 0; j < J; j++) if (items.c[j] > 0) anyGuessing = Boolean((guessing[j] = 1))
  return { items, logT, sum0, guessing, anyGuessing }
}

let scratchAcc = new Float64Array(0)
let scratchCells = new Int32Array(0)

/** θ (EAP) and posterior SD per person; `logW` is the log prior on `nodes`. CSR rows must list items in increasing order (parseScoreRequest's do) for the complement path. */
export function eapBatch(t: ItemTable, nodes: Float64Array, logW: Float64Array, csr: ResponseCsr, theta: Float64Array, se: Float64Array): void {
  const Q = nodes.length
  const { a, d } = t.items
  const J = a.length
  const { logT, sum0, guessing } = t
  const { rowPtr, items, resp } = csr
  const nP = rowPtr.length - 1
  let maxLen = J
  for (let i = 0; i < nP; i++) maxLen = Math.max(maxLen, rowPtr[i + 1] - rowPtr[i])
  // Scratch kept between calls (the service scores one small batch after another; a call runs to
  // its end without yielding, so nothing else uses them meanwhile).
  if (scratchAcc.length < Q) scratchAcc = new Float64Array(Q)
  if (scratchCells.length < maxLen) scratchCells = new Int32Array(maxLen)
  const acc = scratchAcc
  const cells = scratchCells
  for (let i = 0; i < nP; i++) {
    const s = rowPtr[i]
    const e = rowPtr[i + 1]
    const n = e - s
    let sorted = true
    let guessedRight = 0
    for (let k = s; k < e; k++) {
      if (k > s && items[k] <= items[k - 1]) sorted = false
      if (t.anyGuessing && resp[k] && guessing[items[k]]) guessedRight++
    }
    if (!sorted || n <= J - n + guessedRight) {
      for (let q = 0; q < Q; q++) acc[q] = logW[q]
      for (let k = s; k < e; k++) cells[k - s] = (2 * items[k] + resp[k]) * Q
      accumulate(acc, logT, cells, 0, n, 0, Q - 1)
    } else {
      let A = 0
      let D = 0
      let m = 0
      let k = s
      for (let j = 0; j < J; j++) {
        if (k < e && items[k] === j) {
          if (resp[k] && !guessing[j]) {
            A += a[j]
            D += d[j]
          }
          k++
        } else cells[m++] = 2 * j * Q
      }
      // acc = Σ over the items not answered of log P(0|θ), taken from the all-items sum.
      for (let q = 0; q < Q; q++) acc[q] = 0
      accumulate(acc, logT, cells, 0, m, 0, Q - 1)
      for (let q = 0; q < Q; q++) acc[q] = logW[q] + sum0[q] - acc[q] + nodes[q] * A + D
      if (guessedRight) {
        for (let kk = s; kk < e; kk++) {
          const j = items[kk]
          if (!resp[kk] || !guessing[j]) continue
          const o0 = 2 * j * Q
          const o1 = o0 + Q
          for (let q = 0; q < Q; q++) acc[q] += logT[o1 + q] - logT[o0 + q]
        }
      }
    }
    let max = -Infinity
    for (let q = 0; q < Q; q++) if (acc[q] > max) max = acc[q]
    let s0 = 0
    let s1 = 0
    let s2 = 0
    for (let q = 0; q < Q; q++) {
      // Nodes below e^-40 of the mode weigh < 1e-17 against it: below rounding, and half the exps of a 40-item posterior.
      const v = acc[q] - max
      if (v < -40) continue
      const w = Math.exp(v)
      const x = nodes[q]
      s0 += w
      s1 += w * x
      s2 += w * x * x
    }
    const mean = s1 / s0
    theta[i] = mean
    se[i] = Math.sqrt(Math.max(0, s2 / s0 - mean * mean))
  }
}
