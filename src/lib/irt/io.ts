import { readFileSync } from 'node:fs'
import { SeedopsError } from '../errors/index.js'
import { readResponsesCsvStream, type ReadResponsesOptions } from './csv.js'
import type { AnchorItem } from './calibrate.js'
import type { ScoringItem } from './score.js'

/**
 * CSV reading for the offline IRT commands (the engine itself does no I/O). Plain RFC 4180
 * subset: comma separated, optional double quotes, first line is the header.
 */
export function parseCsv(text: string): { header: string[]; rows: string[][]; lines: number[] } {
  const out: string[][] = []
  const lines: number[] = []
  let line = 1
  const src = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text
  let i = 0
  while (i < src.length) {
    const start = line
    const fields: string[] = []
    let field = ''
    let inQ = false
    for (; i < src.length; i++) {
      const ch = src[i]
      if (inQ) {
        if (ch === '"') {
          if (src[i + 1] === '"') {
            field += '"'
            i++
          } else inQ = false
        } else {
          if (ch === '\n') line++
          field += ch
        }
      } else if (ch === '"') inQ = true
      else if (ch === ',') {
        fields.push(field)
        field = ''
      } else if (ch === '\n' || ch === '\r') {
        if (ch === '\r' && src[i + 1] === '\n') i++
        i++
        line++
        break
      } else field += ch
    }
    // A quote still open at the end would have swallowed every line after it into one field.
    if (inQ) throw new SeedopsError(`a quoted field opened on line ${start} never closes (no closing " before the end of the file)`, { code: 'IRT_BAD_CSV' })
    fields.push(field)
    if (!(fields.length === 1 && fields[0] === '')) {
      out.push(fields)
      lines.push(start)
    }
  }
  const header = (out.shift() ?? []).map((h) => h.trim())
  lines.shift()
  return { header, rows: out, lines }
}

function readText(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8')
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    throw new SeedopsError(`cannot read ${what} ${path}: ${code === 'ENOENT' ? 'no such file' : (e as Error).message}`, {
      code: code === 'ENOENT' ? 'FILE_NOT_FOUND' : 'FILE_READ',
      suggestions: [`Check the path given to the ${what} flag`],
    })
  }
}

function columns(header: string[], path: string, required: string[]): Record<string, number> {
  const idx: Record<string, number> = {}
  for (const r of required) {
    const k = header.indexOf(r)
    if (k < 0) {
      throw new SeedopsError(`${path}: missing column "${r}" (header is: ${header.join(',') || 'empty'})`, {
        code: 'IRT_BAD_CSV',
        suggestions: [`The file needs a header line with ${required.join(',')}`],
      })
    }
    idx[r] = k
  }
  return idx
}

/**
 * Reads long-format responses `user_id,item_id,is_correct`; `row` numbers data rows from 1 (header
 * not counted). Streams the file in chunks (csv.ts): no whole-file string, no per-row objects.
 */
export function readResponsesCsv(path: string, opts: ReadResponsesOptions = {}) {
  return readResponsesCsvStream(path, opts)
}

function num(v: string | undefined): number | undefined {
  if (v === undefined) return undefined
  const t = v.trim()
  if (t === '' || t.toUpperCase() === 'NA') return undefined
  const x = Number(t)
  return Number.isFinite(x) ? x : NaN
}

/** Reads item parameters `item_id,a,b[,c][,d]` (b or d required). */
export function readItemParamsCsv(path: string, what = 'parameters file'): ScoringItem[] {
  const { header, rows, lines } = parseCsv(readText(path, what))
  const c = columns(header, path, ['item_id', 'a'])
  const ib = header.indexOf('b')
  const id = header.indexOf('d')
  const ic = header.indexOf('c')
  if (ib < 0 && id < 0) throw new SeedopsError(`${path}: needs a "b" or a "d" column`, { code: 'IRT_BAD_CSV' })
  const seen = new Set<string>()
  return rows.map((r, k) => {
    const item_id = (r[c.item_id] ?? '').trim()
    const a = num(r[c.a])
    const b = ib >= 0 ? num(r[ib]) : undefined
    const d = id >= 0 ? num(r[id]) : undefined
    const cc = ic >= 0 ? num(r[ic]) ?? 0 : 0
    const bad = (msg: string) => new SeedopsError(`${path} line ${lines[k]}: ${msg}`, { code: 'IRT_BAD_CSV', data: { file: path, line: lines[k] } })
    if (!item_id) throw bad('empty item_id')
    if (seen.has(item_id)) throw bad(`item ${item_id} appears twice`)
    seen.add(item_id)
    if (a === undefined || Number.isNaN(a)) throw bad(`item ${item_id}: a is not a number`)
    if ((b === undefined || Number.isNaN(b)) && (d === undefined || Number.isNaN(d))) throw bad(`item ${item_id}: needs a numeric b or d`)
    if (Number.isNaN(cc) || cc < 0 || cc >= 1) throw bad(`item ${item_id}: c must be in [0, 1)`)
    const bb = b !== undefined && !Number.isNaN(b) ? b : -(d as number) / a
    return { item_id, a, b: bb, c: cc, d: -a * bb }
  })
}

export function readAnchorsCsv(path: string): AnchorItem[] {
  return readItemParamsCsv(path, 'anchors file').map((x) => ({ item_id: x.item_id!, a: x.a, b: x.b!, c: x.c ?? 0 }))
}

/** CSV text for calibrated items (numbers at full precision, empty cells for missing values). */
export function formatCsv(header: string[], rows: Array<Array<string | number | boolean | null | undefined>>): string {
  const cell = (v: string | number | boolean | null | undefined) => {
    if (v === null || v === undefined || (typeof v === 'number' && !Number.isFinite(v))) return ''
    const s = String(v)
    return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s
  }
  return [header.join(','), ...rows.map((r) => r.map(cell).join(','))].join('\n') + '\n'
}
