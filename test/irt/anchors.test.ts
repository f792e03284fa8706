import { describe, expect, it } from 'vitest'
import { calibrate } from '../../src/lib/irt/calibrate.js'
import { buildResponseMatrix, type ResponseRow } from '../../src/lib/irt/data.js'
import { parseCsv, readResponsesCsv } from '../../src/lib/irt/io.js'
import { readFileSync } from 'node:fs'
import { fixture, maxAbsDiff, readTable } from './helpers.js'

const ds = 'sim2pl-complete'
const mirt = readTable(ds, 'mirt_items.csv').map((r) => ({ item_id: r.item_id as string, a: r.a as number, b: r.b as number }))
const data = readResponsesCsv(fixture(ds, 'responses.csv')).data

describe('fixed anchor items', () => {
  it('holds anchors at their values and calibrates the other items on their scale', async () => {
    const anchors = mirt.slice(0, 10)
    const res = await calibrate(data, { model: '2PL', anchors, threads: 1 })
    expect(res.fit.nParameters).toBe(20)
    for (const an of anchors) {
      const it = res.items.find((x) => x.item_id === an.item_id)!
      expect(it).toMatchObject({ a: an.a, anchored: true, se_a: null, se_b: null })
      expect(it.b).toBeCloseTo(an.b, 12)
    }
    const free = res.items.filter((x) => !x.anchored)
    const ref = free.map((x) => mirt.find((m) => m.item_id === x.item_id)!)
    expect(maxAbsDiff(free.map((x) => x.a), ref.map((m) => m.a))).toBeLessThan(0.01)
    expect(maxAbsDiff(free.map((x) => x.b), ref.map((m) => m.b))).toBeLessThan(0.01)
  })

  it('with anchors on a shifted scale and a free latent distribution, new items land on the anchors’ scale', async () => {
    // θ* = 0.5 + 1.2 θ  ⇒  b* = 0.5 + 1.2 b,  a* = a / 1.2; the population becomes N(0.5, 1.44).
    const anchors = mirt.slice(0, 10).map((m) => ({ item_id: m.item_id, a: m.a / 1.2, b: 0.5 + 1.2 * m.b }))
    const res = await calibrate(data, { model: '2PL', anchors, freeLatent: true, threads: 1 })
    expect(res.fit.converged).toBe(true)
    expect(res.fit.groupPars.mean).toBeCloseTo(0.5, 1)
    expect(res.fit.groupPars.variance).toBeCloseTo(1.44, 1)
    const free = res.items.filter((x) => !x.anchored)
    const ref = free.map((x) => mirt.find((m) => m.item_id === x.item_id)!)
    expect(maxAbsDiff(free.map((x) => x.b), ref.map((m) => 0.5 + 1.2 * m.b))).toBeLessThan(0.06)
    expect(maxAbsDiff(free.map((x) => x.a), ref.map((m) => m.a / 1.2))).toBeLessThan(0.06)
    expect(res.fit.nParameters).toBe(22)
  })
})

describe('degenerate items and non-convergence are reported, not returned as numbers', () => {
  it('all-correct, all-wrong and too-few-response items are listed and left out', async () => {
    const { header, rows } = parseCsv(readFileSync(fixture('lsat7', 'responses.csv'), 'utf8'))
    const base: ResponseRow[] = rows.map((r) => ({ user_id: r[0], item_id: r[1], is_correct: r[2] }))
    void header
    const extra: ResponseRow[] = []
    for (let i = 1; i <= 200; i++) {
      const u = `u${String(i).padStart(5, '0')}`
      extra.push({ user_id: u, item_id: 'x_all_correct', is_correct: 1 }, { user_id: u, item_id: 'x_all_wrong', is_correct: 0 })
    }
    extra.push({ user_id: 'u00001', item_id: 'x_rare', is_correct: 1 }, { user_id: 'u00002', item_id: 'x_rare', is_correct: 0 })
    const { data: d2 } = buildResponseMatrix([...base, ...extra])
    const res = await calibrate(d2, { model: '2PL', threads: 1 })
    expect(res.degenerate).toEqual([
      { item_id: 'x_all_correct', reason: 'all_correct', n: 200, n_correct: 200 },
      { item_id: 'x_all_wrong', reason: 'all_wrong', n: 200, n_correct: 0 },
      { item_id: 'x_rare', reason: 'too_few_responses', n: 2, n_correct: 1 },
    ])
    expect(res.items.map((x) => x.item_id)).toEqual(['i0001', 'i0002', 'i0003', 'i0004', 'i0005'])
    expect(res.warnings.join('\n')).toMatch(/3 item\(s\) not calibrated/)
    const clean = await calibrate(readResponsesCsv(fixture('lsat7', 'responses.csv')).data, { model: '2PL', threads: 1, se: false })
    expect(maxAbsDiff(res.items.map((x) => x.b), clean.items.map((x) => x.b))).toBeLessThan(1e-9)
  })

  it('stopping at maxCycles reports converged = false with a warning', async () => {
    const cycles: number[] = []
    const res = await calibrate(data, { model: '2PL', maxCycles: 3, se: false, threads: 1, onCycle: (c) => cycles.push(c.cycle) })
    expect(res.fit.converged).toBe(false)
    expect(res.fit.iterations).toBe(3)
    expect(cycles).toEqual([1, 2, 3])
    expect(res.fit.maxChange).toBeGreaterThan(1e-4)
    expect(res.warnings.join('\n')).toMatch(/did not converge in 3 cycles/)
  })

  it('the log-likelihood never decreases from cycle to cycle (acceleration is safeguarded)', async () => {
    const lls: number[] = []
    await calibrate(readResponsesCsv(fixture('lsat7', 'responses.csv')).data, { model: '2PL', se: false, threads: 1, tol: 1e-6, onCycle: (c) => lls.push(c.logLik) })
    for (let k = 1; k < lls.length; k++) expect(lls[k]).toBeGreaterThanOrEqual(lls[k - 1] - 1e-9)
  })
})

