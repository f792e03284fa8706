import { SeedopsError } from '../errors/index.js'

/**
 * Sparse persons × items response data in CSR form (one row per person, items ascending).
 * Each learner answers a few items of a large bank, so only observed responses are stored:
 * the responses of person i are `items[rowPtr[i] .. rowPtr[i+1])` with values in `resp`.
 */
export interface ResponseMatrix {
  personIds: string[]
  itemIds: string[]
  nPersons: number
  nItems: number
  nObs: number
  rowPtr: Int32Array
  items: Int32Array
  resp: Uint8Array
}

/** One long-format row: `user_id,item_id,is_correct`. `row` is the 1-based data-row number for messages. */
export interface ResponseRow {
  user_id: unknown
  item_id: unknown
  is_correct: unknown
  row?: number
}

/**
 * How repeated (user, item) pairs are resolved. `first` (default) keeps the earliest row in
 * input order — a learner's first attempt is the one that measures them, and it is what the
 * predecessor's data preparation kept; `last` keeps the latest; `error` refuses the data.
 */
export type DuplicatePolicy = 'first' | 'last' | 'error'

export type RejectReason = 'empty_value' | 'invalid_value' | 'missing_user_id' | 'missing_item_id'

export interface RejectedRow {
  row: number
  user_id: string
  item_id: string
  value: string
  reason: RejectReason
}

export interface DuplicateExample {
  row: number
  kept_row: number
  user_id: string
  item_id: string
  conflicting: boolean
}

export interface BuildReport {
  rows: number
  accepted: number
  rejected: { count: number; byReason: Partial<Record<RejectReason, number>>; examples: RejectedRow[] }
  duplicates: { count: number; sameValue: number; conflicting: number; policy: DuplicatePolicy; examples: DuplicateExample[] }
}

export interface BuildOptions {
  duplicates?: DuplicatePolicy
  /** How many example rows to keep per report list (default 10). */
  maxExamples?: number
}

/** Strictly 0 or 1: numbers 0/1, booleans, or the strings "0"/"1" (surrounding blanks ignored). Anything else is rejected, never coerced. */
export function parseBinary(v: unknown): 0 | 1 | RejectReason {
  if (v === 0 || v === 1) return v
  if (v === true) return 1
  if (v === false) return 0
  if (v === null || v === undefined) return 'empty_value'
  if (typeof v === 'string') {
    const t = v.trim()
    if (t === '') return 'empty_value'
    if (t === '0') return 0
    if (t === '1') return 1
  }
  return 'invalid_value'
}

function idOf(v: unknown): string {
  if (v === null || v === undefined) return ''
  return String(v).trim()
}

/**
 * Builds the sparse matrix from long rows, rejecting unusable values (with counts and
 * examples) and resolving duplicates by `policy`. Persons and items are ordered by id
 * (plain code-unit order), so results do not depend on row order.
 */
export function buildResponseMatrix(rows: Iterable<ResponseRow>, opts: BuildOptions = {}): { data: ResponseMatrix; report: BuildReport } {
  const policy = opts.duplicates ?? 'first'
  const maxEx = opts.maxExamples ?? 10
  const personIndex = new Map<string, number>()
  const itemIndex = new Map<string, number>()
  const personIds: string[] = []
  const itemIds: string[] = []
  let p: number[] = []
  let it: number[] = []
  let ys: number[] = []
  let rowNo: number[] = []
  const rejected: BuildReport['rejected'] = { count: 0, byReason: {}, examples: [] }
  let n = 0
  for (const r of rows) {
    n++
    const row = r.row ?? n
    const u = idOf(r.user_id)
    const i = idOf(r.item_id)
    let y: 0 | 1 | RejectReason = parseBinary(r.is_correct)
    if (u === '') y = 'missing_user_id'
    else if (i === '') y = 'missing_item_id'
    if (typeof y === 'string') {
      rejected.count++
      rejected.byReason[y] = (rejected.byReason[y] ?? 0) + 1
      if (rejected.examples.length < maxEx) rejected.examples.push({ row, user_id: u, item_id: i, value: r.is_correct === undefined || r.is_correct === null ? '' : String(r.is_correct), reason: y })
      continue
    }
    let pi = personIndex.get(u)
    if (pi === undefined) {
      pi = personIds.length
      personIndex.set(u, pi)
      personIds.push(u)
    }
    let ii = itemIndex.get(i)
    if (ii === undefined) {
      ii = itemIds.length
      itemIndex.set(i, ii)
      itemIds.push(i)
    }
    p.push(pi)
    it.push(ii)
    ys.push(y)
    rowNo.push(row)
  }
  const pOrder = sortedRemap(personIds)
  const iOrder = sortedRemap(itemIds)
  const m = p.length
  const P = new Int32Array(m)
  const I = new Int32Array(m)
  const Y = new Uint8Array(m)
  const R = new Int32Array(m)
  for (let k = 0; k < m; k++) {
    P[k] = pOrder.newIndex[p[k]]
    I[k] = iOrder.newIndex[it[k]]
    Y[k] = ys[k]
    R[k] = rowNo[k]
  }
  p = it = ys = rowNo = []
  const { data, dup } = assemble(pOrder.sorted, iOrder.sorted, P, I, Y, R, policy, maxEx)
  return { data, report: { rows: n, accepted: m - dup.count, rejected, duplicates: dup } }
}

