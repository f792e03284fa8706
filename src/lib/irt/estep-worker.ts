/**
 * Worker side of the parallel E-step (see parallel.ts). Holds views on shared memory: the data
 * (row pointers, cells), the log table and log prior written by the main thread each cycle, and
 * its own output block (counts, node totals). On each "run" it processes its person range.
 */
import { parentPort } from 'node:worker_threads'
import { estepRange, newWindows, type EapOut, type PosteriorWindows } from './estep.js'
import { MissingInfo, maxResponses, type MissingInfoParams } from './missing-info.js'
import { inverseColumns } from './se.js'

interface Init {
  rowPtr: SharedArrayBuffer
  cells: SharedArrayBuffer
  logT: SharedArrayBuffer
  logPrior: SharedArrayBuffer
  counts: SharedArrayBuffer
  totals: SharedArrayBuffer
  theta: SharedArrayBuffer
  se: SharedArrayBuffer
  nodes: Float64Array
  Q: number
  p0: number
  p1: number
}

let state: { input: { rowPtr: Int32Array; cells: Int32Array; Q: number }; logT: Float64Array; logPrior: Float64Array; counts: Float64Array; totals: Float64Array; p0: number; p1: number; win: PosteriorWindows; eap: EapOut } | null = null

parentPort!.on('message', (msg: { cmd: 'init'; init: Init } | { cmd: 'run'; full?: boolean; scores?: boolean; missing?: MissingInfoParams; out?: SharedArrayBuffer } | { cmd: 'lcols'; L: SharedArrayBuffer; C: SharedArrayBuffer; n: number; j0: number; j1: number }) => {
  if (msg.cmd === 'init') {
    const m = msg.init
    state = {
      input: { rowPtr: new Int32Array(m.rowPtr), cells: new Int32Array(m.cells), Q: m.Q },
      logT: new Float64Array(m.logT),
      logPrior: new Float64Array(m.logPrior),
      counts: new Float64Array(m.counts),
      totals: new Float64Array(m.totals),
      p0: m.p0,
      p1: m.p1,
      win: newWindows(m.p1, m.Q),
      eap: { nodes: m.nodes, theta: new Float64Array(m.theta), se: new Float64Array(m.se) },
    }
    parentPort!.postMessage({ ok: true })
    return
  }
  if (msg.cmd === 'lcols') {
    // Standard errors: this thread's columns of L⁻¹ (se.ts inverseColumns).
    inverseColumns(new Float64Array(msg.L), msg.n, new Float64Array(msg.C), msg.j0, msg.j1)
    parentPort!.postMessage({ ok: true, ll: 0 })
    return
  }
  const s = state!
  s.counts.fill(0)
  s.totals.fill(0)
  if (msg.full) {
    s.win.lo.fill(0)
    s.win.hi.fill(s.input.Q - 1)
  }
  const mi = msg.missing && msg.out ? new MissingInfo(msg.missing, maxResponses(s.input.rowPtr, s.p0, s.p1), new Float64Array(msg.out), s.input.rowPtr[s.p1] - s.input.rowPtr[s.p0]) : undefined
  const ll = estepRange(s.input, s.logT, s.logPrior, s.counts, s.totals, s.p0, s.p1, s.win, msg.scores ? s.eap : undefined, mi)
  mi?.result()
  parentPort!.postMessage({ ok: true, ll })
})
