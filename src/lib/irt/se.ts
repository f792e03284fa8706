import type { CalibrationResult, EngineState } from './calibrate.js'
import { fillLogTable } from './estep.js'
import { logNormalWeights } from './grid.js'
import { itemDerivs } from './mstep.js'
import type { IrtModel } from './model.js'
import { missingInfoRange, type MissingInfoParams } from './missing-info.js'
import type { Grid } from './grid.js'

/** Largest parameter count for which the full information matrix is formed. */
export const MAX_SE_PARAMETERS = 3000
/**
 * The missing-information rule (missing-info.ts): `nodes` Gauss nodes per person (0: chosen by
 * the person's item count); `exact` sums over every grid node (Louis' identity term by term).
 * Mutable for tests and benchmarks.
 */
export const seTuning: { nodes: number; exact: boolean; tileBytes?: number } = { nodes: 0, exact: false }

/** Parameter layout of the information matrix: estimated items first (perItem each), then the group parameters. */
export function seLayout(model: IrtModel, status: Uint8Array, freeMean: boolean, freeVar: boolean): { perItem: number; pos: Int32Array; nEst: number; nGroup: number; P: number } {
  const perItem = model === '3PL' ? 3 : model === '2PL' ? 2 : 1
  const pos = new Int32Array(status.length).fill(-1)
  let nEst = 0
  for (let j = 0; j < status.length; j++) if (status[j] === 1) pos[j] = nEst++
  const nGroup = (freeMean ? 1 : 0) + (freeVar ? 1 : 0)
  return { perItem, pos, nEst, nGroup, P: nEst * perItem + nGroup }
}

/**
 * What the final E-step needs to accumulate the missing information while it computes the
 * converged posteriors (so they are computed once); null when no standard errors will be formed.
 */
export function missingInfoParams(s: { grid: Grid; model: IrtModel; a: Float64Array; d: Float64Array; c: Float64Array; status: Uint8Array; mean: number; variance: number; freeMean: boolean; freeVar: boolean }): MissingInfoParams | null {
  const { perItem, pos, P } = seLayout(s.model, s.status, s.freeMean, s.freeVar)
  if (P === 0 || P > MAX_SE_PARAMETERS) return null
  return {
    Q: s.grid.size,
    nodes: s.grid.nodes,
    status: s.status,
    pos,
    a: s.a,
    d: s.d,
    c: s.c,
    perItem,
    freeMean: s.freeMean,
    freeVar: s.freeVar,
    mean: s.mean,
    variance: s.variance,
    P,
    ruleNodes: seTuning.nodes,
    exact: seTuning.exact,
    tileBytes: seTuning.tileBytes,
  }
}

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
export async function attachStandardErrors(
  res: CalibrationResult,
  counts: Float64Array,
  totals: Float64Array,
  /** −Σ_i Cov_post_i[s_i] (upper triangle) from the final E-step; computed here when absent. */
  missing?: Float64Array<ArrayBufferLike>,
  eap?: { theta?: Float64Array; se?: Float64Array },
  /** Splits the inverse's column solves over the E-step's threads (large banks). */
  columns?: ColumnSolver,
): Promise<void> {
  const st = res.state
  const layout = seLayout(st.model, st.status, st.freeMean, st.freeVar)
  const { P } = layout
  if (P === 0) return
  if (P > MAX_SE_PARAMETERS) {
    res.warnings.push(`standard errors skipped: ${P} parameters exceed the limit of ${MAX_SE_PARAMETERS} for the full information matrix`)
    return
  }
  const info = new Float64Array(P * P)
  addCompleteDataItemInfo(info, st, layout, counts)
  addLatentInfo(info, st, layout, totals)
  addMissingInfo(info, st, P, missing, eap)
  // Only the upper triangle was accumulated; mirror it.
  for (let x = 0; x < P; x++) for (let y = x + 1; y < P; y++) info[y * P + x] = info[x * P + y]

  const inv = columns && P >= 300 ? await spdInverseParallel(info, P, columns) : spdInverse(info, P)
  if (!inv) {
    res.warnings.push('standard errors unavailable: the information matrix is not positive definite (weakly identified items or non-converged fit)')
    return
  }
  setStandardErrors(res, layout, inv)
}

type SeLayout = ReturnType<typeof seLayout>

