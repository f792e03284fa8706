import { MissingInfo, maxResponses, type MissingInfoParams } from './missing-info.js'
import { estepRange, newWindows, type EstepInput, type EstepOutput } from './estep.js'

/** Runs the E-step over all persons; the parallel implementation lives in parallel.ts. */
export interface EstepRunner {
  /** `full` ignores the posterior windows of earlier cycles; `scores` also returns EAP θ and SE per person. */
  run(logT: Float64Array, logPrior: Float64Array, opts?: RunOptions): Promise<EstepOutput>
  close(): Promise<void>
  readonly threads: number
  /** Columns of L⁻¹ for the standard errors, split over the threads (parallel runner only). */
  solveColumns?(L: Float64Array, n: number, C: Float64Array): Promise<void>
}

export interface RunOptions {
  full?: boolean
  scores?: boolean
  /** Grid nodes, needed with `scores`. */
  nodes?: Float64Array
  /** Also accumulate the standard errors' missing information from this E-step's posteriors. */
  missing?: MissingInfoParams
}

export function serialRunner(input: EstepInput, nItems: number): EstepRunner {
  const counts = new Float64Array(2 * nItems * input.Q)
  const nodeTotals = new Float64Array(input.Q)
  const nP = input.rowPtr.length - 1
  const win = newWindows(nP, input.Q)
  return {
    threads: 1,
    async run(logT, logPrior, opts = {}) {
      counts.fill(0)
      nodeTotals.fill(0)
      if (opts.full) {
        win.lo.fill(0)
        win.hi.fill(input.Q - 1)
      }
      const eap = opts.scores ? { nodes: opts.nodes!, theta: new Float64Array(nP), se: new Float64Array(nP) } : undefined
      const mi = opts.missing ? new MissingInfo(opts.missing, maxResponses(input.rowPtr, 0, nP), undefined, input.cells.length) : undefined
      const logLik = estepRange(input, logT, logPrior, counts, nodeTotals, 0, nP, win, eap, mi)
      return { logLik, counts, nodeTotals, theta: eap?.theta, se: eap?.se, missing: mi?.result() }
    },
    async close() {},
  }
}
