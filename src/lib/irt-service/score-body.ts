import { SeedopsError } from '../errors/index.js'
import type { ScoreMethod } from '../irt/score.js'
import { parseScoreRequest, type ScoreBatch } from './score-request.js'

/**
 * POST /irt/score's body from its bytes straight into typed arrays, for the shape callers send:
 * {"item_params": [{"a": …, "b": …, "c"?: …, "item_id"?: …}, …], "responses": [[0, 1, null, …], …],
 * "method"?: "eap"|"map"|"ml"} with any JSON whitespace and key order. No JS object per item or
 * cell is made: JSON.parse of a 1000 × 40 body and the walk over it cost more than the EAP.
 *
 * It accepts only bodies it reads completely and that are valid; anything else (another key, an
 * escape in a string, a duplicate key, a cell that is not exactly 0, 1 or null, a row of the wrong
 * length, invalid JSON) goes to JSON.parse + parseScoreRequest, which answer or name the error, so
 * results and messages are those of the general path by construction (tested on both).
 */
export function parseScoreBody(body: Buffer): ScoreBatch {
  const fast = scanScoreBody(body)
  if (fast) return fast
  const text = body.toString('utf8')
  let parsed: unknown = {}
  if (text.trim()) {
    try {
      parsed = JSON.parse(text)
    } catch {
      throw new SeedopsError('request body is not valid JSON', { code: 'BAD_REQUEST' })
    }
  }
  return parseScoreRequest(parsed)
}

// Exact powers of ten: m / 10^k is correctly rounded (as JSON.parse rounds) when m < 2^53 and k ≤ 22.
const POW10 = Array.from({ length: 23 }, (_, k) => 10 ** k)
const METHODS = new Map<string, ScoreMethod>([
  ['eap', 'eap'],
  ['map', 'map'],
  ['ml', 'ml'],
])

// The scanner's helpers take and return the position (a local in each, not a shared closure
// variable), and hand a value back through these.
let numValue = 0
let keyCode = 0

const isWs = (ch: number | undefined) => ch === 32 || ch === 10 || ch === 13 || ch === 9
function ws(b: Buffer, i: number): number {
  while (isWs(b[i])) i++
  return i
}

const KEYS = ['a', 'b', 'c', 'item_id', 'item_params', 'responses', 'method'].map((k) => Buffer.from(`"${k}"`))
/** A quoted key: keyCode = 1 + its index in KEYS, or 0 for any other key (or none); returns the position after it. */
function key(b: Buffer, i: number): number {
  keyCode = 0
  if (b[i] !== 34) return i
  for (let k = 0; k < KEYS.length; k++) {
    const w = KEYS[k]!
    let m = 1
    while (m < w.length && b[i + m] === w[m]) m++
    if (m === w.length) {
      keyCode = k + 1
      return i + m
    }
  }
  return i
}

/** A string without escapes; returns the position after it, or -1. */
function skipString(b: Buffer, i: number): number {
  if (b[i] !== 34) return -1
  for (i++; i < b.length; i++) {
    const ch = b[i]!
    if (ch === 34) return i + 1
    if (ch === 92 || ch < 32) return -1
  }
  return -1
}

/** A JSON number into numValue; returns the position after it, or -1 if the token is not one. */
function num(b: Buffer, i: number): number {
  const s = i
  const neg = b[i] === 45
  if (neg) i++
  let m = 0
  let digits = 0
  let scale = 0
  let ch = b[i]
  if (ch === 48) {
    ch = b[++i]
    if (ch !== undefined && ch >= 48 && ch <= 57) return -1
  } else if (ch !== undefined && ch >= 49 && ch <= 57) {
    do {
      m = m * 10 + (ch - 48)
      digits++
      ch = b[++i]
    } while (ch !== undefined && ch >= 48 && ch <= 57)
  } else return -1
  if (ch === 46) {
    ch = b[++i]
    if (ch === undefined || ch < 48 || ch > 57) return -1
    do {
      m = m * 10 + (ch - 48)
      digits++
      scale++
      ch = b[++i]
    } while (ch !== undefined && ch >= 48 && ch <= 57)
  }
  let exact = digits <= 15 && scale <= 22
  if (ch === 101 || ch === 69) {
    exact = false
    ch = b[++i]
    if (ch === 43 || ch === 45) ch = b[++i]
    if (ch === undefined || ch < 48 || ch > 57) return -1
    do ch = b[++i]
    while (ch !== undefined && ch >= 48 && ch <= 57)
  }
  if (!exact) numValue = Number(b.toString('latin1', s, i))
  else {
    const v = scale ? m / POW10[scale]! : m
    numValue = neg ? -v : v
  }
  return i
}

