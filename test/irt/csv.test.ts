import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { readResponsesCsvStream, scanCsvFile } from '../../src/lib/irt/csv.js'
import { buildResponseMatrix, type ResponseRow } from '../../src/lib/irt/data.js'
import { parseCsv } from '../../src/lib/irt/io.js'
import { SeedopsError } from '../../src/lib/errors/index.js'
import { FIXTURES } from './helpers.js'

const tmp = mkdtempSync(join(tmpdir(), 'seedops-csv-'))
let nFile = 0
function file(content: string | Buffer): string {
  const p = join(tmp, `f${nFile++}.csv`)
  writeFileSync(p, content)
  return p
}

/** The whole-file reader this module replaced: parseCsv over the decoded text, one object per row. */
function wholeFile(path: string, opts = {}) {
  const { header, rows } = parseCsv(readFileSync(path, 'utf8'))
  const c = { u: header.indexOf('user_id'), i: header.indexOf('item_id'), v: header.indexOf('is_correct') }
  const gen = function* (): Generator<ResponseRow> {
    for (let k = 0; k < rows.length; k++) yield { user_id: rows[k][c.u], item_id: rows[k][c.i], is_correct: rows[k][c.v] ?? '', row: k + 1 }
  }
  return buildResponseMatrix(gen(), opts)
}

function plain(r: ReturnType<typeof readResponsesCsvStream>) {
  const d = r.data
  return { personIds: d.personIds, itemIds: d.itemIds, rowPtr: Array.from(d.rowPtr), items: Array.from(d.items), resp: Array.from(d.resp), report: r.report }
}

/** Every record the scanner hands over, as strings, with its starting line. */
function records(path: string, chunkSize?: number): Array<{ line: number; fields: string[] }> {
  const out: Array<{ line: number; fields: string[] }> = []
  scanCsvFile(path, (f, line) => out.push({ line, fields: Array.from({ length: f.count }, (_, k) => f.text(k)!) }), { chunkSize })
  return out
}

describe('streaming CSV scanner', () => {
  const tricky =
    '\uFEFFuser_id,item_id,is_correct\r\n' +
    'u1,i1,1\r\n' +
    '\r\n' +
    '"u,2","i ""quoted""",0\n' +
    '\n' +
    '"multi\nline",i2,1\r' +
    'ü-ser,項目,"1"\n' +
    'a"b"c,"x"y,1'
  const expected = [
    { line: 1, fields: ['user_id', 'item_id', 'is_correct'] },
    { line: 2, fields: ['u1', 'i1', '1'] },
    { line: 4, fields: ['u,2', 'i "quoted"', '0'] },
    { line: 6, fields: ['multi\nline', 'i2', '1'] },
    { line: 8, fields: ['ü-ser', '項目', '1'] },
    { line: 9, fields: ['abc', 'xy', '1'] },
  ]

  it('handles BOM, CRLF, LF, lone CR, empty lines, quotes, "" escapes, newlines in quotes, unicode and a last line without newline', () => {
    const p = file(tricky)
    expect(records(p)).toEqual(expected)
    // The whole-file parser agrees on the fields.
    const { header, rows } = parseCsv(readFileSync(p, 'utf8'))
    expect([header, ...rows]).toEqual(expected.map((r) => r.fields))
  })

  it('gives the same records at every chunk size down to 4 bytes (quoted fields, escapes, CRLF and UTF-8 split across reads)', () => {
    const p = file(tricky)
    const size = Buffer.byteLength(tricky)
    for (let cs = 4; cs <= size + 1; cs++) expect(records(p, cs), `chunk ${cs}`).toEqual(expected)
  })

  it('a record longer than the chunk grows the buffer instead of splitting it', () => {
    const long = 'x'.repeat(1000)
    const p = file(`user_id,item_id,is_correct\n"${long}\n${long}",i1,1\n`)
    const r = records(p, 16)
    expect(r[1].fields[0]).toBe(`${long}\n${long}`)
    expect(r).toHaveLength(2)
  })

  it('an unterminated quote is an error naming its line, as in the whole-file parser (it would swallow the lines after it)', () => {
    const p = file('a,b\n"open,1\n2,3')
    expect(() => records(p, 5)).toThrow(/a quoted field opened on line 2 never closes/)
    expect(() => parseCsv('a,b\n"open,1\n2,3')).toThrow(/opened on line 2 never closes/)
  })
})

