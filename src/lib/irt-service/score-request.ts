import { SeedopsError } from '../errors/index.js'
import { DEFAULT_QUADPTS, DEFAULT_THETA_LIM, logNormalWeights, makeGrid } from '../irt/grid.js'
import { scoreArrays, type ResponseCsr, type ScoreMethod, type ScoringArrays } from '../irt/score.js'
import { eapBatch, itemTable, type ItemTable } from './eap-batch.js'

/**
 * POST /irt/score, validated by hand straight into the engine's typed arrays: one pass over the
 * parsed JSON, no per-element schema objects (zod over 1000 × 40 cells cost more than the EAP).
 * The first bad field is named in the 400, as `item_params[3].a` or `responses[12][7]`.
 */
export interface ScoreBatch {
  items: ScoringArrays
  csr: ResponseCsr
  method: ScoreMethod
  nPersons: number
  nItems: number
}

const METHODS: readonly ScoreMethod[] = ['eap', 'map', 'ml']

function bad(message: string): SeedopsError {
  return new SeedopsError(`invalid request: ${message}`, { code: 'BAD_REQUEST' })
}

const show = (v: unknown) => (v === undefined ? 'nothing' : JSON.stringify(v))
const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v)

export function parseScoreRequest(body: unknown): ScoreBatch {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw bad('body: expected a JSON object')
  const b = body as Record<string, unknown>
  const params = b.item_params
  if (!Array.isArray(params) || params.length === 0) throw bad(`item_params: expected a non-empty array of {a, b, c?}, got ${Array.isArray(params) ? 'an empty array' : show(params)}`)
  const J = params.length
  const a = new Float64Array(J)
  const d = new Float64Array(J)
  const c = new Float64Array(J)
  for (let j = 0; j < J; j++) {
    const p = params[j] as Record<string, unknown> | null
    if (p === null || typeof p !== 'object' || Array.isArray(p)) throw bad(`item_params[${j}]: expected an object {a, b, c?}, got ${show(p)}`)
    const aj = p.a
    const bj = p.b
    const cj = p.c
    if (!isNum(aj) || aj <= 0) throw bad(`item_params[${j}].a: expected a number > 0, got ${show(aj)}`)
    if (!isNum(bj)) throw bad(`item_params[${j}].b: expected a number, got ${show(bj)}`)
    if (cj !== undefined && (!isNum(cj) || cj < 0 || cj > 0.99)) throw bad(`item_params[${j}].c: expected a number in [0, 0.99], got ${show(cj)}`)
    a[j] = aj
    d[j] = -aj * bj
    c[j] = cj ?? 0
  }
  const method = b.method === undefined ? 'eap' : (b.method as ScoreMethod)
  if (!METHODS.includes(method)) throw bad(`method: expected one of ${METHODS.join(', ')}, got ${show(b.method)}`)
  const rows = b.responses
  if (!Array.isArray(rows)) throw bad(`responses: expected an array of response rows, got ${show(rows)}`)
  const P = rows.length
  const rowPtr = new Int32Array(P + 1)
  // Every row has J cells (checked below), so P × J bounds the responses.
  const it = new Int32Array(P * J)
  const rs = new Uint8Array(P * J)
  let o = 0
  for (let i = 0; i < P; i++) {
    const row = rows[i] as unknown
    if (!Array.isArray(row)) throw bad(`responses[${i}]: expected an array of 0, 1 or null, got ${show(row)}`)
    if (row.length !== J) throw new SeedopsError(`responses[${i}] has ${row.length} entries, item_params has ${J}`, { code: 'BAD_REQUEST' })
    rowPtr[i] = o
    for (let j = 0; j < J; j++) {
      const y = row[j] as unknown
      if (y === null) continue
      if (y !== 0 && y !== 1) throw new SeedopsError(`responses[${i}][${j}] = ${show(y)} is not 0, 1 or null`, { code: 'BAD_REQUEST' })
      it[o] = j
      rs[o] = y
      o++
    }
  }
  rowPtr[P] = o
  return { items: { a, d, c }, csr: { rowPtr, items: it.subarray(0, o), resp: rs.subarray(0, o) }, method, nPersons: P, nItems: J }
}

