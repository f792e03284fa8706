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
 * Streaming builder: observations go in one at a time and are kept in growable typed arrays
 * (13 bytes a row), with user and item ids interned once, so a reader (CSV, a database cursor)
 * never holds per-row objects or strings. Semantics are buildResponseMatrix's: unusable values
 * are rejected with counts and examples, duplicates resolved by `policy`, persons and items
 * ordered by id (plain code-unit order), so results do not depend on row order.
 */
export class ResponseMatrixBuilder {
  private readonly policy: DuplicatePolicy
  private readonly maxEx: number
  /** Id → index, built on first use: a reader that knows its ids are new appends without it. */
  private personIndex: Map<string, number> | null = null
  private itemIndex: Map<string, number> | null = null
  private readonly personIds: string[] = []
  private readonly itemIds: string[] = []
  private P = new Int32Array(1024)
  private I = new Int32Array(1024)
  private Y = new Uint8Array(1024)
  private R = new Int32Array(1024)
  private m = 0
  private n = 0
  private readonly rejected: BuildReport['rejected'] = { count: 0, byReason: {}, examples: [] }
  private finished = false

  constructor(opts: BuildOptions = {}) {
    this.policy = opts.duplicates ?? 'first'
    this.maxEx = opts.maxExamples ?? 10
  }

  /** value: the raw is_correct (string from CSV, boolean/number from the database); row: 1-based data-row number for messages */
  add(userId: string, itemId: string, value: unknown, row: number): void {
    const u = idOf(userId)
    const i = idOf(itemId)
    let y: 0 | 1 | RejectReason = parseBinary(value)
    if (u === '') y = 'missing_user_id'
    else if (i === '') y = 'missing_item_id'
    if (typeof y === 'string') {
      this.reject(row, u, i, value === undefined || value === null ? '' : String(value), y)
      return
    }
    this.addIndexed(this.internPerson(u), this.internItem(i), y, row)
  }

  /** Index of a person id (already trimmed, non-empty), interning it on first sight. For readers that intern ids themselves. */
  internPerson(id: string): number {
    const index = (this.personIndex ??= indexOf(this.personIds))
    let k = index.get(id)
    if (k === undefined) {
      k = this.personIds.length
      index.set(id, k)
      this.personIds.push(id)
    }
    return k
  }

  /** Index of an item id (already trimmed, non-empty), interning it on first sight. */
  internItem(id: string): number {
    const index = (this.itemIndex ??= indexOf(this.itemIds))
    let k = index.get(id)
    if (k === undefined) {
      k = this.itemIds.length
      index.set(id, k)
      this.itemIds.push(id)
    }
    return k
  }

  /**
   * A person id the caller knows is not interned yet (e.g. distinct bytes that decode one-to-one):
   * skips the map lookup, which for 100,000 learners costs more than the rest of their first row.
   */
  appendPerson(id: string): number {
    const k = this.personIds.length
    this.personIds.push(id)
    this.personIndex?.set(id, k)
    return k
  }

  /** An item id the caller knows is not interned yet. */
  appendItem(id: string): number {
    const k = this.itemIds.length
    this.itemIds.push(id)
    this.itemIndex?.set(id, k)
    return k
  }

  /** An accepted observation with indices from internPerson/internItem. */
  addIndexed(person: number, item: number, y: 0 | 1, row: number): void {
    this.n++
    const k = this.m
    if (k === this.P.length) this.grow()
    this.P[k] = person
    this.I[k] = item
    this.Y[k] = y
    this.R[k] = row
    this.m = k + 1
  }

  /** A rejected row: counted, and kept as an example while fewer than maxExamples are. */
  reject(row: number, userId: string, itemId: string, value: string, reason: RejectReason): void {
    this.n++
    const rj = this.rejected
    rj.count++
    rj.byReason[reason] = (rj.byReason[reason] ?? 0) + 1
    if (rj.examples.length < this.maxEx) rj.examples.push({ row, user_id: userId, item_id: itemId, value, reason })
  }

  /** Whether another rejected example would still be kept (readers decode a rejected row's text only then). */
  wantsRejectExample(): boolean {
    return this.rejected.examples.length < this.maxEx
  }

  /** Rows added so far (accepted and rejected). */
  get rows(): number {
    return this.n
  }

  /** Makes room for at least n rows in all (a reader that can estimate its row count saves the doublings). */
  reserve(n: number): void {
    if (n > this.P.length) this.grow(n)
  }

  private grow(min = 0): void {
    const cap = Math.max(this.P.length * 2, min)
    const P = new Int32Array(cap)
    P.set(this.P)
    const I = new Int32Array(cap)
    I.set(this.I)
    const Y = new Uint8Array(cap)
    Y.set(this.Y)
    const R = new Int32Array(cap)
    R.set(this.R)
    this.P = P
    this.I = I
    this.Y = Y
    this.R = R
  }