describe('standard errors: the Gauss rule for the missing information against the full-grid sum (Louis term by term)', () => {
  it.each([
    ['sim1pl-rasch', 'Rasch', 5e-3],
    ['sim2pl-complete', '2PL', 5e-3],
    ['lsat7', '2PL', 5e-3],
  ] as const)('%s (%s): default rule within %s of the exact sum; two nodes are visibly worse', async (ds, model, tol) => {
    const { seTuning } = await import('../../src/lib/irt/se.js')
    const d = readResponsesCsv(fixture(ds, 'responses.csv')).data
    const saved = { ...seTuning }
    try {
      const fast = await calibrate(d, { model, threads: 1 })
      seTuning.exact = true
      const exact = await calibrate(d, { model, threads: 1 })
      seTuning.exact = false
      seTuning.nodes = 2
      const crude = await calibrate(d, { model, threads: 1 })
      let worstCrude = 0
      for (const k of ['se_a', 'se_b', 'se_d'] as const) {
        if (k === 'se_a' && model !== '2PL') continue
        const f = fast.items.map((x) => x[k]!)
        const e = exact.items.map((x) => x[k]!)
        const c = crude.items.map((x) => x[k]!)
        expect(Math.min(...f)).toBeGreaterThan(0)
        for (let x = 0; x < f.length; x++) {
          expect(Math.abs(f[x] / e[x] - 1), `${fast.items[x].item_id} ${k}`).toBeLessThan(tol)
          worstCrude = Math.max(worstCrude, Math.abs(c[x] / e[x] - 1))
        }
      }
      // Two nodes per person (a linearisation of the score) is what the default rule avoids.
      expect(worstCrude).toBeGreaterThan(model === 'Rasch' ? 2e-3 : 1e-2)
      if (model === 'Rasch') expect(Math.abs(fast.fit.groupPars.se_variance! / exact.fit.groupPars.se_variance! - 1)).toBeLessThan(tol)
    } finally {
      Object.assign(seTuning, saved)
    }
  })
})

describe('standard errors: large banks are summed band by band', () => {
  it.each([
    ['sim2pl-sparse', '2PL'],
    ['sim3pl-prior', '3PL'],
    ['sim1pl-rasch', 'Rasch'],
  ] as const)('%s (%s): one band, bands of a few rows and a single row per band give the same SEs', async (ds, model) => {
    const { seTuning } = await import('../../src/lib/irt/se.js')
    const d = readResponsesCsv(fixture(ds, 'responses.csv')).data
    const saved = { ...seTuning }
    try {
      seTuning.tileBytes = 1 << 30
      const whole = await calibrate(d, { model, threads: 1 })
      const worst = [] as number[]
      for (const bytes of [20_000, 1]) {
        seTuning.tileBytes = bytes
        const banded = await calibrate(d, { model, threads: 1 })
        let w = 0
        for (let k = 0; k < whole.items.length; k++) {
          for (const f of ['se_b', 'se_d'] as const) w = Math.max(w, Math.abs(banded.items[k][f]! / whole.items[k][f]! - 1))
        }
        worst.push(w)
      }
      expect(Math.max(...worst)).toBeLessThan(1e-10)
      expect(Math.min(...whole.items.map((x) => x.se_b!))).toBeGreaterThan(0)
    } finally {
      Object.assign(seTuning, saved)
    }
  })
})

describe('item fit flags a misfitting item', () => {
  it('an item answered at random has infit and outfit well above 1 under Rasch; the others stay near 1', async () => {
    const { header, rows } = parseCsv(readFileSync(fixture('sim1pl-rasch', 'responses.csv'), 'utf8'))
    void header
    let seed = 7
    const coin = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648 < 0.5 ? 1 : 0)
    const { data: d } = buildResponseMatrix(rows.map((r) => ({ user_id: r[0], item_id: r[1], is_correct: r[1] === 'i0007' ? coin() : r[2] })))
    const res = await calibrate(d, { model: 'Rasch', se: false, threads: 1 })
    const bad = res.items.find((x) => x.item_id === 'i0007')!
    const others = res.items.filter((x) => x.item_id !== 'i0007')
    expect(bad.infit!).toBeGreaterThan(1.15)
    expect(bad.outfit!).toBeGreaterThan(1.15)
    for (const it of others) {
      expect(it.infit!).toBeLessThan(1.1)
      expect(it.infit!).toBeGreaterThan(0.85)
    }
  })
})
