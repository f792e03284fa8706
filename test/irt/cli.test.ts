import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { parseCsv } from '../../src/lib/irt/io.js'
import { runCli } from '../support/cli.js'
import { fixture, maxAbsDiff, readFit, readTable } from './helpers.js'

// Runs the built CLI (npm test builds first; alone: npx tsc -p tsconfig.build.json).
const tmp = mkdtempSync(join(tmpdir(), 'seedops-irt-'))

describe('seedops irt calibrate', () => {
  it('on sim2pl-sparse prints parameters that match mirt (--json shape); with E-step workers, and exits', async () => {
    const r = await runCli(['irt', 'calibrate', '--input', fixture('sim2pl-sparse', 'responses.csv'), '--model', '2PL', '--no-se', '--threads', '2', '--json'])
    expect(r.code, r.stderr).toBe(0)
    expect(r.signal).toBeNull()
    const doc = JSON.parse(r.stdout)
    expect(doc.status).toBe(0)
    expect(doc.warnings).toEqual([])
    expect(doc.result.data).toMatchObject({ rows: 125000, accepted: 125000, nPersons: 5000, nItems: 200, nObs: 125000 })
    expect(doc.result.fit).toMatchObject({ model: '2PL', converged: true, nParameters: 400, threads: 2 })
    // Phase timings: SEs off, so no SE phase; the phases add up to the total.
    const t = doc.result.timings
    expect(t.se).toBeNull()
    for (const k of ['read', 'fit', 'total']) expect(t[k], k).toBeGreaterThan(0)
    expect(t.write).toBeGreaterThanOrEqual(0)
    expect(Math.abs(t.read + t.fit + t.write - t.total)).toBeLessThan(0.05)
    expect(Math.abs(doc.result.fit.logLik - readFit('sim2pl-sparse').logLik)).toBeLessThan(0.05)
    const ref = readTable('sim2pl-sparse', 'mirt_items.csv')
    const items = new Map<string, { a: number; b: number }>(doc.result.items.map((x: { item_id: string; a: number; b: number }) => [x.item_id, x]))
    expect(maxAbsDiff(ref.map((m) => items.get(m.item_id as string)!.a), ref.map((m) => m.a as number))).toBeLessThanOrEqual(0.01)
    expect(maxAbsDiff(ref.map((m) => items.get(m.item_id as string)!.b), ref.map((m) => m.b as number))).toBeLessThanOrEqual(0.01)
  })

  it('human output: a table of parameters and the fit summary; --out writes a CSV that irt score reads', async () => {
    const out = join(tmp, 'lsat7-params.csv')
    const table = await runCli(['irt', 'calibrate', '-i', fixture('lsat7', 'responses.csv')])
    expect(table.code, table.stderr).toBe(0)
    expect(table.stdout).toMatch(/item_id\s+a\s+b\s+se_a\s+se_b\s+infit\s+outfit/)
    expect(table.stdout).toMatch(/i0005\s+0\.\d{4}\s+-?\d\.\d{4}/)
    expect(table.stdout).toMatch(/logLik -2658\.80\d\d/)
    expect(table.stdout).toMatch(/time \d+\.\d\d s: read \d+\.\d\d s, fit \d+\.\d\d s, standard errors \d+\.\d\d s, write \d+\.\d\d s/)
    const w = await runCli(['irt', 'calibrate', '-i', fixture('lsat7', 'responses.csv'), '--out', out])
    expect(w.code, w.stderr).toBe(0)
    expect(w.stdout).toMatch(`Wrote 5 item(s) to ${out}`)
    const { header, rows } = parseCsv(readFileSync(out, 'utf8'))
    expect(header.slice(0, 5)).toEqual(['item_id', 'a', 'b', 'c', 'd'])
    expect(rows).toHaveLength(5)
    const s = await runCli(['irt', 'score', '--params', out, '--input', fixture('lsat7', 'responses.csv'), '--json'])
    expect(s.code, s.stderr).toBe(0)
    const mirt = readTable('lsat7', 'mirt_scores.csv')
    const doc = JSON.parse(s.stdout)
    expect(doc.result.scores).toHaveLength(1000)
    expect(maxAbsDiff(doc.result.scores.map((x: { theta: number }) => x.theta), mirt.map((m) => m.theta_eap as number))).toBeLessThan(0.005)
  })

  it('dirty data: warns with counts and row numbers, calibrates the clean rows; --strict fails naming rows', async () => {
    const raw = fixture('sim2pl-dupes-and-bad', 'responses_raw.csv')
    const r = await runCli(['irt', 'calibrate', '-i', raw, '--no-se', '--json'])
    expect(r.code, r.stderr).toBe(0)
    const doc = JSON.parse(r.stdout)
    expect(doc.result.data.rejected).toMatchObject({ count: 8, byReason: { empty_value: 2, invalid_value: 6 } })
    expect(doc.result.data.duplicates).toMatchObject({ count: 45, sameValue: 30, conflicting: 15, policy: 'first' })
    expect(doc.warnings.join('\n')).toMatch(/8 row\(s\) rejected .* e\.g\. row \d+/)
    expect(doc.warnings.join('\n')).toMatch(/45 duplicate/)
    expect(Math.abs(doc.result.fit.logLik - -3026.801)).toBeLessThan(0.05)
    const strict = await runCli(['irt', 'calibrate', '-i', raw, '--strict'])
    expect(strict.code).toBe(1)
    expect(strict.stderr).toMatch(/Error \(IRT_BAD_ROWS\): .*responses_raw\.csv: 8 row\(s\) rejected .*row \d+/)
  })

  it('--anchors holds the listed items fixed; 3PL prints c', async () => {
    const anchors = join(tmp, 'anchors.csv')
    const mirt = readFileSync(fixture('sim2pl-complete', 'mirt_items.csv'), 'utf8').trim().split('\n').slice(0, 11)
    writeFileSync(anchors, mirt.join('\n') + '\n')
    const [r, three] = await Promise.all([
      runCli(['irt', 'calibrate', '-i', fixture('sim2pl-complete', 'responses.csv'), '--anchors', anchors, '--no-se', '--json']),
      runCli(['irt', 'calibrate', '-i', fixture('lsat7', 'responses.csv'), '--model', '3PL', '--prior', 'beta:5,17', '--no-se']),
    ])
    expect(r.code, r.stderr).toBe(0)
    const doc = JSON.parse(r.stdout)
    expect(doc.result.fit.nParameters).toBe(20)
    const anchored = doc.result.items.filter((x: { anchored: boolean }) => x.anchored)
    expect(anchored.map((x: { item_id: string }) => x.item_id)).toEqual(readTable('sim2pl-complete', 'mirt_items.csv').slice(0, 10).map((m) => m.item_id))
    expect(three.code, three.stderr).toBe(0)
    expect(three.stdout).toMatch(/item_id\s+a\s+b\s+c\s+se_a/)
    expect(three.stdout).toMatch(/logLik -\d+\.\d{4}\s+logPrior -?\d+\.\d{4}/)
  })

  it('exit 2 on bad usage', async () => {
    const cases = [
      ['irt', 'calibrate'],
      ['irt', 'calibrate', '-i', fixture('lsat7', 'responses.csv'), '--model', '4PL'],
      ['irt', 'calibrate', '-i', fixture('lsat7', 'responses.csv'), '--tol', 'abc'],
      ['irt', 'calibrate', '-i', fixture('lsat7', 'responses.csv'), '--prior', 'beta:5,17'],
      ['irt', 'score', '--params', 'x.csv', '--input', fixture('lsat7', 'responses.csv'), '--method', 'wle'],
    ]
    const results = await Promise.all(cases.map((args) => runCli(args)))
    results.forEach((r, k) => {
      expect(r.code, cases[k].join(' ') + '\n' + r.stderr).toBe(2)
      expect(r.stderr).toMatch(/Error \(USAGE\)/)
    })
    expect(results[3].stderr).toContain('--prior applies to the 3PL lower asymptote only')
  })

  it('exit 1 on bad data with a message naming the file and row or line', async () => {
    const noCol = join(tmp, 'nocol.csv')
    writeFileSync(noCol, 'user,item,correct\nu1,i1,1\n')
    let r = await runCli(['irt', 'calibrate', '-i', noCol])
    expect(r.code).toBe(1)
    expect(r.stderr).toContain(`${noCol}: missing column "user_id"`)

    const allBad = join(tmp, 'allbad.csv')
    writeFileSync(allBad, 'user_id,item_id,is_correct\nu1,i1,yes\nu2,i1,\n')
    r = await runCli(['irt', 'calibrate', '-i', allBad, '--json'])
    expect(r.code).toBe(1)
    const doc = JSON.parse(r.stdout)
    expect(doc).toMatchObject({ status: 1, code: 'IRT_NO_DATA' })
    expect(doc.message).toContain(`${allBad}: no usable responses`)

    r = await runCli(['irt', 'calibrate', '-i', join(tmp, 'missing.csv')])
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/cannot read responses file .*missing\.csv: no such file/)

    const badParams = join(tmp, 'badparams.csv')
    writeFileSync(badParams, 'item_id,a,b\ni0001,1.0,0.2\ni0002,abc,0.1\n')
    r = await runCli(['irt', 'score', '--params', badParams, '--input', fixture('lsat7', 'responses.csv')])
    expect(r.code).toBe(1)
    expect(r.stderr).toContain(`${badParams} line 3: item i0002: a is not a number`)
  })

  it('exit 1 with the reason when no item is left to calibrate (no empty table, no --out file)', async () => {
    const few = join(tmp, 'few.csv')
    writeFileSync(few, 'user_id,item_id,is_correct\n' + ['u1,i1,1', 'u2,i1,0', 'u3,i2,1', ...Array.from({ length: 8 }, (_, i) => `v${i},i3,1`)].join('\n') + '\n')
    const out = join(tmp, 'few-params.csv')
    const r = await runCli(['irt', 'calibrate', '-i', few, '--out', out])
    expect(r.code).toBe(1)
    expect(r.stdout).toBe('')
    expect(r.stderr).toContain(`${few}: no item could be calibrated: 3 item(s) excluded`)
    expect(r.stderr).toMatch(/i1 \(too few responses, n=2\)/)
    expect(r.stderr).toMatch(/i3 \(all correct, n=8\)/)
    expect(existsSync(out)).toBe(false)
    const j = await runCli(['irt', 'calibrate', '-i', few, '--json'])
    expect(j.code).toBe(1)
    expect(JSON.parse(j.stdout)).toMatchObject({ status: 1, code: 'IRT_NOTHING_CALIBRATED' })
  })
})

