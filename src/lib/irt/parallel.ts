import { existsSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'
import { estepRange, newWindows, type EstepInput } from './estep.js'
import { MissingInfo, maxResponses } from './missing-info.js'
import { inverseColumns } from './se.js'
import type { EstepRunner } from './runner.js'

/**
 * Below this many multiply-adds per E-step (2 · responses · nodes) threads cost more than they
 * save: starting a worker and exchanging counts each cycle takes milliseconds.
 */
export const PARALLEL_MIN_WORK = 40_000_000
const MAX_THREADS = 8

export function chooseThreads(input: EstepInput, threads: number | 'auto'): number {
  if (threads !== 'auto') return Math.max(1, Math.floor(threads))
  const work = 2 * input.cells.length * input.Q
  if (work < PARALLEL_MIN_WORK) return 1
  return Math.max(1, Math.min(MAX_THREADS, availableParallelism()))
}

/** The compiled worker script next to this module; absent when running from TypeScript sources (tests), then the E-step runs serially. */
function workerUrl(): URL | null {
  const url = new URL('./estep-worker.js', import.meta.url)
  return url.protocol === 'file:' && existsSync(fileURLToPath(url)) ? url : null
}

function shared<T extends Int32Array | Float64Array>(src: T): T {
  const sab = new SharedArrayBuffer(src.byteLength)
  const out = (src instanceof Int32Array ? new Int32Array(sab) : new Float64Array(sab)) as T
  out.set(src as never)
  return out
}

/**
 * E-step over persons split into `threads` contiguous ranges of about equal response counts:
 * the main thread takes the first range and `threads − 1` workers the others, all reading the
 * data and the cycle's log table from shared memory and writing their own count blocks, which
 * the main thread sums in a fixed order (results do not depend on timing). Workers are unref'd
 * and terminated by close(), so they never keep the process alive.
 */
export async function parallelRunner(input: EstepInput, nItems: number, threads: number, gridNodes?: Float64Array): Promise<EstepRunner | null> {
  const url = workerUrl()
  if (!url || threads < 2) return null
  const nP = input.rowPtr.length - 1
  const total = input.cells.length
  const bounds = [0]
  for (let t = 1; t < threads; t++) {
    const target = (total * t) / threads
    let lo = bounds[t - 1]
    let hi = nP
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if (input.rowPtr[mid] < target) lo = mid + 1
      else hi = mid
    }
    bounds.push(lo)
  }
  bounds.push(nP)
  const Q = input.Q
  const size = 2 * nItems * Q
  const rowPtr = shared(input.rowPtr)
  const cells = shared(input.cells)
  const logT = new Float64Array(new SharedArrayBuffer(size * 8))
  const logPrior = new Float64Array(new SharedArrayBuffer(Q * 8))
  const counts = new Float64Array(size)
  const totals = new Float64Array(Q)
  const theta = new Float64Array(new SharedArrayBuffer(nP * 8))
  const se = new Float64Array(new SharedArrayBuffer(nP * 8))
  const nodes = gridNodes ?? new Float64Array(Q)
  const workers: Array<{ w: Worker; counts: Float64Array; totals: Float64Array; pending: ((v: { ll?: number }) => void) | null; error: Error | null }> = []
  try {
    for (let t = 1; t < threads; t++) {
      const c = new Float64Array(new SharedArrayBuffer(size * 8))
      const tt = new Float64Array(new SharedArrayBuffer(Q * 8))
      const w = new Worker(url)
      w.unref()
      const slot = { w, counts: c, totals: tt, pending: null as ((v: { ll?: number }) => void) | null, error: null as Error | null }
      w.on('message', (m: { ll?: number }) => {
        const p = slot.pending
        slot.pending = null
        p?.(m)
      })
      w.on('error', (e) => {
        slot.error = e
        const p = slot.pending
        slot.pending = null
        p?.({})
      })
      workers.push(slot)
      const ready = new Promise<{ ll?: number }>((res) => (slot.pending = res))
      w.postMessage({ cmd: 'init', init: { rowPtr: rowPtr.buffer, cells: cells.buffer, logT: logT.buffer, logPrior: logPrior.buffer, counts: c.buffer, totals: tt.buffer, theta: theta.buffer, se: se.buffer, nodes, Q, p0: bounds[t], p1: bounds[t + 1] } })
      await ready
      if (slot.error) throw slot.error
    }
  } catch {
    await Promise.all(workers.map((s) => s.w.terminate()))
    return null
  }
  const local: EstepInput = { rowPtr, cells, Q }
  const win = newWindows(bounds[1], Q)
  return {
    threads,
    async run(lt, lp, opts = {}) {
      logT.set(lt)
      logPrior.set(lp)
      // Standard errors: each thread accumulates its persons' missing information into its own matrix.
      const P = opts.missing?.P ?? 0
      const outs = opts.missing ? workers.map(() => new Float64Array(new SharedArrayBuffer(P * P * 8))) : []
      const done = workers.map((s, k) => {
        const p = new Promise<{ ll?: number }>((res) => (s.pending = res))
        s.w.postMessage({ cmd: 'run', full: opts.full, scores: opts.scores, missing: opts.missing, out: outs[k]?.buffer })
        return p
      })
      counts.fill(0)
      totals.fill(0)
      if (opts.full) {
        win.lo.fill(0)
        win.hi.fill(Q - 1)
      }
      const eap = opts.scores ? { nodes, theta, se } : undefined
      const mi = opts.missing ? new MissingInfo(opts.missing, maxResponses(rowPtr, bounds[0], bounds[1]), undefined, rowPtr[bounds[1]] - rowPtr[bounds[0]]) : undefined
      let ll = estepRange(local, logT, logPrior, counts, totals, bounds[0], bounds[1], win, eap, mi)
      const res = await Promise.all(done)
      workers.forEach((s, k) => {
        if (s.error || res[k].ll === undefined) throw new Error(`E-step worker failed: ${s.error?.message ?? 'no result'}`)
        ll += res[k].ll!
        const c = s.counts
        for (let x = 0; x < size; x++) counts[x] += c[x]
        for (let q = 0; q < Q; q++) totals[q] += s.totals[q]
      })
      let missing: Float64Array | undefined
      if (mi) {
        missing = mi.result() as Float64Array
        for (const o of outs) for (let x = 0; x < P * P; x++) missing[x] += o[x]
      }
      return { logLik: ll, counts, nodeTotals: totals, theta: opts.scores ? theta.slice() : undefined, se: opts.scores ? se.slice() : undefined, missing }
    },
    async solveColumns(L: Float64Array, n: number, C: Float64Array) {
      // Column j costs ~(n − j)²/2: split so every thread gets the same share of Σ (n − j)².
      const T = workers.length + 1
      const cut = (t: number) => Math.min(n, Math.round(n * (1 - Math.cbrt(1 - t / T))))
      const done = workers.map((s, k) => {
        const p = new Promise<{ ll?: number }>((res) => (s.pending = res))
        s.w.postMessage({ cmd: 'lcols', L: L.buffer, C: C.buffer, n, j0: cut(k + 1), j1: cut(k + 2) })
        return p
      })
      inverseColumns(L, n, C, 0, cut(1))
      const res = await Promise.all(done)
      workers.forEach((s, k) => {
        if (s.error || res[k].ll === undefined) throw new Error(`standard-error worker failed: ${s.error?.message ?? 'no result'}`)
      })
    },
    async close() {
      await Promise.all(workers.map((s) => s.w.terminate()))
    },
  }
}
