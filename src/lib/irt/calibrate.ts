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

/** The estimates EM moves: item parameters on the slope–intercept scale (per item of the data) and the latent N(mean, variance). */
interface Estimates {
  a: Float64Array
  d: Float64Array
  c: Float64Array
  mean: number
  variance: number
}

/** Resolved settings of one calibration. */
interface Settings {
  model: IrtModel
  tol: number
  maxCycles: number
  grid: Grid
  prior: GuessingPrior | null
  minResponses: number
}

function settingsOf(opts: CalibrateOptions): Settings {
  const model = opts.model
  return {
    model,
    tol: opts.tol ?? 1e-4,
    maxCycles: opts.maxCycles ?? 500,
    grid: makeGrid(opts.quadpts ?? DEFAULT_QUADPTS, opts.thetaLim ?? DEFAULT_THETA_LIM),
    prior: model === '3PL' ? (opts.prior === undefined ? DEFAULT_GUESSING_PRIOR : opts.prior) : null,
    minResponses: opts.minResponses ?? 5,
  }
}

/** Per-item counts, which items are anchored, estimated or left out as degenerate, and the start values. */
interface ItemSetup {
  nResp: Int32Array
  nCorrect: Int32Array
  /** 0 degenerate (excluded), 1 estimated, 2 anchored. */
  status: Uint8Array
  est: Estimates
  degenerate: DegenerateItem[]
  anchorById: Map<string, AnchorItem>
}

function setUpItems(data: ResponseMatrix, anchors: AnchorItem[], { model, minResponses }: Settings, warnings: string[]): ItemSetup {
  const J = data.nItems
  const nResp = new Int32Array(J)
  const nCorrect = new Int32Array(J)
  for (let k = 0; k < data.nObs; k++) {
    nResp[data.items[k]]++
    nCorrect[data.items[k]] += data.resp[k]
  }
  const anchorById = new Map(anchors.map((x) => [x.item_id, x]))
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
  return { nResp, nCorrect, status, est: { a: A, d: D, c: C, mean: 0, variance: 1 }, degenerate, anchorById }
}

/** The E-step's input: each person's responses to the items in the fit (anchored or estimated), as likelihood cells. */
function estepInputOf(data: ResponseMatrix, status: Uint8Array, Q: number, warnings: string[]): { input: EstepInput; nPersonsUsed: number } {
  const include = new Uint8Array(data.nItems)
  for (let j = 0; j < data.nItems; j++) include[j] = status[j] ? 1 : 0
  const cells = buildCells(data.rowPtr, data.items, data.resp, Q, include)
  const nPersonsUsed = countNonEmpty(cells.rowPtr)
  if (nPersonsUsed < data.nPersons) warnings.push(`${data.nPersons - nPersonsUsed} person(s) have no response to a calibrated item and do not inform the fit`)
  return { input: { rowPtr: cells.rowPtr, cells: cells.cells, Q }, nPersonsUsed }
}

/** The free parameters as one vector: a, d, c per estimated item (as the model frees them), then the mean, then the variance. */
class FreeParameters {
  readonly perItem: number
  readonly size: number
  constructor(
    readonly estIdx: number[],
    readonly free: FreeSet,
    readonly freeMean: boolean,
    readonly freeVar: boolean,
  ) {
    this.perItem = free === 'adg' ? 3 : free === 'ad' ? 2 : 1
    this.size = estIdx.length * this.perItem + (freeMean ? 1 : 0) + (freeVar ? 1 : 0)
  }

  /** `internal`: the unbounded scale EM's acceleration works on (logit c, log variance); else the reported scale. */
  pack(e: Estimates, out: Float64Array, internal: boolean): Float64Array {
    let o = 0
    for (const j of this.estIdx) {
      if (this.perItem >= 2) out[o++] = e.a[j]
      out[o++] = e.d[j]
      if (this.perItem === 3) out[o++] = internal ? logit(e.c[j]) : e.c[j]
    }
    if (this.freeMean) out[o++] = e.mean
    if (this.freeVar) out[o++] = internal ? Math.log(e.variance) : e.variance
    return out
  }