/**
 * The item tables (log-likelihoods on the grid, eap-batch.ts) per item set, kept across
 * requests: callers score against the same bank again and again, and for one learner × 30 items
 * building the table (2·J·61 logs) costs more than the scoring. Keyed by a hash of the
 * parameters, compared exactly on a hit; least recently used dropped past a memory budget.
 */
const TABLE_BUDGET_BYTES = 32 * 1024 * 1024
const tables = new Map<string, ItemTable>()
let tableBytes = 0
const grid = makeGrid(DEFAULT_QUADPTS, DEFAULT_THETA_LIM)
const logPrior = logNormalWeights(grid, 0, 1)

function hashItems(x: ScoringArrays): string {
  let h1 = 0x811c9dc5
  let h2 = 0x01000193
  for (const arr of [x.a, x.d, x.c]) {
    const u = new Uint32Array(arr.buffer, arr.byteOffset, arr.length * 2)
    for (let k = 0; k < u.length; k++) {
      h1 = Math.imul(h1 ^ u[k]!, 0x01000193)
      h2 = Math.imul(h2 ^ u[k]!, 0x5bd1e995) ^ (h2 >>> 15)
    }
  }
  return `${x.a.length}:${h1 >>> 0}:${h2 >>> 0}`
}

const same = (p: Float64Array, q: Float64Array) => {
  if (p.length !== q.length) return false
  for (let k = 0; k < p.length; k++) if (p[k] !== q[k]) return false
  return true
}
const bytesOf = (t: ItemTable) => t.logT.byteLength + 3 * t.items.a.byteLength

export function tableFor(x: ScoringArrays): ItemTable {
  const key = hashItems(x)
  const hit = tables.get(key)
  if (hit) {
    tables.delete(key)
    if (same(hit.items.a, x.a) && same(hit.items.d, x.d) && same(hit.items.c, x.c)) {
      // Map order is the LRU order: re-insert on use.
      tables.set(key, hit)
      return hit
    }
    tableBytes -= bytesOf(hit)
  }
  const t = itemTable(grid.nodes, x)
  if (bytesOf(t) <= TABLE_BUDGET_BYTES / 4) {
    tables.set(key, t)
    tableBytes += bytesOf(t)
    for (const [k, v] of tables) {
      if (tableBytes <= TABLE_BUDGET_BYTES) break
      tables.delete(k)
      tableBytes -= bytesOf(v)
    }
  }
  return t
}

let scratchTheta = new Float64Array(0)
let scratchSe = new Float64Array(0)

/** Scores a parsed batch; returns the response body as JSON text (built directly: 1000 small objects are not worth JSON.stringify's walk). */
export function scoreBatch(batch: ScoreBatch): string {
  const t = tableFor(batch.items)
  let theta: Float64Array
  let se: Float64Array
  if (batch.method === 'eap') {
    // Read back into the response below before anything else runs: scratch is enough.
    if (scratchTheta.length < batch.nPersons) {
      scratchTheta = new Float64Array(batch.nPersons)
      scratchSe = new Float64Array(batch.nPersons)
    }
    theta = scratchTheta
    se = scratchSe
    eapBatch(t, grid.nodes, logPrior, batch.csr, theta, se)
  } else ({ theta, se } = scoreArrays(batch.items, batch.csr, { method: batch.method, logT: t.logT }))
  const num = (v: number) => (Number.isFinite(v) ? String(v) : 'null')
  let out = '{"status":"ok","abilities":['
  for (let i = 0; i < batch.nPersons; i++) out += `${i ? ',' : ''}{"theta":${num(theta[i]!)},"se":${num(se[i]!)}}`
  return out + ']}'
}
