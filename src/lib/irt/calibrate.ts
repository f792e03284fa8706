import type { ResponseMatrix } from './data.js'
import { buildCells, fillLogTable, type EstepInput } from './estep.js'
import { DEFAULT_QUADPTS, DEFAULT_THETA_LIM, logNormalWeights, makeGrid, type Grid } from './grid.js'
import { DEFAULT_GUESSING_PRIOR, guessingPriorTerms, logit, sigmoid, toIrt, type GuessingPrior, type IrtModel } from './model.js'
import { mstepItem, type FreeSet } from './mstep.js'
import type { MissingInfoParams } from './missing-info.js'
import { serialRunner, type EstepRunner } from './runner.js'

export interface AnchorItem {
  item_id: string
  a: number
  b: number
  c?: number
}

export interface CycleInfo {
  cycle: number
  logLik: number
  /** Largest absolute parameter change in this cycle (c on the probability scale). */
  maxChange: number
  accelerated: boolean
}

export interface CalibrateOptions {
  model: IrtModel
  /** Items whose parameters are held fixed; the other items are calibrated on their scale. */
  anchors?: AnchorItem[]
  /** Prior on the 3PL lower asymptote (default Beta(5, 17), as mirt's `expbeta`); null for none. */
  prior?: GuessingPrior | null
  /** Stop when the largest absolute parameter change between cycles is below this (default 1e-4, as mirt's TOL). */
  tol?: number
  maxCycles?: number
  quadpts?: number
  thetaLim?: readonly [number, number]
  /** Ramsay (1975) acceleration every third cycle (default true). */
  accelerate?: boolean
  /** Items with fewer responses than this are reported as degenerate and not calibrated (default 5). */
  minResponses?: number
  /**
   * Estimate the latent mean and variance. Default: variance only for Rasch (mean 0), nothing
   * otherwise (N(0, 1) identifies the scale). With anchors the scale is set by them, so freeing
   * the latent distribution puts new items on the anchors' scale.
   */
  freeLatent?: boolean
  /** Item standard errors from the observed information (default true). */
  se?: boolean
  /** E-step worker threads: a number, or 'auto' (use workers when the data are large). Default 'auto'. */
  threads?: number | 'auto'
  onCycle?: (info: CycleInfo) => void
  /** Internal: supply a custom E-step runner (used by tests and the parallel runner). */
  runnerFactory?: (input: EstepInput, nItems: number) => Promise<EstepRunner> | EstepRunner
}

export interface CalibratedItem {
  item_id: string
  a: number
  b: number
  c: number
  d: number
  se_a: number | null
  se_b: number | null
  se_c: number | null
  se_d: number | null
  anchored: boolean
  n: number
  p_correct: number
  /** Infit / outfit mean squares at the persons' EAP θ (≈1 when the model fits). */
  infit: number | null
  outfit: number | null
  flags: string[]
}

export interface DegenerateItem {
  item_id: string
  reason: 'all_correct' | 'all_wrong' | 'too_few_responses'
  n: number
  n_correct: number
}

export interface FitSummary {
  model: IrtModel
  nPersons: number
  nItems: number
  nObs: number
  logLik: number
  logPrior: number
  AIC: number
  BIC: number
  nParameters: number
  iterations: number
  converged: boolean
  maxChange: number
  groupPars: { mean: number; variance: number; se_variance: number | null; estimated: boolean }
  quadpts: number
  thetaLim: [number, number]
  tol: number
  threads: number
  seconds: number
  /** Of `seconds`, the standard errors including the final E-step that also serves them (an upper bound; null when not computed). */
  seSeconds: number | null
}

export interface CalibrationResult {
  items: CalibratedItem[]
  fit: FitSummary
  degenerate: DegenerateItem[]
  warnings: string[]
  /** Internal state for scoring and standard errors. */
  state: EngineState
  /** EAP θ and posterior SD of every person (data order) under the fitted model; NaN without responses. */
  scores?: { theta: Float64Array; se: Float64Array }
}

