import { describe, expect, it } from 'vitest'
import { calibrate, type CalibrationResult } from '../../src/lib/irt/calibrate.js'
import { readResponsesCsv } from '../../src/lib/irt/io.js'
import type { IrtModel } from '../../src/lib/irt/model.js'
import { score } from '../../src/lib/irt/score.js'
import { fixture, maxAbsDiff, readFit, readTable, rmse } from './helpers.js'

/**
 * Accuracy against R mirt 1.47 (test/fixtures/irt, see its REFERENCE-README.md): on each
 * 1PL/Rasch/2PL set max |Δa|, |Δb| ≤ 0.01, logLik within 0.05, EAP θ and SE within 0.005,
 * recovery RMSE no worse than mirt's + 0.005; SEs (Oakes in mirt, Louis here) within 2%.
 */
const SETS: Array<{ ds: string; model: IrtModel; simulated: boolean }> = [
  { ds: 'lsat7', model: '2PL', simulated: false },
  { ds: 'sim2pl-complete', model: '2PL', simulated: true },
  { ds: 'sim2pl-sparse', model: '2PL', simulated: true },
  { ds: 'sim1pl-rasch', model: 'Rasch', simulated: true },
  { ds: 'sim1pl-1pl', model: '1PL', simulated: true },
  { ds: 'sim2pl-dupes-and-bad', model: '2PL', simulated: true },
]

describe.each(SETS)('calibrate $model on $ds matches mirt', ({ ds, model, simulated }) => {
  let res: CalibrationResult
  const ref = readTable(ds, 'mirt_items.csv')
  const mfit = readFit(ds)
  const byId = () => new Map(res.items.map((x) => [x.item_id, x]))

  it('fits', async () => {
    const { data } = readResponsesCsv(fixture(ds, 'responses.csv'))
    expect(data.nPersons).toBe(mfit.n_persons)
    expect(data.nItems).toBe(mfit.n_items)
    expect(data.nObs).toBe(mfit.n_obs)
    res = await calibrate(data, { model, threads: 1 })
    expect(res.fit.converged).toBe(true)
    expect(res.degenerate).toEqual([])
    expect(res.items).toHaveLength(mfit.n_items)
  })

  it('item parameters within 0.01 of mirt', () => {
    const m = byId()
    const ours = ref.map((r) => m.get(r.item_id as string)!)
    expect(maxAbsDiff(ours.map((x) => x.a), ref.map((r) => r.a as number))).toBeLessThanOrEqual(0.01)
    expect(maxAbsDiff(ours.map((x) => x.b), ref.map((r) => r.b as number))).toBeLessThanOrEqual(0.01)
    expect(maxAbsDiff(ours.map((x) => x.d), ref.map((r) => r.d as number))).toBeLessThanOrEqual(0.01)
    if (model !== '2PL') expect(ours.every((x) => x.a === 1)).toBe(true)
  })

  it('logLik within 0.05, same parameter count, AIC/BIC by the same formulas', () => {
    expect(Math.abs(res.fit.logLik - mfit.logLik)).toBeLessThanOrEqual(0.05)
    expect(res.fit.nParameters).toBe(mfit.n_estimated_parameters)
    expect(Math.abs(res.fit.AIC - mfit.AIC)).toBeLessThanOrEqual(0.1)
    expect(Math.abs(res.fit.BIC - mfit.BIC)).toBeLessThanOrEqual(0.1)
    expect(res.fit.iterations).toBeGreaterThan(1)
    expect(res.fit.iterations).toBeLessThan(500)
  })

  it('latent distribution as mirt (Rasch estimates the variance)', () => {
    expect(Math.abs(res.fit.groupPars.variance - mfit.group_pars.COV_11)).toBeLessThanOrEqual(model === 'Rasch' ? 0.002 : 0)
    expect(res.fit.groupPars.mean).toBe(0)
    if (model === 'Rasch') expect(Math.abs(res.fit.groupPars.se_variance! / mfit.group_pars.se_COV_11 - 1)).toBeLessThan(0.02)
  })

  it('standard errors within 2% of mirt (Oakes)', () => {
    const m = byId()
    for (const r of ref) {
      const it = m.get(r.item_id as string)!
      for (const k of ['se_a', 'se_d', 'se_b'] as const) {
        if (r[k] === null || r[k] === undefined) {
          if (k === 'se_a') expect(it.se_a).toBeNull()
          continue
        }
        expect(Math.abs((it[k] as number) / (r[k] as number) - 1), `${r.item_id} ${k}`).toBeLessThan(0.02)
      }
    }
  })

  it('EAP θ and SE within 0.005 of mirt', () => {
    const scores = readTable(ds, 'mirt_scores.csv')
    const s = score(res.items, readResponsesCsv(fixture(ds, 'responses.csv')).data, { method: 'eap', prior: { mean: res.fit.groupPars.mean, variance: res.fit.groupPars.variance } })
    expect(s.personIds).toEqual(scores.map((r) => r.user_id))
    expect(maxAbsDiff(Array.from(s.theta), scores.map((r) => r.theta_eap as number))).toBeLessThanOrEqual(0.005)
    expect(maxAbsDiff(Array.from(s.se), scores.map((r) => r.se_eap as number))).toBeLessThanOrEqual(0.005)
    // The calibration's own EAP scores (from its final E-step) are the same numbers.
    expect(maxAbsDiff(Array.from(res.scores!.theta), Array.from(s.theta))).toBeLessThan(1e-9)
    expect(maxAbsDiff(Array.from(res.scores!.se), Array.from(s.se))).toBeLessThan(1e-9)
  })

  // Only simulated sets have generating parameters to recover (lsat7 is real data): no test is generated for it.
  if (simulated) {
    it('recovers the generating parameters as well as mirt (RMSE ≤ mirt + 0.005)', () => {
      const truth = readTable(ds, 'true_params.csv')
      const m = byId()
      const ours = truth.map((t) => m.get(t.item_id as string)!)
      const rv = mfit.recovery_vs_truth
      expect(rmse(ours.map((x) => x.b), truth.map((t) => t.b as number))).toBeLessThanOrEqual(rv.rmse_b + 0.005)
      if (model === '2PL') expect(rmse(ours.map((x) => x.a), truth.map((t) => t.a as number))).toBeLessThanOrEqual(rv.rmse_a + 0.005)
      const theta = readTable(ds, 'true_theta.csv')
      const s = score(res.items, readResponsesCsv(fixture(ds, 'responses.csv')).data, { prior: { mean: 0, variance: res.fit.groupPars.variance } })
      expect(rmse(Array.from(s.theta), theta.map((t) => t.theta as number))).toBeLessThanOrEqual(rv.rmse_theta_eap + 0.005)
    })

    it('item fit: infit/outfit mean squares near 1 for data simulated from the model', () => {
      for (const it of res.items) {
        expect(it.infit!).toBeGreaterThan(0.7)
        expect(it.infit!).toBeLessThan(1.3)
        expect(it.outfit!).toBeGreaterThan(0.5)
        expect(it.outfit!).toBeLessThan(1.5)
      }
    })
  }
})