function sortedRemap(ids: string[]): { sorted: string[]; newIndex: Int32Array } {
  const order = ids.map((_, k) => k).sort((x, y) => (ids[x] < ids[y] ? -1 : ids[x] > ids[y] ? 1 : 0))
  const newIndex = new Int32Array(ids.length)
  order.forEach((old, k) => (newIndex[old] = k))
  return { sorted: order.map((k) => ids[k]), newIndex }
}

/**
 * Builds the matrix from already-indexed observations (person and item indices, 0/1 values),
 * e.g. from a database query or a simulation. Duplicates are resolved as in buildResponseMatrix,
 * with input position standing in for the row number.
 */
export function buildFromIndexed(
  personIds: string[],
  itemIds: string[],
  person: Int32Array,
  item: Int32Array,
  resp: Uint8Array,
  opts: BuildOptions = {},
): { data: ResponseMatrix; report: BuildReport } {
  const m = person.length
  const rowNo = new Int32Array(m)
  for (let k = 0; k < m; k++) {
    rowNo[k] = k + 1
    if (person[k] < 0 || person[k] >= personIds.length || item[k] < 0 || item[k] >= itemIds.length) throw new RangeError(`observation ${k + 1}: index out of range`)
    if (resp[k] > 1) throw new RangeError(`observation ${k + 1}: response ${resp[k]} is not 0 or 1`)
  }
  const { data, dup } = assemble(personIds, itemIds, person, item, resp, rowNo, opts.duplicates ?? 'first', opts.maxExamples ?? 10)
  return { data, report: { rows: m, accepted: m - dup.count, rejected: { count: 0, byReason: {}, examples: [] }, duplicates: dup } }
}

function assemble(
  personIds: string[],
  itemIds: string[],
  P: Int32Array,
  I: Int32Array,
  Y: Uint8Array,
  rowNo: Int32Array,
  policy: DuplicatePolicy,
  maxEx: number,
): { data: ResponseMatrix; dup: BuildReport['duplicates'] } {
  const nP = personIds.length
  const m = P.length
  // Stable counting sort by person keeps input order within a person.
  const count = new Int32Array(nP + 1)
  for (let k = 0; k < m; k++) count[P[k] + 1]++
  for (let i = 0; i < nP; i++) count[i + 1] += count[i]
  const pos = count.slice()
  const order = new Int32Array(m)
  for (let k = 0; k < m; k++) order[pos[P[k]]++] = k
  const rowPtr = new Int32Array(nP + 1)
  const items = new Int32Array(m)
  const resp = new Uint8Array(m)
  const dup: BuildReport['duplicates'] = { count: 0, sameValue: 0, conflicting: 0, policy, examples: [] }
  let out = 0
  let buf = new Int32Array(64)
  for (let i = 0; i < nP; i++) {
    rowPtr[i] = out
    const s = count[i]
    const e = count[i + 1]
    const len = e - s
    if (buf.length < len) buf = new Int32Array(len * 2)
    // Sort this person's observations by item, ties in input order (insertion sort: rows are short).
    for (let k = 0; k < len; k++) {
      const v = order[s + k]
      let j = k - 1
      while (j >= 0 && (I[buf[j]] > I[v] || (I[buf[j]] === I[v] && buf[j] > v))) {
        buf[j + 1] = buf[j]
        j--
      }
      buf[j + 1] = v
    }
    for (let k = 0; k < len; ) {
      let g = k + 1
      while (g < len && I[buf[g]] === I[buf[k]]) g++
      const keep = policy === 'last' ? buf[g - 1] : buf[k]
      for (let h = k; h < g; h++) {
        const v = buf[h]
        if (v === keep) continue
        const conflicting = Y[v] !== Y[keep]
        dup.count++
        if (conflicting) dup.conflicting++
        else dup.sameValue++
        if (dup.examples.length < maxEx) dup.examples.push({ row: rowNo[v], kept_row: rowNo[keep], user_id: personIds[i], item_id: itemIds[I[v]], conflicting })
      }
      items[out] = I[keep]
      resp[out] = Y[keep]
      out++
      k = g
    }
  }
  rowPtr[nP] = out
  if (policy === 'error' && dup.count > 0) {
    const ex = dup.examples[0]
    throw new SeedopsError(`${dup.count} duplicate (user_id, item_id) pair(s), e.g. ${ex.user_id}/${ex.item_id} at rows ${Math.min(ex.row, ex.kept_row)} and ${Math.max(ex.row, ex.kept_row)}`, {
      code: 'IRT_DUPLICATES',
      suggestions: ['Keep the first attempt: --duplicates first', 'Keep the last attempt: --duplicates last'],
      data: { duplicates: dup },
    })
  }
  return {
    data: { personIds, itemIds, nPersons: nP, nItems: itemIds.length, nObs: out, rowPtr, items: items.slice(0, out), resp: resp.slice(0, out) },
    dup,
  }
}