/** Everything needed to recompute the likelihood at the estimates (used by SEs, fit, scoring). */
export interface EngineState {
  grid: Grid
  model: IrtModel
  prior: GuessingPrior | null
  /** Per item of the data: parameters (NaN for degenerate items). */
  a: Float64Array
  d: Float64Array
  c: Float64Array
  /** 0 degenerate (excluded), 1 estimated, 2 anchored. */
  status: Uint8Array
  mean: number
  variance: number
  freeMean: boolean
  freeVar: boolean
  input: EstepInput
  data: ResponseMatrix
}

function freeSetOf(model: IrtModel): FreeSet {
  return model === '3PL' ? 'adg' : model === '2PL' ? 'ad' : 'd'
}

/**
 * Marginal maximum likelihood calibration by EM (Bock & Aitkin 1981) on a fixed grid, with
 * Ramsay (1975) acceleration and a monotonicity safeguard (an accelerated step that lowers the
 * (penalised) log-likelihood is undone). The stopping rule is mirt's: the largest absolute change
 * of any estimated parameter between cycles is below `tol`.
 */
export async function calibrate(data: ResponseMatrix, opts: CalibrateOptions): Promise<CalibrationResult> {
  const t0 = Date.now()
  const model = opts.model
  const tol = opts.tol ?? 1e-4
  const maxCycles = opts.maxCycles ?? 500
  const grid = makeGrid(opts.quadpts ?? DEFAULT_QUADPTS, opts.thetaLim ?? DEFAULT_THETA_LIM)
  const Q = grid.size
  const nodes = grid.nodes
  const prior = model === '3PL' ? (opts.prior === undefined ? DEFAULT_GUESSING_PRIOR : opts.prior) : null
  const minResponses = opts.minResponses ?? 5
  const warnings: string[] = []
  const J = data.nItems

  // Item counts and degenerate items.
  const nResp = new Int32Array(J)
  const nCorrect = new Int32Array(J)
  for (let k = 0; k < data.nObs; k++) {
    nResp[data.items[k]]++
    nCorrect[data.items[k]] += data.resp[k]
  }
  const anchorById = new Map((opts.anchors ?? []).map((x) => [x.item_id, x]))
  const status = new Uint8Array(J)
  const A = new Float64Array(J).fill(NaN)
  const D = new Float64Array(J).fill(NaN)
  const C = new Float64Array(J).fill(0)
  const degenerate: DegenerateItem[] = []
  for (let j = 0; j < J; j++) {
    const id = data.itemIds[j]
    const anc = anchorById.get(id)
    if (anc) {
      status[j] = 2
      A[j] = anc.a
      D[j] = -anc.a * anc.b
      C[j] = anc.c ?? 0
      continue
    }
    const n = nResp[j]
    const r = nCorrect[j]
    const reason = n < minResponses ? 'too_few_responses' : r === n ? 'all_correct' : r === 0 ? 'all_wrong' : null
    if (reason) {
      degenerate.push({ item_id: id, reason, n, n_correct: r })
      continue
    }
    status[j] = 1
    // Start values: a = 1, d from the proportion correct (logit, inflated for the latent spread), c at the prior mode.
    const p = (r + 0.5) / (n + 1)
    A[j] = 1
    C[j] = model === '3PL' ? 0.2 : 0
    const pAdj = model === '3PL' ? Math.min(0.99, Math.max(0.01, (p - C[j]) / (1 - C[j]))) : p
    D[j] = logit(pAdj) * 1.3
  }
  for (const id of anchorById.keys()) if (!data.itemIds.includes(id)) warnings.push(`anchor item ${id} has no responses in the data and was ignored`)
  if (degenerate.length) warnings.push(`${degenerate.length} item(s) not calibrated (all correct, all wrong or fewer than ${minResponses} responses): ${degenerate.slice(0, 5).map((x) => `${x.item_id} (${x.reason})`).join(', ')}${degenerate.length > 5 ? ', …' : ''}`)
  const nEst = status.reduce((s, v) => s + (v === 1 ? 1 : 0), 0)
  if (nEst === 0 && !(opts.freeLatent || model === 'Rasch')) warnings.push('no item left to calibrate')

  const include = new Uint8Array(J)
  for (let j = 0; j < J; j++) include[j] = status[j] ? 1 : 0
  const cells = buildCells(data.rowPtr, data.items, data.resp, Q, include)
  const input: EstepInput = { rowPtr: cells.rowPtr, cells: cells.cells, Q }
  const nPersonsUsed = countNonEmpty(cells.rowPtr)
  if (nPersonsUsed < data.nPersons) warnings.push(`${data.nPersons - nPersonsUsed} person(s) have no response to a calibrated item and do not inform the fit`)

  const freeVar = model === 'Rasch' || !!opts.freeLatent
  const freeMean = !!opts.freeLatent
  if (opts.freeLatent && anchorById.size === 0 && model !== 'Rasch') warnings.push('freeLatent without anchors leaves the scale unidentified; results are arbitrary up to a linear transformation')
  let mean = 0
  let variance = 1

  const free = freeSetOf(model)
  const estIdx: number[] = []
  for (let j = 0; j < J; j++) if (status[j] === 1) estIdx.push(j)
  const perItem = free === 'adg' ? 3 : free === 'ad' ? 2 : 1
  const nx = estIdx.length * perItem + (freeMean ? 1 : 0) + (freeVar ? 1 : 0)

  /** Internal (unbounded) parameter vector: a, d, logit c per item; mean; log variance. */
  const pack = (out: Float64Array, internal: boolean) => {
    let o = 0
    for (const j of estIdx) {
      if (perItem >= 2) out[o++] = A[j]
      out[o++] = D[j]
      if (perItem === 3) out[o++] = internal ? logit(C[j]) : C[j]
    }
    if (freeMean) out[o++] = mean
    if (freeVar) out[o++] = internal ? Math.log(variance) : variance
    return out
  }
  const unpack = (x: Float64Array) => {
    let o = 0
    for (const j of estIdx) {
      if (perItem >= 2) A[j] = x[o++]
      D[j] = x[o++]
      if (perItem === 3) C[j] = Math.min(1 - 1e-8, Math.max(1e-8, sigmoid(x[o++])))
    }
    if (freeMean) mean = x[o++]
    if (freeVar) variance = Math.exp(x[o++])
  }

  const logPriorOf = () => {
    if (!prior) return 0
    let s = 0
    for (const j of estIdx) s += guessingPriorTerms(prior, C[j]).value
    return s
  }

  const threads = opts.threads ?? 'auto'
  const runner = opts.runnerFactory ? await opts.runnerFactory(input, J) : await makeRunner(input, J, threads, nodes)
  const logT = new Float64Array(2 * J * Q)
  const logW = new Float64Array(Q)
  const r = new Float64Array(Q)
  const n = new Float64Array(Q)
  const xOld = new Float64Array(nx)
  const xNew = new Float64Array(nx)
  const xExtOld = new Float64Array(nx)
  const xExtNew = new Float64Array(nx)
  const dPrev = new Float64Array(nx)
  const fallback = new Float64Array(nx)
  let havePrev = false
  let accelPending = false
  let objBeforeAccel = -Infinity
  let iterations = 0
  let converged = false
  let maxChange = Infinity
  let lastLogLik = NaN

  const estep = async (scores = false, missing?: MissingInfoParams) => {
    fillLogTable(nodes, A, D, C, logT)
    logNormalWeights(grid, mean, variance, logW)
    return runner.run(logT, logW, { scores, nodes, missing })
  }

  try {
    for (let cycle = 1; cycle <= maxCycles; cycle++) {
      let out = await estep()
      let obj = out.logLik + logPriorOf()
      if (accelPending) {
        accelPending = false
        if (!(obj >= objBeforeAccel - 1e-9 * Math.abs(objBeforeAccel))) {
          // The extrapolated point is worse than where the last EM step started: take the plain EM step instead.
          unpack(fallback)
          out = await estep()
          obj = out.logLik + logPriorOf()
        }
      }
      lastLogLik = out.logLik
      pack(xOld, true)
      pack(xExtOld, false)
      // M-step, item by item.
      const counts = out.counts
      for (const j of estIdx) {
        const o0 = 2 * j * Q
        for (let q = 0; q < Q; q++) {
          const r1 = counts[o0 + Q + q]
          r[q] = r1
          n[q] = r1 + counts[o0 + q]
        }
        const st = mstepItem(nodes, r, n, { a: A[j], d: D[j], c: C[j] }, { free, prior })
        A[j] = st.a
        D[j] = st.d
        C[j] = st.c
      }
      if (freeMean || freeVar) {
        const g = latentMoments(nodes, out.nodeTotals, freeMean ? null : mean)
        if (freeMean) mean = g.mean
        if (freeVar) variance = g.variance
      }
      iterations = cycle
      pack(xNew, true)
      pack(xExtNew, false)
      maxChange = 0
      for (let k = 0; k < nx; k++) maxChange = Math.max(maxChange, Math.abs(xExtNew[k] - xExtOld[k]))
      let accelerated = false
      if (maxChange < tol) {
        converged = true
        opts.onCycle?.({ cycle, logLik: lastLogLik, maxChange, accelerated })
        break
      }
      // Ramsay (1975): with linear convergence at rate ρ, x* ≈ x_{t+1} + ρ/(1−ρ)·Δ_t, where
      // ρ/(1−ρ) is estimated by ‖Δ_t‖ / ‖Δ_t − Δ_{t−1}‖. Applied every third cycle, bounded.
      if (opts.accelerate !== false && havePrev && cycle % 3 === 0) {
        let num = 0
        let den = 0
        for (let k = 0; k < nx; k++) {
          const dk = xNew[k] - xOld[k]
          num += dk * dk
          const dd = dk - dPrev[k]
          den += dd * dd
        }
        const ratio = den > 0 ? Math.min(5, Math.sqrt(num / den)) : 0
        if (ratio > 0.05) {
          fallback.set(xNew)
          const xa = new Float64Array(nx)
          for (let k = 0; k < nx; k++) xa[k] = xNew[k] + ratio * (xNew[k] - xOld[k])
          unpack(xa)
          accelPending = true
          objBeforeAccel = obj
          accelerated = true
        }
      }
      for (let k = 0; k < nx; k++) dPrev[k] = xNew[k] - xOld[k]
      havePrev = true
      opts.onCycle?.({ cycle, logLik: lastLogLik, maxChange, accelerated })
    }
    if (accelPending) unpack(fallback)
    if (!converged) warnings.push(`EM did not converge in ${maxCycles} cycles (last max parameter change ${maxChange.toExponential(2)} > ${tol}); estimates may be inaccurate`)

    // Final E-step at the estimates: reported log-likelihood, counts and the missing information for
    // the SEs (from the same converged posteriors), EAP scores for item fit.
    const tFin = Date.now()
    const seParams = opts.se !== false ? (await import('./se.js')).missingInfoParams({ grid, model, a: A, d: D, c: C, status, mean, variance, freeMean, freeVar }) : null
    const fin = await estep(true, seParams ?? undefined)
    const finSeconds = (Date.now() - tFin) / 1000
    lastLogLik = fin.logLik
    const state: EngineState = { grid, model, prior, a: A, d: D, c: C, status, mean, variance, freeMean, freeVar, input, data }
    const logPrior = logPriorOf()
    const k = nx
    const nP = nPersonsUsed
    const items: CalibratedItem[] = []
    for (let j = 0; j < J; j++) {
      if (!status[j]) continue
      const p = toIrt(data.itemIds[j], A[j], D[j], C[j])
      const flags: string[] = []
      if (status[j] === 1) {
        if (A[j] < 0) flags.push('negative_slope')
        if (Math.abs(A[j]) > 6) flags.push('extreme_slope')
        if (Math.abs(p.b) > 6) flags.push('extreme_difficulty')
      }
      items.push({ ...p, se_a: null, se_b: null, se_c: null, se_d: null, anchored: status[j] === 2, n: nResp[j], p_correct: nCorrect[j] / nResp[j], infit: null, outfit: null, flags })
    }
    const flagged = items.filter((x) => x.flags.length)
    if (flagged.length) warnings.push(`${flagged.length} item(s) with implausible estimates: ${flagged.slice(0, 5).map((x) => `${x.item_id} (${x.flags.join(', ')})`).join('; ')}`)
    const fit: FitSummary = {
      model,
      nPersons: data.nPersons,
      nItems: J,
      nObs: data.nObs,
      logLik: lastLogLik,
      logPrior,
      AIC: -2 * lastLogLik + 2 * k,
      BIC: -2 * lastLogLik + k * Math.log(nP),
      nParameters: k,
      iterations,
      converged,
      maxChange,
      groupPars: { mean, variance, se_variance: null, estimated: freeVar || freeMean },
      quadpts: Q,
      thetaLim: [nodes[0], nodes[Q - 1]],
      tol,
      threads: runner.threads,
      seconds: 0,
      seSeconds: null,
    }
    const result: CalibrationResult = { items, fit, degenerate, warnings, state }
    if (opts.se !== false) {
      const { attachStandardErrors } = await import('./se.js')
      const tSe = Date.now()
      await attachStandardErrors(result, fin.counts, fin.nodeTotals, fin.missing, { theta: fin.theta, se: fin.se }, runner.solveColumns?.bind(runner))
      // The final E-step does the SEs' per-person work with the counts; count it with them.
      fit.seSeconds = (Date.now() - tSe) / 1000 + (fin.missing ? finSeconds : 0)
    }
    const { attachItemFit } = await import('./itemfit.js')
    const eap = attachItemFit(result, fin.theta && fin.se ? { theta: fin.theta, se: fin.se } : undefined)
    result.scores = eap
    fit.seconds = (Date.now() - t0) / 1000
    return result
  } finally {
    await runner.close()
  }
}

