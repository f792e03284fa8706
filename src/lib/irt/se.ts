import type { CalibrationResult } from './calibrate.js'
import { fillLogTable } from './estep.js'
import { logNormalWeights } from './grid.js'
import { itemDerivs } from './mstep.js'
import { sigmoid } from './model.js'

/** Largest parameter count for which the full information matrix is formed. */
export const MAX_SE_PARAMETERS = 3000
/** Largest (2J)²·Q for the cell-pair accumulation (16M doubles = 128 MB); bigger banks go person by person. Mutable for tests. */
export const seTuning = { tensorLimit: 16_000_000 }

/**
 * Item standard errors from the observed information of the marginal (penalised) likelihood,
 * computed with Louis' (1982) identity for EM:
 *   I_obs(ψ) = Σ_i E_post[−∂² log f(y_i, θ | ψ)] − Σ_i Cov_post[∂ log f(y_i, θ | ψ)] − ∂² log prior(ψ)
 * where the expectations are over each person's posterior on the grid. The first term is the
 * block-diagonal Hessian of the M-step objective at the final expected counts; the second couples
 * the items a person answered. At the MLE this is the same matrix Oakes (1999) obtains by
 * differentiating the EM map, which mirt (SE.type = "Oakes") evaluates numerically, so the SEs
 * agree with mirt's. SEs of b (= −d/a) and c (= σ(γ)) follow by the delta method.
 */