/** The fast path alone (exported for its test); null means "use the general path". */
export function scanScoreBody(b: Buffer): ScoreBatch | null {
  const n = b.length
  let i = ws(b, 0)
  if (b[i++] !== 123) return null
  let a: number[] | null = null
  let bb: number[] = []
  let cc: number[] = []
  let method: ScoreMethod = 'eap'
  let seenMethod = false
  // Responses: presented cells in CSR order; each row's full length (nulls included) for the check against J.
  let rowPtr: number[] | null = null
  const rowLen: number[] = []
  let cellItem = new Int32Array(0)
  let cellResp = new Uint8Array(0)
  let nCells = 0
  i = ws(b, i)
  if (b[i] === 125) return null
  for (;;) {
    i = ws(b, key(b, ws(b, i)))
    const top = keyCode
    if (top < 5 || b[i++] !== 58) return null
    i = ws(b, i)
    if (top === 5) {
      // item_params
      if (a || b[i++] !== 91) return null
      a = []
      bb = []
      cc = []
      if (b[ws(b, i)] === 93) return null // empty: the general path says so
      for (;;) {
        i = ws(b, i)
        if (b[i++] !== 123) return null
        let ia = NaN
        let ib = NaN
        let ic: number | undefined
        let seen = 0
        for (;;) {
          i = ws(b, key(b, ws(b, i)))
          const k = keyCode
          if (k === 0 || k > 4 || b[i++] !== 58) return null
          const bit = 1 << k
          if (seen & bit) return null
          seen |= bit
          i = ws(b, i)
          if (k === 4) i = b[i] === 34 ? skipString(b, i) : num(b, i)
          else {
            i = num(b, i)
            if (k === 1) ia = numValue
            else if (k === 2) ib = numValue
            else ic = numValue
          }
          if (i < 0) return null
          i = ws(b, i)
          const ch = b[i++]
          if (ch === 125) break
          if (ch !== 44) return null
        }
        if (!(ia > 0 && Number.isFinite(ia) && Number.isFinite(ib)) || (ic !== undefined && !(ic >= 0 && ic <= 0.99))) return null
        a.push(ia)
        bb.push(ib)
        cc.push(ic ?? 0)
        i = ws(b, i)
        const ch = b[i++]
        if (ch === 93) break
        if (ch !== 44) return null
      }
    } else if (top === 6) {
      // responses
      if (rowPtr || b[i++] !== 91) return null
      rowPtr = []
      // Each presented cell takes at least two bytes ("0,"): n/2 bounds them; start smaller and grow.
      cellItem = new Int32Array(Math.min(n >> 1, 1 << 16))
      cellResp = new Uint8Array(cellItem.length)
      i = ws(b, i)
      if (b[i] === 93) i++
      else
        for (;;) {
          i = ws(b, i)
          if (b[i++] !== 91) return null
          rowPtr.push(nCells)
          let len = 0
          i = ws(b, i)
          if (b[i] === 93) i++
          else
            for (;;) {
              let ch = b[i]
              while (ch === 32 || ch === 10 || ch === 13 || ch === 9) ch = b[++i]
              if (ch === 48 || ch === 49) {
                const next = b[i + 1]
                // Exactly 0 or 1: "1.0", "0e0", "01" are for the general path.
                if (next !== undefined && ((next >= 48 && next <= 57) || next === 46 || next === 101 || next === 69)) return null
                if (nCells === cellItem.length) {
                  const grownItem = new Int32Array(Math.min(n >> 1, nCells * 2))
                  const grownResp = new Uint8Array(grownItem.length)
                  grownItem.set(cellItem)
                  grownResp.set(cellResp)
                  cellItem = grownItem
                  cellResp = grownResp
                }
                cellItem[nCells] = len
                cellResp[nCells++] = ch - 48
                i++
              } else if (ch === 110 && b[i + 1] === 117 && b[i + 2] === 108 && b[i + 3] === 108) i += 4
              else return null
              len++
              ch = b[i++]
              while (ch === 32 || ch === 10 || ch === 13 || ch === 9) ch = b[i++]
              if (ch === 93) break
              if (ch !== 44) return null
            }
          rowLen.push(len)
          i = ws(b, i)
          const ch = b[i++]
          if (ch === 93) break
          if (ch !== 44) return null
        }
    } else {
      // method
      const end = skipString(b, i)
      const known = end < 0 ? undefined : METHODS.get(b.toString('latin1', i + 1, end - 1))
      if (seenMethod || !known) return null
      method = known
      seenMethod = true
      i = end
    }
    i = ws(b, i)
    const ch = b[i++]
    if (ch === 125) break
    if (ch !== 44) return null
  }
  if (ws(b, i) !== n || !a || !rowPtr) return null
  const J = a.length
  for (const len of rowLen) if (len !== J) return null
  const P = rowPtr.length
  const ptr = new Int32Array(P + 1)
  ptr.set(rowPtr)
  ptr[P] = nCells
  const fa = Float64Array.from(a)
  const fd = new Float64Array(J)
  for (let j = 0; j < J; j++) fd[j] = -fa[j]! * bb[j]!
  return {
    items: { a: fa, d: fd, c: Float64Array.from(cc) },
    csr: { rowPtr: ptr, items: cellItem.slice(0, nCells), resp: cellResp.slice(0, nCells) },
    method,
    nPersons: P,
    nItems: J,
  }
}