function countNonEmpty(rowPtr: Int32Array): number {
  let n = 0
  for (let i = 0; i + 1 < rowPtr.length; i++) if (rowPtr[i + 1] > rowPtr[i]) n++
  return n
}

/**
 * M-step for the latent N(μ, σ²) on the fixed grid: the maximiser of Σ_q N_q log w_q(μ, σ²) is
 * (to grid accuracy) the moments of the expected node totals N_q (Bock & Aitkin 1981, §4;
 * mirt's Rasch variance). With μ held, σ² = Σ N_q (θ_q − μ)² / Σ N_q.
 */
export function latentMoments(nodes: Float64Array, totals: Float64Array, fixedMean: number | null): { mean: number; variance: number } {
  let s0 = 0
  let s1 = 0
  for (let q = 0; q < nodes.length; q++) {
    s0 += totals[q]
    s1 += totals[q] * nodes[q]
  }
  const mean = fixedMean ?? s1 / s0
  let s2 = 0
  for (let q = 0; q < nodes.length; q++) s2 += totals[q] * (nodes[q] - mean) ** 2
  return { mean, variance: s2 / s0 }
}

async function makeRunner(input: EstepInput, nItems: number, threads: number | 'auto', nodes: Float64Array): Promise<EstepRunner> {
  const { chooseThreads, parallelRunner } = await import('./parallel.js')
  const t = chooseThreads(input, threads)
  if (t > 1) {
    const pr = await parallelRunner(input, nItems, t, nodes)
    if (pr) return pr
  }
  return serialRunner(input, nItems)
}