  /** Sets the estimates from an internal-scale vector. */
  unpack(e: Estimates, x: Float64Array): void {
    let o = 0
    for (const j of this.estIdx) {
      if (this.perItem >= 2) e.a[j] = x[o++]
      e.d[j] = x[o++]
      if (this.perItem === 3) e.c[j] = Math.min(1 - 1e-8, Math.max(1e-8, sigmoid(x[o++])))
    }
    if (this.freeMean) e.mean = x[o++]
    if (this.freeVar) e.variance = Math.exp(x[o++])
  }
}

function logPriorOf(prior: GuessingPrior | null, estIdx: number[], c: Float64Array): number {
  if (!prior) return 0
  let s = 0
  for (const j of estIdx) s += guessingPriorTerms(prior, c[j]).value
  return s
}

type Estep = (scores?: boolean, missing?: MissingInfoParams) => ReturnType<EstepRunner['run']>

/** One E-step at the current estimates. */
function estepAt(runner: EstepRunner, grid: Grid, e: Estimates, nItems: number): Estep {
  const logT = new Float64Array(2 * nItems * grid.size)
  const logW = new Float64Array(grid.size)
  return async (scores = false, missing?: MissingInfoParams) => {
    fillLogTable(grid.nodes, e.a, e.d, e.c, logT)
    logNormalWeights(grid, e.mean, e.variance, logW)
    return runner.run(logT, logW, { scores, nodes: grid.nodes, missing })
  }
}

/** M-step: each estimated item from its expected counts (r correct of n) at each node, then the latent moments if free. */
function mstep(out: Awaited<ReturnType<Estep>>, e: Estimates, fp: FreeParameters, grid: Grid, prior: GuessingPrior | null, r: Float64Array, n: Float64Array): void {
  const Q = grid.size
  const counts = out.counts
  for (const j of fp.estIdx) {
    const o0 = 2 * j * Q
    for (let q = 0; q < Q; q++) {
      const r1 = counts[o0 + Q + q]
      r[q] = r1
      n[q] = r1 + counts[o0 + q]
    }
    const st = mstepItem(grid.nodes, r, n, { a: e.a[j], d: e.d[j], c: e.c[j] }, { free: fp.free, prior })
    e.a[j] = st.a
    e.d[j] = st.d
    e.c[j] = st.c
  }
  if (fp.freeMean || fp.freeVar) {
    const g = latentMoments(grid.nodes, out.nodeTotals, fp.freeMean ? null : e.mean)
    if (fp.freeMean) e.mean = g.mean
    if (fp.freeVar) e.variance = g.variance
  }
}

/**
 * Ramsay (1975): with linear convergence at rate ρ, x* ≈ x_{t+1} + ρ/(1−ρ)·Δ_t, where ρ/(1−ρ) is
 * estimated by ‖Δ_t‖ / ‖Δ_t − Δ_{t−1}‖ (bounded at 5). Returns 0 when there is nothing to gain.
 */
function ramsayRatio(xOld: Float64Array, xNew: Float64Array, dPrev: Float64Array): number {
  let num = 0
  let den = 0
  for (let k = 0; k < xNew.length; k++) {
    const dk = xNew[k] - xOld[k]
    num += dk * dk
    const dd = dk - dPrev[k]
    den += dd * dd
  }
  const ratio = den > 0 ? Math.min(5, Math.sqrt(num / den)) : 0
  return ratio > 0.05 ? ratio : 0
}

interface EmOutcome {
  iterations: number
  converged: boolean
  maxChange: number
}

/**
 * The EM cycles: E-step, M-step, stop when the largest absolute parameter change is below `tol`;
 * every third cycle an accelerated step, undone at the next E-step when it lowered the (penalised)
 * log-likelihood. Leaves the estimates at the last plain or accepted step.
 */