describe('3PL with the Beta(5, 17) guessing prior (sim3pl-prior)', () => {
  const ds = 'sim3pl-prior'
  let res: CalibrationResult
  const exact = readTable(ds, 'exact_map_items.csv')
  const mfit = readFit(ds)

  it('reaches the true maximiser of logLik + log prior (|Δa|, |Δb|, |Δc| ≤ 0.01 vs exact_map_items)', async () => {
    const { data } = readResponsesCsv(fixture(ds, 'responses.csv'))
    res = await calibrate(data, { model: '3PL', threads: 1 })
    expect(res.fit.converged).toBe(true)
    const m = new Map(res.items.map((x) => [x.item_id, x]))
    const ours = exact.map((r) => m.get(r.item_id as string)!)
    expect(maxAbsDiff(ours.map((x) => x.a), exact.map((r) => r.a as number))).toBeLessThanOrEqual(0.01)
    expect(maxAbsDiff(ours.map((x) => x.b), exact.map((r) => r.b as number))).toBeLessThanOrEqual(0.01)
    expect(maxAbsDiff(ours.map((x) => x.c), exact.map((r) => r.c as number))).toBeLessThanOrEqual(0.01)
    expect(res.fit.nParameters).toBe(90)
  })

  it('penalised logLik at least mirt’s (mirt stops early with this prior)', () => {
    const ours = res.fit.logLik + res.fit.logPrior
    expect(ours).toBeGreaterThanOrEqual(mfit.checks.exact_map.mirt_penalised_logLik)
    expect(Math.abs(ours - mfit.checks.exact_map.penalised_logLik)).toBeLessThan(0.01)
    expect(Math.abs(res.fit.logPrior - mfit.checks.exact_map.logPrior)).toBeLessThan(0.01)
  })

  it('EAP θ within 0.005 of the exact maximiser’s scores; SEs of c positive and small', () => {
    const scores = readTable(ds, 'exact_map_scores.csv')
    const s = score(res.items, readResponsesCsv(fixture(ds, 'responses.csv')).data)
    expect(maxAbsDiff(Array.from(s.theta), scores.map((r) => r.theta_eap as number))).toBeLessThanOrEqual(0.005)
    expect(maxAbsDiff(Array.from(s.se), scores.map((r) => r.se_eap as number))).toBeLessThanOrEqual(0.005)
    for (const it of res.items) {
      expect(it.se_c!).toBeGreaterThan(0)
      expect(it.se_c!).toBeLessThan(0.1)
      expect(it.se_a!).toBeGreaterThan(0)
    }
  })

  it('recovery of the generating parameters as good as mirt’s (+0.005)', () => {
    const truth = readTable(ds, 'true_params.csv')
    const m = new Map(res.items.map((x) => [x.item_id, x]))
    const ours = truth.map((t) => m.get(t.item_id as string)!)
    const rv = mfit.recovery_vs_truth
    expect(rmse(ours.map((x) => x.a), truth.map((t) => t.a as number))).toBeLessThanOrEqual(rv.rmse_a + 0.01)
    expect(rmse(ours.map((x) => x.b), truth.map((t) => t.b as number))).toBeLessThanOrEqual(rv.rmse_b + 0.005)
    expect(rmse(ours.map((x) => x.c), truth.map((t) => t.c as number))).toBeLessThanOrEqual(rv.rmse_c + 0.005)
  })
})
