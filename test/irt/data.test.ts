import { describe, expect, it } from 'vitest'
import { buildFromIndexed, buildResponseMatrix, ResponseMatrixBuilder } from '../../src/lib/irt/data.js'
import { readResponsesCsv } from '../../src/lib/irt/io.js'
import { SeedopsError } from '../../src/lib/errors/index.js'
import { fixture, readTable } from './helpers.js'

describe('response data: the dirty copy of sim2pl-dupes-and-bad', () => {
  const labels = readTable('sim2pl-dupes-and-bad', 'responses_raw_labels.csv')
  const clean = readResponsesCsv(fixture('sim2pl-dupes-and-bad', 'responses.csv')).data
  const raw = readResponsesCsv(fixture('sim2pl-dupes-and-bad', 'responses_raw.csv'))

  it('rejects the 8 malformed rows with their row numbers and reasons, never coercing them', () => {
    const malformed = labels.filter((l) => l.status === 'malformed')
    expect(malformed).toHaveLength(8)
    const { rejected } = raw.report
    expect(raw.report.rows).toBe(5053)
    expect(rejected.count).toBe(8)
    expect(rejected.byReason).toEqual({ empty_value: 2, invalid_value: 6 })
    expect(rejected.examples.map((e) => e.row).sort((a, b) => a - b)).toEqual(malformed.map((l) => l.row).sort((a, b) => (a as number) - (b as number)))
    expect(new Set(rejected.examples.map((e) => e.value))).toEqual(new Set(['', 'yes', '2', '-1']))
  })

  it('counts 30 same-value and 15 conflicting duplicates and names the rows', () => {
    const d = raw.report.duplicates
    expect(d).toMatchObject({ count: 45, sameValue: 30, conflicting: 15, policy: 'first' })
    const dupRows = new Map(labels.filter((l) => String(l.status).startsWith('duplicate')).map((l) => [l.row, l]))
    for (const ex of d.examples) {
      const l = dupRows.get(ex.row)!
      expect(l, `row ${ex.row}`).toBeDefined()
      expect(ex.kept_row).toBe(l.original_row)
      expect(ex.conflicting).toBe(l.status === 'duplicate_conflicting_value')
    }
    expect(raw.report.accepted).toBe(5000)
  })

  it('first-occurrence rule turns the dirty file into exactly the clean data', () => {
    expect(raw.data.personIds).toEqual(clean.personIds)
    expect(raw.data.itemIds).toEqual(clean.itemIds)
    expect(Array.from(raw.data.rowPtr)).toEqual(Array.from(clean.rowPtr))
    expect(Array.from(raw.data.items)).toEqual(Array.from(clean.items))
    expect(Array.from(raw.data.resp)).toEqual(Array.from(clean.resp))
  })

  it('last-occurrence rule differs exactly in the 15 conflicting pairs', () => {
    const last = readResponsesCsv(fixture('sim2pl-dupes-and-bad', 'responses_raw.csv'), { duplicates: 'last' }).data
    const conflicting = new Set(labels.filter((l) => l.status === 'duplicate_conflicting_value').map((l) => `${l.user_id}/${l.item_id}`))
    const diffs = new Set<string>()
    for (let i = 0; i < clean.nPersons; i++) {
      for (let k = clean.rowPtr[i]; k < clean.rowPtr[i + 1]; k++) {
        if (clean.resp[k] !== last.resp[k]) diffs.add(`${clean.personIds[i]}/${clean.itemIds[clean.items[k]]}`)
      }
    }
    expect(diffs).toEqual(conflicting)
  })

  it('policy "error" refuses duplicated data with a message naming rows', () => {
    try {
      readResponsesCsv(fixture('sim2pl-dupes-and-bad', 'responses_raw.csv'), { duplicates: 'error' })
      expect.fail('should throw')
    } catch (e) {
      expect(e).toBeInstanceOf(SeedopsError)
      expect((e as SeedopsError).code).toBe('IRT_DUPLICATES')
      expect((e as Error).message).toMatch(/45 duplicate .* at rows \d+ and \d+/)
    }
  })
})