/** 1) Complete-data information: minus the M-step Hessian of each estimated item at the final expected counts (prior included for 3PL). */
function addCompleteDataItemInfo(info: Float64Array, st: EngineState, { perItem, pos, P }: SeLayout, counts: Float64Array): void {
  const { grid, data, status, a, d, c, model, prior } = st
  const Q = grid.size
  const comps = perItem === 3 ? [0, 1, 2] : perItem === 2 ? [0, 1] : [1]
  const r = new Float64Array(Q)
  const n = new Float64Array(Q)
  for (let j = 0; j < data.nItems; j++) {
    if (status[j] !== 1) continue
    const o0 = 2 * j * Q
    for (let q = 0; q < Q; q++) {
      r[q] = counts[o0 + Q + q]
      n[q] = r[q] + counts[o0 + q]
    }
    const { H } = itemDerivs(grid.nodes, r, n, { a: a[j], d: d[j], c: c[j] }, model === '3PL', prior)
    const base = pos[j] * perItem
    comps.forEach((u, k) => comps.forEach((v, l) => (info[(base + k) * P + base + l] -= H[u * 3 + v])))
  }
}

/** The group parameters (μ, σ²) when free: minus the Hessian of Σ_q N_q log φ(θ_q; μ, σ²) at the final node totals N_q. */
function addLatentInfo(info: Float64Array, st: EngineState, { perItem, nEst, P }: SeLayout, totals: Float64Array): void {
  const nodes = st.grid.nodes
  const mean = st.mean
  const v2 = st.variance
  let N = 0
  let S1 = 0
  let S2 = 0
  for (let q = 0; q < st.grid.size; q++) {
    const z = nodes[q] - mean
    N += totals[q]
    S1 += totals[q] * z
    S2 += totals[q] * z * z
  }
  let g = nEst * perItem
  const iMu = st.freeMean ? g++ : -1
  const iVar = st.freeVar ? g++ : -1
  if (iMu >= 0) info[iMu * P + iMu] += N / v2
  if (iVar >= 0) info[iVar * P + iVar] += S2 / v2 ** 3 - N / (2 * v2 * v2)
  if (iMu >= 0 && iVar >= 0) {
    info[iMu * P + iVar] += S1 / (v2 * v2)
    info[iVar * P + iMu] += S1 / (v2 * v2)
  }
}

/**
 * 2) Minus the posterior covariance of each person's complete-data score (missing-info.ts):
 * normally accumulated by the final E-step; recomputed here for runners that cannot.
 */
function addMissingInfo(info: Float64Array, st: EngineState, P: number, missing: Float64Array<ArrayBufferLike> | undefined, eap: { theta?: Float64Array; se?: Float64Array } | undefined): void {
  if (missing && missing.length === P * P) {
    for (let x = 0; x < P * P; x++) info[x] += missing[x]
    return
  }
  const { grid, model, a, d, c, status, mean, variance } = st
  const params = missingInfoParams({ grid, model, a, d, c, status, mean, variance, freeMean: st.freeMean, freeVar: st.freeVar })!
  const logT = fillLogTable(grid.nodes, a.map((x, j) => (status[j] ? x : 0)), d.map((x, j) => (status[j] ? x : 0)), c, new Float64Array(2 * st.data.nItems * grid.size))
  missingInfoRange({ ...params, rowPtr: st.input.rowPtr, cells: st.input.cells, logT, logW: logNormalWeights(grid, mean, variance), center: eap?.theta, spread: eap?.se }, 0, st.input.rowPtr.length - 1, info)
}

/** SEs of the estimated items and the latent variance from the inverse information; b (= −d/a) and c (= σ(γ)) by the delta method. */
function setStandardErrors(res: CalibrationResult, { perItem, pos, nEst }: SeLayout, cov: (x: number, y: number) => number): void {
  const st = res.state
  const se = (k: number) => Math.sqrt(cov(k, k))
  for (const it of res.items) {
    if (it.anchored) continue
    const j = st.data.itemIds.indexOf(it.item_id)
    const base = pos[j] * perItem
    if (perItem === 1) {
      it.se_d = se(base)
      it.se_b = it.se_d / Math.abs(it.a)
    } else {
      const va = cov(base, base)
      const vd = cov(base + 1, base + 1)
      const cad = cov(base, base + 1)
      it.se_a = Math.sqrt(va)
      it.se_d = Math.sqrt(vd)
      // b = −d/a: ∂b/∂a = d/a², ∂b/∂d = −1/a.
      const ga = it.d / (it.a * it.a)
      const gd = -1 / it.a
      it.se_b = Math.sqrt(Math.max(0, ga * ga * va + gd * gd * vd + 2 * ga * gd * cad))
      if (perItem === 3) it.se_c = it.c * (1 - it.c) * se(base + 2)
    }
  }
  if (st.freeVar) res.fit.groupPars.se_variance = se(nEst * perItem + (st.freeMean ? 1 : 0))
}