describe('readResponsesCsvStream', () => {
  it('reads columns in any order and ignores extra columns', () => {
    const p = file('score_date,is_correct,extra,item_id,user_id\n2024-01-01,1,x,i2,u1\n2024-01-02,0,y,i1,u1\n2024-01-02,1,,i1,u2\n')
    const { data, report } = readResponsesCsvStream(p)
    expect(data.personIds).toEqual(['u1', 'u2'])
    expect(data.itemIds).toEqual(['i1', 'i2'])
    expect(Array.from(data.rowPtr)).toEqual([0, 2, 3])
    expect(Array.from(data.items)).toEqual([0, 1, 0])
    expect(Array.from(data.resp)).toEqual([0, 1, 1])
    expect(report).toMatchObject({ rows: 3, accepted: 3 })
  })

  it('names bad rows by data-row number (empty lines not counted), with reason and raw value; blank and padded ids', () => {
    const p = file('user_id,item_id,is_correct\r\nu1,i1,1\r\n\r\nu1,i2,yes\r\nu2,i1,\r\n ,i1,1\r\nu3,,0\r\nu3\r\n u1 ,i3, 0 \r\nu4,i1,2')
    const { data, report } = readResponsesCsvStream(p, { chunkSize: 8 })
    expect(report.rows).toBe(8)
    expect(report.rejected.byReason).toEqual({ invalid_value: 2, empty_value: 1, missing_user_id: 1, missing_item_id: 2 })
    expect(report.rejected.examples).toEqual([
      { row: 2, user_id: 'u1', item_id: 'i2', value: 'yes', reason: 'invalid_value' },
      { row: 3, user_id: 'u2', item_id: 'i1', value: '', reason: 'empty_value' },
      { row: 4, user_id: '', item_id: 'i1', value: '1', reason: 'missing_user_id' },
      { row: 5, user_id: 'u3', item_id: '', value: '0', reason: 'missing_item_id' },
      { row: 6, user_id: 'u3', item_id: '', value: '', reason: 'missing_item_id' },
      { row: 8, user_id: 'u4', item_id: 'i1', value: '2', reason: 'invalid_value' },
    ])
    // " u1 " is u1; u2/u3/u4 never had an accepted row, so they are not persons.
    expect(data.personIds).toEqual(['u1'])
    expect(data.itemIds).toEqual(['i1', 'i3'])
    expect(Array.from(data.resp)).toEqual([1, 0])
  })

  it('the same id quoted and unquoted, or with different padding, is one person', () => {
    const p = file('user_id,item_id,is_correct\n"ü1",i1,1\nü1,i2,0\n" ü1",i3,1\n"a""b",i1,1\na""b,i2,1\n')
    const { data } = readResponsesCsvStream(p, { chunkSize: 5 })
    expect(data.personIds).toEqual(['ab', 'a"b', 'ü1'].sort())
    expect(data.nObs).toBe(5)
  })

  it('ids whose bytes differ but whose text is the same (padding, invalid UTF-8) are one person, in either order', () => {
    const p = file(
      Buffer.concat([
        Buffer.from('user_id,item_id,is_correct\nu1,i1,1\n u1,i2,0\n u2,i1,1\nu2,i2,1\n'),
        Buffer.from([0xff, 0x2c, 0x69, 0x31, 0x2c, 0x31, 0x0a, 0xfe, 0x2c, 0x69, 0x32, 0x2c, 0x30, 0x0a]),
      ]),
    )
    const { data } = readResponsesCsvStream(p)
    expect(data.personIds).toEqual(['u1', 'u2', '\ufffd'])
    expect(Array.from(data.rowPtr)).toEqual([0, 2, 4, 6])
    expect(data.nObs).toBe(6)
  })

  it('a missing column is an error naming the header; so is an empty file; a missing file says so', () => {
    const err = (f: () => unknown) => {
      try {
        f()
      } catch (e) {
        return e as SeedopsError
      }
      throw new Error('did not throw')
    }
    const e1 = err(() => readResponsesCsvStream(file('user_id,item,is_correct\nu1,i1,1\n')))
    expect(e1).toBeInstanceOf(SeedopsError)
    expect(e1.code).toBe('IRT_BAD_CSV')
    expect(e1.message).toMatch(/missing column "item_id" \(header is: user_id,item,is_correct\)/)
    const e2 = err(() => readResponsesCsvStream(file('\n\n')))
    expect(e2.message).toMatch(/missing column "user_id" \(header is: empty\)/)
    const e3 = err(() => readResponsesCsvStream(join(tmp, 'nope.csv')))
    expect(e3.code).toBe('FILE_NOT_FOUND')
  })

  it('random files in the dialect: the stream gives exactly the whole-file result at several chunk sizes', () => {
    let seed = 12345
    const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32)
    const pick = <T,>(xs: T[]) => xs[Math.floor(rnd() * xs.length)]
    const ids = ['u1', 'u2', ' u3', '"u,4"', '"u""5"', 'ü6', '', '"multi\nline"', 'u1 ']
    const vals = ['0', '1', ' 1', '"0"', '', 'x', '2', '"1"']
    const ends = ['\n', '\r\n', '\r', '\n\n']
    const seen = { accepted: 0, rejected: 0, duplicates: 0 }
    for (let t = 0; t < 40; t++) {
      let s = pick(['', '\uFEFF']) + pick(['user_id,item_id,is_correct', 'is_correct,user_id,item_id,extra'])
      const swapped = s.includes('is_correct,user_id')
      for (let k = 0; k < 60; k++) {
        const u = pick(ids)
        const i = pick(['i1', 'i2', '"i3"', '', '項'])
        const v = pick(vals)
        s += pick(ends) + (swapped ? `${v},${u},${i},${pick(['', 'z', '"q,q"'])}` : rnd() < 0.05 ? u : `${u},${i},${v}`)
      }
      if (rnd() < 0.5) s += '\n'
      const p = file(s)
      const ref = wholeFile(p)
      seen.accepted += ref.report.accepted
      seen.rejected += ref.report.rejected.count
      seen.duplicates += ref.report.duplicates.count
      for (const cs of [4, 7, 64, undefined]) expect(plain(readResponsesCsvStream(p, { chunkSize: cs })), `case ${t}, chunk ${cs}`).toEqual(plain(ref))
    }
    // The cases exercise all three outcomes.
    expect(seen.accepted).toBeGreaterThan(200)
    expect(seen.rejected).toBeGreaterThan(200)
    expect(seen.duplicates).toBeGreaterThan(50)
  })

  it('every reference responses file reads exactly as the whole-file reader read it', () => {
    let n = 0
    for (const ds of readdirSync(FIXTURES, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name)) {
      for (const f of readdirSync(join(FIXTURES, ds)).filter((x) => x.startsWith('responses') && x.endsWith('.csv'))) {
        const p = join(FIXTURES, ds, f)
        expect(plain(readResponsesCsvStream(p, { chunkSize: 1000 })), `${ds}/${f}`).toEqual(plain(wholeFile(p)))
        n++
      }
    }
    expect(n).toBeGreaterThanOrEqual(7)
  })
})
