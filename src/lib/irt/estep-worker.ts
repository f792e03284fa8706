/**
 * Worker side of the parallel E-step (see parallel.ts). Holds views on shared memory: the data
 * (row pointers, cells), the log table and log prior written by the main thread each cycle, and
 * its own output block (counts, node totals). On each "run" it processes its person range.
 */
import { parentPort } from 'node:worker_threads'
import { estepRange, newWindows, type EapOut, type PosteriorWindows } from './estep.js'
import { missingInfoRange, type MissingInfoInput } from './missing-info.js'

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

type MissingMsg = { cmd: 'missing'; params: Omit<MissingInfoInput, 'rowPtr' | 'cells' | 'logT'>; out: SharedArrayBuffer }

let state: { input: { rowPtr: Int32Array; cells: Int32Array; Q: number }; logT: Float64Array; logPrior: Float64Array; counts: Float64Array; totals: Float64Array; p0: number; p1: number; win: PosteriorWindows; eap: EapOut } | null = null

parentPort!.on('message', (msg: { cmd: 'init'; init: Init } | { cmd: 'run'; full?: boolean; scores?: boolean } | MissingMsg) => {
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
  const s = state!
  if (msg.cmd === 'missing') {
    // Standard errors: this worker's persons' share of the missing information (missing-info.ts).
    missingInfoRange({ ...msg.params, rowPtr: s.input.rowPtr, cells: s.input.cells, logT: s.logT }, s.p0, s.p1, new Float64Array(msg.out))
    parentPort!.postMessage({ ok: true, ll: 0 })
    return
  }
  s.counts.fill(0)
  s.totals.fill(0)
  if (msg.full) {
    s.win.lo.fill(0)
    s.win.hi.fill(s.input.Q - 1)
  }
  const ll = estepRange(s.input, s.logT, s.logPrior, s.counts, s.totals, s.p0, s.p1, s.win, msg.scores ? s.eap : undefined)
  parentPort!.postMessage({ ok: true, ll })
})