/**
 * Entries of the inverse of a symmetric positive-definite matrix (only the upper triangle of
 * `A` is read; A is overwritten): Cholesky A = L Lᵀ, then X = L⁻¹ row by row (contiguous
 * axpy's), and (A⁻¹)_xy = Σ_{k ≥ max(x, y)} X_kx X_ky on demand — the standard errors need
 * only the item blocks, so the full inverse (another n³/6) is never formed. null if A is not
 * positive definite.
 */
export function spdInverse(A: Float64Array, n: number): ((x: number, y: number) => number) | null {
  if (!choleskyInPlace(A, n)) return null
  const C = new Float64Array(n * n)
  inverseColumns(A, n, C, 0, n)
  return inverseEntries(C, n)
}

/** The same with the columns of L⁻¹ split over the E-step's worker threads (they are independent). */
export async function spdInverseParallel(A: Float64Array, n: number, cols: ColumnSolver): Promise<((x: number, y: number) => number) | null> {
  const L = new Float64Array(new SharedArrayBuffer(n * n * 8))
  L.set(A)
  if (!choleskyInPlace(L, n)) return null
  const C = new Float64Array(new SharedArrayBuffer(n * n * 8))
  await cols(L, n, C)
  return inverseEntries(C, n)
}

/** Fills columns [j0, j1) of L⁻¹ for a shared L into a shared C (see inverseColumns), on as many threads as it has. */
export type ColumnSolver = (L: Float64Array, n: number, C: Float64Array) => Promise<void>

/** Lower Cholesky factor in place (reads the upper triangle as its transpose); false if not positive definite. */
export function choleskyInPlace(A: Float64Array, n: number): boolean {
  // Lower Cholesky factor in place, reading the upper triangle of A as its transpose.
  for (let i = 0; i < n; i++) {
    const ri = i * n
    for (let j = 0; j <= i; j++) {
      const rj = j * n
      // Four partial sums: the dot product is the whole cost (n³/6), and one chain of dependent adds would stall.
      let s0 = 0
      let s1 = 0
      let s2 = 0
      let s3 = 0
      let k = 0
      for (; k + 4 <= j; k += 4) {
        s0 += A[ri + k] * A[rj + k]
        s1 += A[ri + k + 1] * A[rj + k + 1]
        s2 += A[ri + k + 2] * A[rj + k + 2]
        s3 += A[ri + k + 3] * A[rj + k + 3]
      }
      for (; k < j; k++) s0 += A[ri + k] * A[rj + k]
      const s = A[rj + i] - (s0 + s1 + s2 + s3)
      if (i === j) {
        if (!(s > 0) || !Number.isFinite(s)) return false
        A[ri + i] = Math.sqrt(s)
      } else A[ri + j] = s / A[rj + j]
    }
  }
  return true
}

/**
 * Columns j0 ≤ j < j1 of L⁻¹ (L lower, row-major in A) into C[j·n + i], i ≥ j, by forward
 * substitution: each step a dot product of a row of L with the column so far (two loads per
 * product, no store). Columns are independent, so threads can split them.
 */
export function inverseColumns(A: Float64Array, n: number, C: Float64Array, j0: number, j1: number): void {
  for (let j = j0; j < j1; j++) {
    const cj = j * n
    C[cj + j] = 1 / A[j * n + j]
    for (let i = j + 1; i < n; i++) {
      const ri = i * n
      let s0 = 0
      let s1 = 0
      let s2 = 0
      let s3 = 0
      let k = j
      for (; k + 4 <= i; k += 4) {
        s0 += A[ri + k] * C[cj + k]
        s1 += A[ri + k + 1] * C[cj + k + 1]
        s2 += A[ri + k + 2] * C[cj + k + 2]
        s3 += A[ri + k + 3] * C[cj + k + 3]
      }
      for (; k < i; k++) s0 += A[ri + k] * C[cj + k]
      C[cj + i] = -(s0 + s1 + s2 + s3) / A[ri + i]
    }
  }
}

/** (A⁻¹)_xy = Σ_{k ≥ max(x, y)} (L⁻¹)_kx (L⁻¹)_ky from the columns of L⁻¹. */
function inverseEntries(C: Float64Array, n: number): (x: number, y: number) => number {
  return (x, y) => {
    let s = 0
    const cx = x * n
    const cy = y * n
    for (let k = Math.max(x, y); k < n; k++) s += C[cx + k] * C[cy + k]
    return s
  }
}