async function runEm(estep: Estep, e: Estimates, fp: FreeParameters, s: Settings, accelerate: boolean, onCycle: CalibrateOptions['onCycle']): Promise<EmOutcome> {
  const nx = fp.size
  const r = new Float64Array(s.grid.size)
  const n = new Float64Array(s.grid.size)
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
  for (let cycle = 1; cycle <= s.maxCycles; cycle++) {
    let out = await estep()
    let obj = out.logLik + logPriorOf(s.prior, fp.estIdx, e.c)
    if (accelPending) {
      accelPending = false
      if (!(obj >= objBeforeAccel - 1e-9 * Math.abs(objBeforeAccel))) {
        // The extrapolated point is worse than where the last EM step started: take the plain EM step instead.
        fp.unpack(e, fallback)
        out = await estep()
        obj = out.logLik + logPriorOf(s.prior, fp.estIdx, e.c)
      }
    }
    fp.pack(e, xOld, true)
    fp.pack(e, xExtOld, false)
    mstep(out, e, fp, s.grid, s.prior, r, n)
    iterations = cycle
    fp.pack(e, xNew, true)
    fp.pack(e, xExtNew, false)
    maxChange = 0
    for (let k = 0; k < nx; k++) maxChange = Math.max(maxChange, Math.abs(xExtNew[k] - xExtOld[k]))
    let accelerated = false
    if (maxChange < s.tol) {
      converged = true
      onCycle?.({ cycle, logLik: out.logLik, maxChange, accelerated })
      break
    }
    if (accelerate && havePrev && cycle % 3 === 0) {
      const ratio = ramsayRatio(xOld, xNew, dPrev)
      if (ratio > 0) {
        fallback.set(xNew)
        const xa = new Float64Array(nx)
        for (let k = 0; k < nx; k++) xa[k] = xNew[k] + ratio * (xNew[k] - xOld[k])
        fp.unpack(e, xa)
        accelPending = true
        objBeforeAccel = obj
        accelerated = true
      }
    }
    for (let k = 0; k < nx; k++) dPrev[k] = xNew[k] - xOld[k]
    havePrev = true
    onCycle?.({ cycle, logLik: out.logLik, maxChange, accelerated })
  }
  if (accelPending) fp.unpack(e, fallback)
  return { iterations, converged, maxChange }
}

/** The reported items (IRT scale, counts, plausibility flags); SEs and fit are filled in later. */
function reportedItems(data: ResponseMatrix, items: ItemSetup, warnings: string[]): CalibratedItem[] {
  const { status, est: e, nResp, nCorrect } = items
  const out: CalibratedItem[] = []
  for (let j = 0; j < data.nItems; j++) {
    if (!status[j]) continue
    const p = toIrt(data.itemIds[j], e.a[j], e.d[j], e.c[j])
    const flags: string[] = []
    if (status[j] === 1) {
      if (e.a[j] < 0) flags.push('negative_slope')
      if (Math.abs(e.a[j]) > 6) flags.push('extreme_slope')
      if (Math.abs(p.b) > 6) flags.push('extreme_difficulty')
    }
    out.push({ ...p, se_a: null, se_b: null, se_c: null, se_d: null, anchored: status[j] === 2, n: nResp[j], p_correct: nCorrect[j] / nResp[j], infit: null, outfit: null, flags })
  }
  const flagged = out.filter((x) => x.flags.length)
  if (flagged.length) warnings.push(`${flagged.length} item(s) with implausible estimates: ${flagged.slice(0, 5).map((x) => `${x.item_id} (${x.flags.join(', ')})`).join('; ')}`)
  return out
}

/**
 * Marginal maximum likelihood calibration by EM (Bock & Aitkin 1981) on a fixed grid, with
 * Ramsay (1975) acceleration and a monotonicity safeguard (an accelerated step that lowers the
 * (penalised) log-likelihood is undone). The stopping rule is mirt's: the largest absolute change
 * of any estimated parameter between cycles is below `tol`.
 */
