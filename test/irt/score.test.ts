import { describe, expect, it } from 'vitest'
import { readResponsesCsv } from '../../src/lib/irt/io.js'
import { irf } from '../../src/lib/irt/model.js'
import { posteriorSummary, priorPosterior, score, updatePosterior, type GridPosterior, type ScoringItem } from '../../src/lib/irt/score.js'
import { fixture, maxAbsDiff, readTable } from './helpers.js'

// mirt's own item estimates, so these tests check scoring independently of calibration.
const items = readTable('sim2pl-complete', 'mirt_items.csv').map((r) => ({ item_id: r.item_id as string, a: r.a as number, b: r.b as number, c: 0 }))
const data = readResponsesCsv(fixture('sim2pl-complete', 'responses.csv')).data
const mirtScores = readTable('sim2pl-complete', 'mirt_scores.csv')

function personResponses(i: number): Array<{ j: number; y: 0 | 1 }> {
  const out: Array<{ j: number; y: 0 | 1 }> = []
  for (let k = data.rowPtr[i]; k < data.rowPtr[i + 1]; k++) out.push({ j: data.items[k], y: data.resp[k] as 0 | 1 })
  return out
}

function logPost(its: ScoringItem[], resp: Array<{ j: number; y: 0 | 1 }>, th: number, prior: boolean): number {
  let f = prior ? -th * th / 2 : 0
  for (const { j, y } of resp) {
    const p = irf(th, its[j].a, -its[j].a * its[j].b!, its[j].c ?? 0)
    f += y ? Math.log(p) : Math.log(1 - p)
  }
  return f
}

describe('scoring with fixed item parameters', () => {
  it('EAP equals mirt fscores(EAP) to 1e-5 given mirt’s parameters', () => {
    const s = score(items, data)
    expect(maxAbsDiff(Array.from(s.theta), mirtScores.map((r) => r.theta_eap as number))).toBeLessThan(1e-5)
    expect(maxAbsDiff(Array.from(s.se), mirtScores.map((r) => r.se_eap as number))).toBeLessThan(1e-5)
  })

  it('dense rows with nulls (the HTTP contract shape) score like the sparse matrix', () => {
    const dense = Array.from({ length: 5 }, (_, i) => {
      const row: Array<number | null> = new Array(items.length).fill(null)
      personResponses(i).forEach(({ j, y }, k) => (row[j] = k % 3 === 0 ? null : y))
      return row
    })
    const s = score(items, dense)
    dense.forEach((row, i) => {
      const seq = row.reduce((post, y, j) => (y === null ? post : updatePosterior(post, items[j], y as 0 | 1)), priorPosterior())
      expect(Math.abs(s.theta[i] - posteriorSummary(seq).theta)).toBeLessThan(1e-10)
    })
  })

  it('sequential posterior update, in any order, equals full EAP re-scoring', () => {
    const full = score(items, data)
    for (let i = 0; i < 40; i++) {
      const resp = personResponses(i).reverse()
      let post = priorPosterior()
      for (const { j, y } of resp) post = updatePosterior(post, items[j], y)
      const s = posteriorSummary(post)
      expect(Math.abs(s.theta - full.theta[i])).toBeLessThan(1e-10)
      expect(Math.abs(s.se - full.se[i])).toBeLessThan(1e-10)
      expect(post.nResponses).toBe(resp.length)
    }
  })

  it('MAP is the mode of the posterior and its SE is the inverse root curvature', () => {
    const s = score(items, data, { method: 'map' })
    for (let i = 0; i < 20; i++) {
      const resp = personResponses(i)
      const th = s.theta[i]
      const h = 1e-4
      const f0 = logPost(items, resp, th, true)
      expect(f0).toBeGreaterThanOrEqual(logPost(items, resp, th + 1e-3, true))
      expect(f0).toBeGreaterThanOrEqual(logPost(items, resp, th - 1e-3, true))
      const curv = (logPost(items, resp, th + h, true) - 2 * f0 + logPost(items, resp, th - h, true)) / (h * h)
      expect(Math.abs(s.se[i] - 1 / Math.sqrt(-curv))).toBeLessThan(1e-4)
    }
  })

  it('ML solves the likelihood equation; all-correct / all-wrong patterns go to the range bound with no SE', () => {
    const pats = [new Array(items.length).fill(1), new Array(items.length).fill(0), items.map((_, j) => (j % 2 ? 1 : 0))]
    const s = score(items, pats, { method: 'ml' })
    expect([s.theta[0], s.theta[1]]).toEqual([6, -6])
    expect(Array.from(s.extreme)).toEqual([1, 1, 0])
    expect(Number.isNaN(s.se[0])).toBe(true)
    // 2PL likelihood equation: Σ a_j (y_j − P_j(θ)) = 0.
    const g = items.reduce((acc, it, j) => acc + it.a * (pats[2][j] - irf(s.theta[2], it.a, -it.a * it.b, 0)), 0)
    expect(Math.abs(g)).toBeLessThan(1e-8)
    expect(s.se[2]).toBeGreaterThan(0.2)
    expect(s.se[2]).toBeLessThan(1)
  })

  it('a stored posterior can be used as the next prior (online update)', () => {
    const resp = personResponses(7)
    const half = Math.floor(resp.length / 2)
    let post = priorPosterior()
    for (const { j, y } of resp.slice(0, half)) post = updatePosterior(post, items[j], y)
    const stored = JSON.parse(JSON.stringify({ nodes: Array.from(post.nodes), logDensity: Array.from(post.logDensity), n: post.nResponses }))
    let resumed: GridPosterior = { nodes: Float64Array.from(stored.nodes), logDensity: Float64Array.from(stored.logDensity), nResponses: stored.n }
    for (const { j, y } of resp.slice(half)) resumed = updatePosterior(resumed, items[j], y)
    const full = score(items, data)
    expect(Math.abs(posteriorSummary(resumed).theta - full.theta[7])).toBeLessThan(1e-10)
    // The same through score(): the stored posterior as the EAP prior for the remaining responses.
    const rest = [items.map((_, j) => resp.slice(half).find((r) => r.j === j)?.y ?? null)]
    const viaScore = score(items, rest, { prior: post })
    expect(Math.abs(viaScore.theta[0] - full.theta[7])).toBeLessThan(1e-10)
    expect(Math.abs(viaScore.se[0] - full.se[7])).toBeLessThan(1e-10)
    expect(() => score(items, rest, { prior: post, method: 'map' })).toThrow(/EAP only/)
  })
})
