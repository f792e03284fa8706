import type { CalibrationResult } from './calibrate.js'
import { eapScores } from './score.js'

/**
 * Infit and outfit mean squares (Wright & Masters 1982; Linacre & Wright 1994) with each person
 * at their EAP θ̂ under the fitted model. With P = P_j(θ̂_i), W = P(1 − P):
 *   outfit_j = (1/n_j) Σ_i (y_ij − P)² / W,     infit_j = Σ_i (y_ij − P)² / Σ_i W.
 * Only observed responses enter, so they work with sparse designs; values near 1 mean the item
 * fits, > 1.3 noisy, < 0.7 overly predictable. EAP θ̂ are shrunk towards the mean, which pulls the
 * mean squares a little below 1 on short tests. A 2PL absorbs an item unrelated to θ with a ≈ 0, so
 * misfit shows most clearly under Rasch/1PL.
 */
export function attachItemFit(res: CalibrationResult, given?: { theta: Float64Array; se: Float64Array }): { theta: Float64Array; se: Float64Array } {
  const st = res.state
  const { data } = st
  let theta: Float64Array
  let se: Float64Array
  if (given) ({ theta, se } = given)
  else {
    theta = new Float64Array(data.nPersons)
    se = new Float64Array(data.nPersons)
    const a = st.a.map((v, j) => (st.status[j] ? v : 0))
    const d = st.d.map((v, j) => (st.status[j] ? v : 0))
    eapScores(st.grid, a, d, st.c, data.rowPtr, data.items, data.resp, { mean: st.mean, variance: st.variance }, theta, se)
  }
  const J = data.nItems
  const sumZ2 = new Float64Array(J)
  const sumR2 = new Float64Array(J)
  const sumW = new Float64Array(J)
  const n = new Int32Array(J)
  for (let i = 0; i < data.nPersons; i++) {
    for (let k = data.rowPtr[i]; k < data.rowPtr[i + 1]; k++) {
      const j = data.items[k]
      if (!st.status[j]) continue
      const P = st.c[j] + (1 - st.c[j]) / (1 + Math.exp(-(st.a[j] * theta[i] + st.d[j])))
      const W = P * (1 - P)
      const r2 = (data.resp[k] - P) ** 2
      sumR2[j] += r2
      sumW[j] += W
      sumZ2[j] += r2 / Math.max(W, 1e-12)
      n[j]++
    }
  }
  const index = new Map(data.itemIds.map((id, j) => [id, j]))
  for (const it of res.items) {
    const j = index.get(it.item_id)!
    it.infit = n[j] ? sumR2[j] / sumW[j] : null
    it.outfit = n[j] ? sumZ2[j] / n[j] : null
  }
  return { theta, se }
}
