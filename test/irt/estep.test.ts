import { describe, expect, it } from 'vitest'
import { buildCells, estepRange, fillLogTable, newWindows } from '../../src/lib/irt/estep.js'
import { logNormalWeights, makeGrid } from '../../src/lib/irt/grid.js'
import { readResponsesCsv } from '../../src/lib/irt/io.js'
import { fixture, readTable } from './helpers.js'

describe('E-step', () => {
  const grid = makeGrid()
  const Q = grid.size
  const data = readResponsesCsv(fixture('sim2pl-sparse', 'responses.csv')).data
  const mirt = readTable('sim2pl-sparse', 'mirt_items.csv')
  const J = data.nItems
  const input = { ...buildCells(data.rowPtr, data.items, data.resp, Q), Q }
  const logW = logNormalWeights(grid)
  const table = (shift: number) =>
    fillLogTable(grid.nodes, Float64Array.from(mirt, (m) => (m.a as number) * (1 + shift)), Float64Array.from(mirt, (m) => (m.d as number) + shift), new Float64Array(J), new Float64Array(2 * J * Q))

  it('marginal logLik at mirt’s estimates equals mirt’s logLik', () => {
    const ll = estepRange(input, table(0), logW, new Float64Array(2 * J * Q), new Float64Array(Q), 0, data.nPersons)
    expect(Math.abs(ll - -72145.6040805)).toBeLessThan(1e-4)
  })

  it('posterior windows from the previous cycle give the full-grid result (logLik, counts) to 1e-12', () => {
    const win = newWindows(data.nPersons, Q)
    estepRange(input, table(0), logW, new Float64Array(2 * J * Q), new Float64Array(Q), 0, data.nPersons, win)
    let narrowed = 0
    for (let i = 0; i < data.nPersons; i++) narrowed += win.hi[i] - win.lo[i] + 1
    expect(narrowed / data.nPersons).toBeLessThan(45) // windows really are narrower than 61 nodes
    // Next cycle with moved parameters (as after an accelerated step).
    const t1 = table(0.05)
    const cW = new Float64Array(2 * J * Q)
    const nW = new Float64Array(Q)
    const llW = estepRange(input, t1, logW, cW, nW, 0, data.nPersons, win)
    const cF = new Float64Array(2 * J * Q)
    const nF = new Float64Array(Q)
    const llF = estepRange(input, t1, logW, cF, nF, 0, data.nPersons)
    expect(Math.abs(llW - llF)).toBeLessThan(1e-9)
    let maxDiff = 0
    for (let k = 0; k < cF.length; k++) maxDiff = Math.max(maxDiff, Math.abs(cW[k] - cF[k]))
    expect(maxDiff).toBeLessThan(1e-12)
    const total = nF.reduce((s, v) => s + v, 0)
    expect(Math.abs(total - data.nPersons)).toBeLessThan(1e-8)
  })
})