export function attachStandardErrors(res: CalibrationResult, counts: Float64Array, totals: Float64Array): void {
  const st = res.state
  const { grid, data, status, a, d, c, model, prior } = st
  const Q = grid.size
  const nodes = grid.nodes
  const J = data.nItems
  const perItem = model === '3PL' ? 3 : model === '2PL' ? 2 : 1
  const withC = model === '3PL'
  const comps = perItem === 3 ? [0, 1, 2] : perItem === 2 ? [0, 1] : [1]
  const pos = new Int32Array(J).fill(-1)
  let nEst = 0
  for (let j = 0; j < J; j++) if (status[j] === 1) pos[j] = nEst++
  const nGroup = (st.freeMean ? 1 : 0) + (st.freeVar ? 1 : 0)
  const P = nEst * perItem + nGroup
  if (P === 0) return
  if (P > MAX_SE_PARAMETERS) {
    res.warnings.push(`standard errors skipped: ${P} parameters exceed the limit of ${MAX_SE_PARAMETERS} for the full information matrix`)
    return
  }
  const info = new Float64Array(P * P)

  // 1) Complete-data information: minus the M-step Hessian per item (prior included for 3PL).
  const r = new Float64Array(Q)
  const n = new Float64Array(Q)
  for (let j = 0; j < J; j++) {
    if (status[j] !== 1) continue
    const o0 = 2 * j * Q
    for (let q = 0; q < Q; q++) {
      r[q] = counts[o0 + Q + q]
      n[q] = r[q] + counts[o0 + q]
    }
    const { H } = itemDerivs(nodes, r, n, { a: a[j], d: d[j], c: c[j] }, withC, prior)
    const base = pos[j] * perItem
    comps.forEach((u, k) => comps.forEach((v, l) => (info[(base + k) * P + base + l] -= H[u * 3 + v])))
  }
  // Group parameters (μ, σ²): minus the Hessian of Σ_q N_q log φ(θ_q; μ, σ²).
  const mean = st.mean
  const v2 = st.variance
  const gBase = nEst * perItem
  {
    let N = 0
    let S1 = 0
    let S2 = 0
    for (let q = 0; q < Q; q++) {
      const z = nodes[q] - mean
      N += totals[q]
      S1 += totals[q] * z
      S2 += totals[q] * z * z
    }
    let g = gBase
    const iMu = st.freeMean ? g++ : -1
    const iVar = st.freeVar ? g++ : -1
    if (iMu >= 0) info[iMu * P + iMu] += N / v2
    if (iVar >= 0) info[iVar * P + iVar] += S2 / v2 ** 3 - N / (2 * v2 * v2)
    if (iMu >= 0 && iVar >= 0) {
      info[iMu * P + iVar] += S1 / (v2 * v2)
      info[iVar * P + iMu] += S1 / (v2 * v2)
    }
  }

  // 2) Minus the posterior covariance of each person's complete-data score.
  // Per-response score vectors U[((2j + y)·Q + q)·perItem + k] = ∂ log P_j(y | θ_q) / ∂ψ_jk.
  const U = new Float64Array(2 * J * Q * perItem)
  for (let j = 0; j < J; j++) {
    if (status[j] !== 1) continue
    const cj = c[j]
    for (let q = 0; q < Q; q++) {
      const t = nodes[q]
      const z = a[j] * t + d[j]
      const s = sigmoid(z)
      const sm = sigmoid(-z)
      const Pr = cj + (1 - cj) * s
      const Pm = (1 - cj) * sm
      const grad = [(1 - cj) * s * sm * t, (1 - cj) * s * sm, sm * cj * (1 - cj)]
      for (let y = 0; y < 2; y++) {
        const l1 = cj === 0 ? (y - s) / (s * sm) : (y - Pr) / (Pr * Pm)
        const o = ((2 * j + y) * Q + q) * perItem
        comps.forEach((u, k) => (U[o + k] = cj === 0 && u < 2 ? (y - s) * (u === 0 ? t : 1) : l1 * grad[u]))
      }
    }
  }
  // Group score per node: ∂ log w_q/∂μ and ∂ log w_q/∂σ² for the normalised grid weights.
  const w = new Float64Array(Q)
  const logW = logNormalWeights(grid, mean, v2)
  for (let q = 0; q < Q; q++) w[q] = Math.exp(logW[q])
  let Ez = 0
  let Ez2 = 0
  for (let q = 0; q < Q; q++) {
    Ez += w[q] * (nodes[q] - mean)
    Ez2 += w[q] * (nodes[q] - mean) ** 2
  }
  const gMu = new Float64Array(Q)
  const gVar = new Float64Array(Q)
  for (let q = 0; q < Q; q++) {
    const z = nodes[q] - mean
    gMu[q] = (z - Ez) / v2
    gVar[q] = (z * z - Ez2) / (2 * v2 * v2)
  }

  const logT = fillLogTable(nodes, a.map((x, j) => (status[j] ? x : 0)), d.map((x, j) => (status[j] ? x : 0)), c, new Float64Array(2 * J * Q))
  // Σ_i Σ_q post_iq s_iq s_iqᵀ only depends on the persons through which pairs of (item, response)
  // cells they share, so for moderate banks we first sum posteriors per cell pair and node,
  // W[c1, c2, q] = Σ_{i has c1 and c2} post_iq, and contract with the score vectors once at the
  // end: O(K² Q) per person instead of O((K·p)² Q). Item × group and group × group terms come from
  // the E-step counts and node totals. The person-level Σ_i m_i m_iᵀ (posterior means) is direct.
  const C2 = 2 * J
  const useTensor = C2 * C2 * Q <= seTuning.tensorLimit
  const W = useTensor ? new Float64Array(C2 * C2 * Q) : null
  const post = new Float64Array(Q)
  let maxLocal = 0
  for (let i = 0; i < data.nPersons; i++) maxLocal = Math.max(maxLocal, data.rowPtr[i + 1] - data.rowPtr[i])
  const maxP = maxLocal * perItem + nGroup
  const loc = new Int32Array(maxP)
  const uOff = new Int32Array(maxLocal)
  const cellOf = new Int32Array(maxLocal)
  const M = useTensor ? null : new Float64Array(maxP * maxP)
  const m = new Float64Array(maxP)
  const sv = new Float64Array(maxP)
  for (let i = 0; i < data.nPersons; i++) {
    const s0 = data.rowPtr[i]
    const e0 = data.rowPtr[i + 1]
    let any = false
    for (let q = 0; q < Q; q++) post[q] = logW[q]
    let K = 0
    for (let k = s0; k < e0; k++) {
      const j = data.items[k]
      if (!status[j]) continue
      any = true
      const cell = 2 * j + data.resp[k]
      const off = cell * Q
      for (let q = 0; q < Q; q++) post[q] += logT[off + q]
      if (status[j] === 1) {
        uOff[K] = off * perItem
        cellOf[K] = cell
        for (let u = 0; u < perItem; u++) loc[K * perItem + u] = pos[j] * perItem + u
        K++
      }
    }
    if (!any) continue
    let mx = -Infinity
    for (let q = 0; q < Q; q++) if (post[q] > mx) mx = post[q]
    let sum = 0
    for (let q = 0; q < Q; q++) {
      post[q] = Math.exp(post[q] - mx)
      sum += post[q]
    }
    let qlo = Q
    let qhi = -1
    for (let q = 0; q < Q; q++) {
      post[q] /= sum
      if (post[q] > 1e-15) {
        if (q < qlo) qlo = q
        qhi = q
      }
    }
    const p = K * perItem + nGroup
    let g = K * perItem
    if (st.freeMean) loc[g++] = gBase
    if (st.freeVar) loc[g++] = gBase + (st.freeMean ? 1 : 0)
    m.fill(0, 0, p)
    if (M) M.fill(0, 0, p * p)
    for (let q = qlo; q <= qhi; q++) {
      const wq = post[q]
      for (let k = 0; k < K; k++) {
        const o = uOff[k] + q * perItem
        for (let u = 0; u < perItem; u++) sv[k * perItem + u] = U[o + u]
      }
      let gg = K * perItem
      if (st.freeMean) sv[gg++] = gMu[q]
      if (st.freeVar) sv[gg++] = gVar[q]
      for (let x = 0; x < p; x++) m[x] += wq * sv[x]
      if (M) {
        for (let x = 0; x < p; x++) {
          const sx = wq * sv[x]
          const row = x * p
          for (let y = x; y < p; y++) M[row + y] += sx * sv[y]
        }
      }
    }
    if (W) {
      for (let k1 = 0; k1 < K; k1++) {
        for (let k2 = k1; k2 < K; k2++) {
          const c1 = cellOf[k1] < cellOf[k2] ? cellOf[k1] : cellOf[k2]
          const c2 = cellOf[k1] < cellOf[k2] ? cellOf[k2] : cellOf[k1]
          const base = (c1 * C2 + c2) * Q
          for (let q = qlo; q <= qhi; q++) W[base + q] += post[q]
        }
      }
    }
    for (let x = 0; x < p; x++) {
      const gx = loc[x] * P
      for (let y = x; y < p; y++) {
        // −Cov = −(E[s sᵀ] − m mᵀ); with the tensor the E[s sᵀ] part is added after the loop.
        const cv = (M ? M[x * p + y] : 0) - m[x] * m[y]
        info[gx + loc[y]] -= cv
        if (y !== x) info[loc[y] * P + loc[x]] -= cv
      }
    }
  }
  if (W) {
    const posOfCell = (cell: number) => pos[cell >> 1] * perItem
    for (let c1 = 0; c1 < C2; c1++) {
      if (status[c1 >> 1] !== 1) continue
      const b1 = posOfCell(c1)
      for (let c2 = c1; c2 < C2; c2++) {
        if (status[c2 >> 1] !== 1) continue
        const b2 = posOfCell(c2)
        const base = (c1 * C2 + c2) * Q
        for (let q = 0; q < Q; q++) {
          const wv = W[base + q]
          if (wv === 0) continue
          const o1 = (c1 * Q + q) * perItem
          const o2 = (c2 * Q + q) * perItem
          for (let x = 0; x < perItem; x++) {
            const ux = wv * U[o1 + x]
            for (let y = 0; y < perItem; y++) {
              const v = ux * U[o2 + y]
              info[(b1 + x) * P + b2 + y] -= v
              if (c1 !== c2) info[(b2 + y) * P + b1 + x] -= v
            }
          }
        }
      }
    }
    // Item × group: Σ_i Σ_q post_iq u_c(q) g(q) = Σ_q counts[c, q] u_c(q) g(q); group × group from node totals.
    const gIdx: Array<{ idx: number; g: Float64Array }> = []
    if (st.freeMean) gIdx.push({ idx: gBase, g: gMu })
    if (st.freeVar) gIdx.push({ idx: gBase + (st.freeMean ? 1 : 0), g: gVar })
    for (const { idx, g } of gIdx) {
      for (let cell = 0; cell < C2; cell++) {
        if (status[cell >> 1] !== 1) continue
        const b = posOfCell(cell)
        for (let q = 0; q < Q; q++) {
          const wv = counts[cell * Q + q] * g[q]
          if (wv === 0) continue
          const o = (cell * Q + q) * perItem
          for (let x = 0; x < perItem; x++) {
            info[(b + x) * P + idx] -= wv * U[o + x]
            info[idx * P + b + x] -= wv * U[o + x]
          }
        }
      }
      for (const { idx: idx2, g: g2 } of gIdx) {
        let sgg = 0
        for (let q = 0; q < Q; q++) sgg += totals[q] * g[q] * g2[q]
        info[idx * P + idx2] -= sgg
      }
    }
  }

  const cov = invertSpd(info, P)
  if (!cov) {
    res.warnings.push('standard errors unavailable: the information matrix is not positive definite (weakly identified items or non-converged fit)')
    return
  }
  const se = (k: number) => Math.sqrt(cov[k * P + k])
  for (const it of res.items) {
    if (it.anchored) continue
    const j = data.itemIds.indexOf(it.item_id)
    const base = pos[j] * perItem
    if (perItem === 1) {
      it.se_d = se(base)
      it.se_b = it.se_d / Math.abs(it.a)
    } else {
      const va = cov[base * P + base]
      const vd = cov[(base + 1) * P + base + 1]
      const cad = cov[base * P + base + 1]
      it.se_a = Math.sqrt(va)
      it.se_d = Math.sqrt(vd)
      // b = −d/a: ∂b/∂a = d/a², ∂b/∂d = −1/a.
      const ga = it.d / (it.a * it.a)
      const gd = -1 / it.a
      it.se_b = Math.sqrt(Math.max(0, ga * ga * va + gd * gd * vd + 2 * ga * gd * cad))
      if (perItem === 3) it.se_c = it.c * (1 - it.c) * se(base + 2)
    }
  }
  if (st.freeVar) res.fit.groupPars.se_variance = se(gBase + (st.freeMean ? 1 : 0))
}

/** Inverse of a symmetric positive-definite matrix by Cholesky; null if not positive definite. */
export function invertSpd(A: Float64Array, n: number): Float64Array | null {
  const L = new Float64Array(n * n)
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let s = A[i * n + j]
      const ri = i * n
      const rj = j * n
      for (let k = 0; k < j; k++) s -= L[ri + k] * L[rj + k]
      if (i === j) {
        if (!(s > 0)) return null
        L[ri + i] = Math.sqrt(s)
      } else L[ri + j] = s / L[rj + j]
    }
  }
  // inv(L) then inv(A) = inv(L)ᵀ inv(L).
  const Li = new Float64Array(n * n)
  for (let i = 0; i < n; i++) {
    Li[i * n + i] = 1 / L[i * n + i]
    for (let j = 0; j < i; j++) {
      let s = 0
      for (let k = j; k < i; k++) s -= L[i * n + k] * Li[k * n + j]
      Li[i * n + j] = s / L[i * n + i]
    }
  }
  const out = new Float64Array(n * n)
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let s = 0
      for (let k = i; k < n; k++) s += Li[k * n + i] * Li[k * n + j]
      out[i * n + j] = s
      out[j * n + i] = s
    }
  }
  return out
}
