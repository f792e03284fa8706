import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseCsv } from '../../src/lib/irt/io.js'

export const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'irt')

export function fixture(ds: string, file: string): string {
  if (ds === 'sim1pl-1pl' && file === 'responses.csv') return join(FIXTURES, 'sim1pl-rasch', file)
  return join(FIXTURES, ds, file)
}

/** A CSV as records keyed by the header, numbers parsed (empty cells → null). */
export function readTable(ds: string, file: string): Array<Record<string, string | number | null>> {
  const { header, rows } = parseCsv(readFileSync(fixture(ds, file), 'utf8'))
  return rows.map((r) => Object.fromEntries(header.map((h, k) => [h, r[k] === '' ? null : Number.isNaN(Number(r[k])) ? r[k] : Number(r[k])])))
}

export function readFit(ds: string): any {
  return JSON.parse(readFileSync(fixture(ds, 'mirt_fit.json'), 'utf8'))
}

export function maxAbsDiff(xs: number[], ys: number[]): number {
  let m = 0
  xs.forEach((x, i) => (m = Math.max(m, Math.abs(x - ys[i]))))
  return m
}

export function rmse(xs: number[], ys: number[]): number {
  let s = 0
  xs.forEach((x, i) => (s += (x - ys[i]) ** 2))
  return Math.sqrt(s / xs.length)
}