export async function calibrate(data: ResponseMatrix, opts: CalibrateOptions): Promise<CalibrationResult> {
  const t0 = Date.now()
  const s = settingsOf(opts)
  const { model, grid, prior } = s
  const warnings: string[] = []
  const J = data.nItems

  const items = setUpItems(data, opts.anchors ?? [], s, warnings)
  const { status, est: e } = items
  const estIdx: number[] = []
  for (let j = 0; j < J; j++) if (status[j] === 1) estIdx.push(j)
  if (estIdx.length === 0 && !(opts.freeLatent || model === 'Rasch')) warnings.push('no item left to calibrate')
  const { input, nPersonsUsed } = estepInputOf(data, status, grid.size, warnings)

  const freeVar = model === 'Rasch' || !!opts.freeLatent
  const freeMean = !!opts.freeLatent
  if (opts.freeLatent && items.anchorById.size === 0 && model !== 'Rasch') warnings.push('freeLatent without anchors leaves the scale unidentified; results are arbitrary up to a linear transformation')
  const fp = new FreeParameters(estIdx, freeSetOf(model), freeMean, freeVar)

  const runner = opts.runnerFactory ? await opts.runnerFactory(input, J) : await makeRunner(input, J, opts.threads ?? 'auto', grid.nodes)
  const estep = estepAt(runner, grid, e, J)
  try {
    const em = await runEm(estep, e, fp, s, opts.accelerate !== false, opts.onCycle)
    if (!em.converged) warnings.push(`EM did not converge in ${s.maxCycles} cycles (last max parameter change ${em.maxChange.toExponential(2)} > ${s.tol}); estimates may be inaccurate`)

    // Final E-step at the estimates: reported log-likelihood, counts and the missing information for
    // the SEs (from the same converged posteriors), EAP scores for item fit.
    const tFin = Date.now()
    const seParams = opts.se !== false ? (await import('./se.js')).missingInfoParams({ grid, model, a: e.a, d: e.d, c: e.c, status, mean: e.mean, variance: e.variance, freeMean, freeVar }) : null
    const fin = await estep(true, seParams ?? undefined)
    const finSeconds = (Date.now() - tFin) / 1000
    const state: EngineState = { grid, model, prior, a: e.a, d: e.d, c: e.c, status, mean: e.mean, variance: e.variance, freeMean, freeVar, input, data }
    const k = fp.size
    const fit: FitSummary = {
      model,
      nPersons: data.nPersons,
      nItems: J,
      nObs: data.nObs,
      logLik: fin.logLik,
      logPrior: logPriorOf(prior, estIdx, e.c),
      AIC: -2 * fin.logLik + 2 * k,
      BIC: -2 * fin.logLik + k * Math.log(nPersonsUsed),
      nParameters: k,
      iterations: em.iterations,
      converged: em.converged,
      maxChange: em.maxChange,
      groupPars: { mean: e.mean, variance: e.variance, se_variance: null, estimated: freeVar || freeMean },
      quadpts: grid.size,
      thetaLim: [grid.nodes[0], grid.nodes[grid.size - 1]],
      tol: s.tol,
      threads: runner.threads,
      seconds: 0,
      seSeconds: null,
    }
    const result: CalibrationResult = { items: reportedItems(data, items, warnings), fit, degenerate: items.degenerate, warnings, state }
    if (opts.se !== false) {
      const { attachStandardErrors } = await import('./se.js')
      const tSe = Date.now()
      await attachStandardErrors(result, fin.counts, fin.nodeTotals, fin.missing, { theta: fin.theta, se: fin.se }, runner.solveColumns?.bind(runner))
      // The final E-step does the SEs' per-person work with the counts; count it with them.
      fit.seSeconds = (Date.now() - tSe) / 1000 + (fin.missing ? finSeconds : 0)
    }
    const { attachItemFit } = await import('./itemfit.js')
    result.scores = attachItemFit(result, fin.theta && fin.se ? { theta: fin.theta, se: fin.se } : undefined)
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