  finish(): { data: ResponseMatrix; report: BuildReport } {
    if (this.finished) throw new Error('ResponseMatrixBuilder.finish() called twice')
    this.finished = true
    const m = this.m
    const pOrder = sortedRemap(this.personIds, this.personIndex)
    const iOrder = sortedRemap(this.itemIds, this.itemIndex)
    // Remap in place on views of exactly m rows (the spare capacity is dropped with the builder).
    const P = this.P.subarray(0, m)
    const I = this.I.subarray(0, m)
    const pn = pOrder.newIndex
    const inew = iOrder.newIndex
    for (let k = 0; k < m; k++) {
      P[k] = pn[P[k]]
      I[k] = inew[I[k]]
    }
    this.personIndex = this.itemIndex = null
    const { data, dup } = assemble(pOrder.sorted, iOrder.sorted, P, I, this.Y.subarray(0, m), this.R.subarray(0, m), this.policy, this.maxEx)
    this.P = this.I = this.R = new Int32Array(0)
    this.Y = new Uint8Array(0)
    return { data, report: { rows: this.n, accepted: m - dup.count, rejected: this.rejected, duplicates: dup } }
  }
}

/**
 * Builds the sparse matrix from long rows (a thin wrapper over ResponseMatrixBuilder), rejecting
 * unusable values (with counts and examples) and resolving duplicates by `policy`. Persons and
 * items are ordered by id (plain code-unit order), so results do not depend on row order.
 */
export function buildResponseMatrix(rows: Iterable<ResponseRow>, opts: BuildOptions = {}): { data: ResponseMatrix; report: BuildReport } {
  const b = new ResponseMatrixBuilder(opts)
  let n = 0
  for (const r of rows) {
    n++
    b.add(r.user_id as string, r.item_id as string, r.is_correct, r.row ?? n)
  }
  return b.finish()
}

/**
 * Ids in plain code-unit order and each id's new position. Array.prototype.sort's default order
 * is exactly code-unit order for strings, and needs no comparator calls; ids are distinct, so the
 * index map gives the permutation. Ids that arrive in order (a file sorted by learner) stay put.
 */
function indexOf(ids: string[]): Map<string, number> {
  const m = new Map<string, number>()
  for (let k = 0; k < ids.length; k++) m.set(ids[k], k)
  return m
}

function sortedRemap(ids: string[], index: Map<string, number> | null): { sorted: string[]; newIndex: Int32Array } {
  const n = ids.length
  const newIndex = new Int32Array(n)
  let inOrder = true
  for (let k = 1; k < n && inOrder; k++) inOrder = ids[k - 1] < ids[k]
  if (inOrder) {
    for (let k = 0; k < n; k++) newIndex[k] = k
    return { sorted: ids, newIndex }
  }
  const sorted = ids.slice().sort()
  const at = index ?? indexOf(ids)
  for (let k = 0; k < n; k++) newIndex[at.get(sorted[k])!] = k
  return { sorted, newIndex }
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
  // Stable counting sort by person keeps input order within a person. When rows already come
  // person by person in id order (a sorted export), the order is the identity and is not built.
  const count = new Int32Array(nP + 1)
  let grouped = true
  for (let k = 0; k < m; k++) {
    count[P[k] + 1]++
    if (k > 0 && P[k] < P[k - 1]) grouped = false
  }
  for (let i = 0; i < nP; i++) count[i + 1] += count[i]
  let order: Int32Array | null = null
  if (!grouped) {
    order = new Int32Array(m)
    const pos = count.slice()
    for (let k = 0; k < m; k++) order[pos[P[k]]++] = k
  }
  const rowPtr = new Int32Array(nP + 1)
  const items = new Int32Array(m)
  const resp = new Uint8Array(m)
  const dup: BuildReport['duplicates'] = { count: 0, sameValue: 0, conflicting: 0, policy, examples: [] }
  let out = 0
  let keys = new Int32Array(64)
  let idx = new Int32Array(64)
  for (let i = 0; i < nP; i++) {
    rowPtr[i] = out
    const s = count[i]
    const len = count[i + 1] - s
    if (keys.length < len) {
      keys = new Int32Array(len * 2)
      idx = new Int32Array(len * 2)
    }
    // Sort this person's observations by item on local copies of the keys (insertion sort: rows
    // are short); shifting only past strictly greater keys keeps ties in input order.
    for (let k = 0; k < len; k++) {
      const v = order === null ? s + k : order[s + k]
      const key = I[v]
      let j = k - 1
      while (j >= 0 && keys[j] > key) {
        keys[j + 1] = keys[j]
        idx[j + 1] = idx[j]
        j--
      }
      keys[j + 1] = key
      idx[j + 1] = v
    }
    for (let k = 0; k < len; ) {
      const item = keys[k]
      let g = k + 1
      while (g < len && keys[g] === item) g++
      const keep = policy === 'last' ? idx[g - 1] : idx[k]
      for (let h = k; h < g; h++) {
        const v = idx[h]
        if (v === keep) continue
        const conflicting = Y[v] !== Y[keep]
        dup.count++
        if (conflicting) dup.conflicting++
        else dup.sameValue++
        if (dup.examples.length < maxEx) dup.examples.push({ row: rowNo[v], kept_row: rowNo[keep], user_id: personIds[i], item_id: itemIds[item], conflicting })
      }
      items[out] = item
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
    data: { personIds, itemIds, nPersons: nP, nItems: itemIds.length, nObs: out, rowPtr, items: out === m ? items : items.slice(0, out), resp: out === m ? resp : resp.slice(0, out) },
    dup,
  }
}
