import { estepRange, newWindows, type EstepInput, type EstepOutput } from './estep.js'

/** Runs the E-step over all persons; the parallel implementation lives in parallel.ts. */
export interface EstepRunner {
  /** `full` ignores the posterior windows of earlier cycles (used for the final, reported E-step). */
  run(logT: Float64Array, logPrior: Float64Array, full?: boolean): Promise<EstepOutput>
  close(): Promise<void>
  readonly threads: number
}

export function serialRunner(input: EstepInput, nItems: number): EstepRunner {
  const counts = new Float64Array(2 * nItems * input.Q)
  const nodeTotals = new Float64Array(input.Q)
  const nP = input.rowPtr.length - 1
  const win = newWindows(nP, input.Q)
  return {
    threads: 1,
    async run(logT, logPrior, full) {
      counts.fill(0)
      nodeTotals.fill(0)
      if (full) {
        win.lo.fill(0)
        win.hi.fill(input.Q - 1)
      }
      const logLik = estepRange(input, logT, logPrior, counts, nodeTotals, 0, nP, win)
      return { logLik, counts, nodeTotals }
    },
    async close() {},
  }
}