describe('seedops irt score', () => {
  it('EAP from mirt’s parameters reproduces mirt’s scores; CSV on stdout', async () => {
    const r = await runCli(['irt', 'score', '--params', fixture('sim2pl-complete', 'mirt_items.csv'), '--input', fixture('sim2pl-complete', 'responses.csv')])
    expect(r.code, r.stderr).toBe(0)
    const { header, rows } = parseCsv(r.stdout)
    expect(header).toEqual(['user_id', 'theta', 'se', 'n_responses', 'extreme'])
    const mirt = readTable('sim2pl-complete', 'mirt_scores.csv')
    expect(rows.map((x) => x[0])).toEqual(mirt.map((m) => m.user_id))
    expect(maxAbsDiff(rows.map((x) => Number(x[1])), mirt.map((m) => m.theta_eap as number))).toBeLessThan(1e-5)
    expect(maxAbsDiff(rows.map((x) => Number(x[2])), mirt.map((m) => m.se_eap as number))).toBeLessThan(1e-5)
  })

  it('ML flags all-correct / all-wrong patterns and warns', async () => {
    const r = await runCli(['irt', 'score', '--params', fixture('lsat7', 'mirt_items.csv'), '--input', fixture('lsat7', 'responses.csv'), '--method', 'ml', '--json'])
    expect(r.code, r.stderr).toBe(0)
    const doc = JSON.parse(r.stdout)
    const extreme = doc.result.scores.filter((x: { extreme: boolean }) => x.extreme)
    expect(extreme.length).toBeGreaterThan(0)
    for (const x of extreme) {
      expect(Math.abs(x.theta)).toBe(6)
      expect(x.se).toBeNull()
    }
    expect(doc.warnings.join('\n')).toMatch(new RegExp(`${extreme.length} person\\(s\\) have all-correct or all-wrong`))
  })
})
