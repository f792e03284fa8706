import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { describe, expect, it } from 'vitest'
import { buildCells, estepRange, fillLogTable, newWindows } from '../../src/lib/irt/estep.js'
import { logNormalWeights, makeGrid } from '../../src/lib/irt/grid.js'
import { readResponsesCsv } from '../../src/lib/irt/io.js'
import { ROOT } from '../support/cli.js'
import { fixture, readTable } from './helpers.js'

// Worker threads need the compiled worker script, so this runs the parallel runner from dist/
// (npm test builds first; alone: npx tsc -p tsconfig.build.json).
const DIST = join(ROOT, 'dist', 'src', 'lib', 'irt', 'parallel.js')

describe.runIf(existsSync(DIST))('parallel E-step (worker_threads, from dist/)', () => {
  it('equals the serial E-step (logLik, counts, node totals, EAP) and its workers terminate', async () => {
    const { parallelRunner, chooseThreads } = (await import(pathToFileURL(DIST).href)) as typeof import('../../src/lib/irt/parallel.js')
    const grid = makeGrid()
    const Q = grid.size
    const data = readResponsesCsv(fixture('sim2pl-sparse', 'responses.csv')).data
    const mirt = readTable('sim2pl-sparse', 'mirt_items.csv')
    const J = data.nItems
    const input = { ...buildCells(data.rowPtr, data.items, data.resp, Q), Q }
    const logT = fillLogTable(grid.nodes, Float64Array.from(mirt, (m) => m.a as number), Float64Array.from(mirt, (m) => m.d as number), new Float64Array(J), new Float64Array(2 * J * Q))
    const logW = logNormalWeights(grid)
    expect(chooseThreads(input, 'auto')).toBe(1) // 15M multiply-adds: too small to pay for threads
    const runner = (await parallelRunner(input, J, 3, grid.nodes))!
    expect(runner.threads).toBe(3)
    try {
      for (let cycle = 0; cycle < 2; cycle++) {
        const par = await runner.run(logT, logW, { scores: true, nodes: grid.nodes })
        const counts = new Float64Array(2 * J * Q)
        const totals = new Float64Array(Q)
        const eap = { nodes: grid.nodes, theta: new Float64Array(data.nPersons), se: new Float64Array(data.nPersons) }
        const ll = estepRange(input, logT, logW, counts, totals, 0, data.nPersons, newWindows(data.nPersons, Q), eap)
        expect(Math.abs(par.logLik - ll)).toBeLessThan(1e-8)
        let d = 0
        for (let k = 0; k < counts.length; k++) d = Math.max(d, Math.abs(par.counts[k] - counts[k]))
        expect(d).toBeLessThan(1e-12)
        for (let q = 0; q < Q; q++) expect(Math.abs(par.nodeTotals[q] - totals[q])).toBeLessThan(1e-9)
        for (let i = 0; i < data.nPersons; i += 97) expect(Math.abs(par.theta![i] - eap.theta[i])).toBeLessThan(1e-12)
      }
    } finally {
      await runner.close()
    }
  })
})

describe.runIf(existsSync(DIST))('standard errors over the E-step threads (from dist/)', () => {
  it('three threads give the single-thread standard errors (the missing information is split by person range)', async () => {
    const { calibrate } = (await import(pathToFileURL(join(ROOT, 'dist', 'src', 'lib', 'irt', 'calibrate.js')).href)) as typeof import('../../src/lib/irt/calibrate.js')
    const data = readResponsesCsv(fixture('sim2pl-sparse', 'responses.csv')).data
    const one = await calibrate(data, { model: '2PL', threads: 1 })
    const three = await calibrate(data, { model: '2PL', threads: 3 })
    expect(three.fit.threads).toBe(3)
    let worst = 0
    for (let k = 0; k < one.items.length; k++) {
      for (const f of ['se_a', 'se_d', 'se_b'] as const) worst = Math.max(worst, Math.abs(three.items[k][f]! / one.items[k][f]! - 1))
    }
    expect(worst).toBeLessThan(1e-9)
    expect(Math.min(...three.items.map((x) => x.se_a!))).toBeGreaterThan(0)
  })
})