describe('buildResponseMatrix', () => {
  it('orders persons and items by id, keeps sparse rows, accepts 0/1 numbers, booleans and strings', () => {
    const { data, report } = buildResponseMatrix([
      { user_id: 'u2', item_id: 'i9', is_correct: true },
      { user_id: 'u1', item_id: 'i3', is_correct: ' 1 ' },
      { user_id: 'u2', item_id: 'i1', is_correct: 0 },
      { user_id: '', item_id: 'i1', is_correct: 1 },
      { user_id: 'u3', item_id: null, is_correct: 1 },
      { user_id: 'u3', item_id: 'i1', is_correct: 0.5 },
      { user_id: 'u3', item_id: 'i1', is_correct: 'true' },
    ])
    expect(data.personIds).toEqual(['u1', 'u2'])
    expect(data.itemIds).toEqual(['i1', 'i3', 'i9'])
    expect(Array.from(data.rowPtr)).toEqual([0, 1, 3])
    expect(Array.from(data.items)).toEqual([1, 0, 2])
    expect(Array.from(data.resp)).toEqual([1, 0, 1])
    expect(report.rejected.byReason).toEqual({ missing_user_id: 1, missing_item_id: 1, invalid_value: 2 })
    expect(report.rejected.examples.map((e) => e.row)).toEqual([4, 5, 6, 7])
  })

  it('buildFromIndexed gives the same structure as the row builder', () => {
    const { data } = buildFromIndexed(['a', 'b'], ['x', 'y'], Int32Array.from([1, 0, 1, 1]), Int32Array.from([1, 0, 0, 1]), Uint8Array.from([1, 0, 1, 0]))
    expect(Array.from(data.rowPtr)).toEqual([0, 1, 3])
    expect(Array.from(data.items)).toEqual([0, 0, 1])
    expect(Array.from(data.resp)).toEqual([0, 1, 1])
  })

  it('ResponseMatrixBuilder fed row by row gives what buildResponseMatrix gives, with the caller\'s row numbers', () => {
    const rows = [
      { user_id: 'u2', item_id: 'i9', is_correct: true, row: 10 },
      { user_id: ' u1 ', item_id: 'i3', is_correct: '1', row: 11 },
      { user_id: 'u2', item_id: 'i9', is_correct: false, row: 12 },
      { user_id: 'u2', item_id: 'i1', is_correct: 'x', row: 13 },
    ]
    const b = new ResponseMatrixBuilder({ duplicates: 'last' })
    for (const r of rows) b.add(r.user_id, r.item_id, r.is_correct, r.row)
    const got = b.finish()
    const ref = buildResponseMatrix(rows, { duplicates: 'last' })
    expect(got.report).toEqual(ref.report)
    expect(got.data.personIds).toEqual(['u1', 'u2'])
    expect(Array.from(got.data.resp)).toEqual([1, 0])
    expect(got.report.duplicates.examples).toEqual([{ row: 10, kept_row: 12, user_id: 'u2', item_id: 'i9', conflicting: true }])
    expect(got.report.rejected.examples).toEqual([{ row: 13, user_id: 'u2', item_id: 'i1', value: 'x', reason: 'invalid_value' }])
    expect(() => b.finish()).toThrow(/twice/)
  })

  it('ResponseMatrixBuilder grows past its initial capacity without losing rows', () => {
    const b = new ResponseMatrixBuilder()
    for (let k = 0; k < 5000; k++) b.add(`u${k % 97}`, `i${k % 13}`, k % 3 === 0 ? 1 : 0, k + 1)
    const { data, report } = b.finish()
    expect(report.rows).toBe(5000)
    expect(data.nPersons).toBe(97)
    expect(data.nItems).toBe(13)
    // 97 × 13 distinct pairs (97 and 13 coprime), the rest are duplicates.
    expect(data.nObs).toBe(97 * 13)
    expect(report.duplicates.count).toBe(5000 - 97 * 13)
  })

  it('random rows, grouped by person or shuffled, any policy: the same CSR and duplicate report as a plain sort-based reference', () => {
    let seed = 7
    const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32)
    for (let t = 0; t < 30; t++) {
      const nP = 1 + Math.floor(rnd() * 40)
      const rows: Array<{ user_id: string; item_id: string; is_correct: number; row: number }> = []
      for (let i = 0; i < nP; i++) {
        const n = Math.floor(rnd() * 12)
        for (let k = 0; k < n; k++) rows.push({ user_id: `p${Math.floor(rnd() * 1000)}`, item_id: `i${Math.floor(rnd() * 9)}`, is_correct: rnd() < 0.5 ? 1 : 0, row: 0 })
      }
      // Half the cases grouped by person in id order (the builder's no-sort path), half as generated.
      if (t % 2 === 0) rows.sort((x, y) => (x.user_id < y.user_id ? -1 : x.user_id > y.user_id ? 1 : 0))
      rows.forEach((r, k) => (r.row = k + 1))
      for (const policy of ['first', 'last'] as const) {
        const { data, report } = buildResponseMatrix(rows, { duplicates: policy, maxExamples: 1000 })
        // Reference: sort (user, item, input order), keep the first or last of each pair.
        const sorted = [...rows].sort((x, y) => (x.user_id < y.user_id ? -1 : x.user_id > y.user_id ? 1 : x.item_id < y.item_id ? -1 : x.item_id > y.item_id ? 1 : x.row - y.row))
        const kept: typeof rows = []
        const dups: Array<{ row: number; kept_row: number }> = []
        for (let k = 0; k < sorted.length; ) {
          let g = k + 1
          while (g < sorted.length && sorted[g].user_id === sorted[k].user_id && sorted[g].item_id === sorted[k].item_id) g++
          const keep = policy === 'first' ? sorted[k] : sorted[g - 1]
          kept.push(keep)
          for (let h = k; h < g; h++) if (sorted[h] !== keep) dups.push({ row: sorted[h].row, kept_row: keep.row })
          k = g
        }
        const persons = [...new Set(kept.map((r) => r.user_id))].sort()
        const items = [...new Set(kept.map((r) => r.item_id))].sort()
        expect(data.personIds, `case ${t}`).toEqual(persons)
        expect(data.itemIds).toEqual(items)
        expect(Array.from(data.items).map((j) => data.itemIds[j])).toEqual(kept.map((r) => r.item_id))
        expect(Array.from(data.resp)).toEqual(kept.map((r) => r.is_correct))
        expect(Array.from(data.rowPtr)).toEqual([0, ...persons.map((p) => kept.filter((r) => r.user_id <= p).length)])
        expect(report.duplicates.examples.map((d) => ({ row: d.row, kept_row: d.kept_row }))).toEqual(dups)
        expect(report.accepted).toBe(kept.length)
      }
    }
  })
})
