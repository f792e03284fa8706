import { estepRange, type EstepInput, type EstepOutput } from './estep.js'

/** Runs the E-step over all persons; the parallel implementation lives in parallel.ts. */
export interface EstepRunner {
  run(logT: Float64Array, logPrior: Float64Array): Promise<EstepOutput>
  close(): Promise<void>
  readonly threads: number
}

export function serialRunner(input: EstepInput, nItems: number): EstepRunner {
  const counts = new Float64Array(2 * nItems * input.Q)
  const nodeTotals = new Float64Array(input.Q)
  return {
    threads: 1,
    async run(logT, logPrior) {
      counts.fill(0)
      nodeTotals.fill(0)
      const logLik = estepRange(input, logT, logPrior, counts, nodeTotals, 0, input.rowPtr.length - 1)
      return { logLik, counts, nodeTotals }
    },
    async close() {},
  }
}
