import { closeSync, openSync, readSync, statSync } from 'node:fs'
import { SeedopsError } from '../errors/index.js'
import { parseBinary, ResponseMatrixBuilder, type BuildOptions, type BuildReport, type RejectReason, type ResponseMatrix } from './data.js'

/**
 * Streaming CSV for long-format responses: the file is read in chunks into one Buffer and parsed
 * as bytes, so a 3 M-row file never becomes one string, nor a string per row. Same dialect as
 * io.ts's parseCsv (RFC 4180 subset): comma separated, double quotes anywhere in a field ("" is a
 * quote, newlines allowed inside), LF, CRLF or lone CR ends a record, a leading UTF-8 BOM is
 * skipped, empty records are skipped, the first record is the header.
 */

const COMMA = 44
const LF = 10
const CR = 13
const QUOTE = 34
/** 1 MiB: big enough that the read syscalls cost nothing, small enough to stay in cache. */
export const DEFAULT_CHUNK_SIZE = 1 << 20

/**
 * The fields of the current record, as byte ranges: into the chunk buffer, or into a scratch
 * buffer for fields that had quotes (their unescaped bytes). Valid only inside the callback.
 */
export class CsvFields {
  count = 0
  chunk: Buffer
  scratch: Buffer
  starts = new Int32Array(16)
  ends = new Int32Array(16)
  inScratch = new Uint8Array(16)

  constructor(chunk: Buffer, scratch: Buffer) {
    this.chunk = chunk
    this.scratch = scratch
  }

  /** The buffer holding field k's bytes (k < count). */
  buf(k: number): Buffer {
    return this.inScratch[k] === 1 ? this.scratch : this.chunk
  }

  /** Field k decoded as UTF-8, undefined when the record has fewer fields. */
  text(k: number): string | undefined {
    if (k >= this.count) return undefined
    return this.buf(k).toString('utf8', this.starts[k], this.ends[k])
  }

  push(start: number, end: number, scratch: 0 | 1): void {
    const k = this.count
    if (k === this.starts.length) {
      const grow = <T extends Int32Array | Uint8Array>(a: T, b: T): T => (b.set(a), b)
      this.starts = grow(this.starts, new Int32Array(k * 2))
      this.ends = grow(this.ends, new Int32Array(k * 2))
      this.inScratch = grow(this.inScratch, new Uint8Array(k * 2))
    }
    this.starts[k] = start
    this.ends[k] = end
    this.inScratch[k] = scratch
    this.count = k + 1
  }
}

/** parseRecord's answer for a record whose quoted field is still open at the end of the file. */
const UNTERMINATED = -2

function unterminated(path: string, where: string): SeedopsError {
  return new SeedopsError(`${path}: a quoted field opened ${where} never closes (no closing " before the end of the file)`, {
    code: 'IRT_BAD_CSV',
    suggestions: ['Close the quote, or remove it: ids and values need no quotes unless they contain a comma'],
  })
}

/**
 * Parses one record starting at `pos`. Returns the position after its terminator, or -1 when the
 * record is not complete in buf[0, len) and more input may follow (the caller reads more and
 * parses the record again from its start), or UNTERMINATED. `lines` receives the newlines inside quotes.
 */
function parseRecord(buf: Buffer, pos: number, len: number, eof: boolean, f: CsvFields, lines: Int32Array): number {
  const scratch = f.scratch
  f.count = 0
  let sl = 0
  let nl = 0
  let p = pos
  for (;;) {
    const fs = p
    let c = 0
    while (p < len) {
      c = buf[p]
      if (c === COMMA || c === LF || c === CR || c === QUOTE) break
      p++
    }
    if (p < len && c === QUOTE) {
      // A quote: unescape this field into scratch (scratch is at least as long as buf, and a
      // field's unescaped bytes are never more than its raw bytes).
      const ss = sl
      buf.copy(scratch, sl, fs, p)
      sl += p - fs
      let inQ = true
      p++
      for (;;) {
        if (p >= len) {
          if (!eof) return -1
          // A quote still open at the end of the file would swallow every line after it into one field.
          if (inQ) return UNTERMINATED
          break
        }
        c = buf[p]
        if (inQ) {
          if (c === QUOTE) {
            if (p + 1 >= len && !eof) return -1
            if (p + 1 < len && buf[p + 1] === QUOTE) {
              scratch[sl++] = QUOTE
              p += 2
            } else {
              inQ = false
              p++
            }
          } else {
            if (c === LF) nl++
            scratch[sl++] = c
            p++
          }
        } else if (c === QUOTE) {
          inQ = true
          p++
        } else if (c === COMMA || c === LF || c === CR) break
        else {
          scratch[sl++] = c
          p++
        }
      }
      f.push(ss, sl, 1)
    } else f.push(fs, p, 0)
    if (p >= len) {
      if (!eof) return -1
      lines[0] = nl
      return len
    }
    c = buf[p]
    if (c === COMMA) {
      p++
      continue
    }
    if (c === CR) {
      if (p + 1 >= len && !eof) return -1
      if (p + 1 < len && buf[p + 1] === LF) p++
    }
    lines[0] = nl
    return p + 1
  }
}

function openForRead(path: string, what: string): number {
  try {
    return openSync(path, 'r')
  } catch (e) {
    throw readError(e, path, what)
  }
}

function readError(e: unknown, path: string, what: string): SeedopsError {
  const code = (e as NodeJS.ErrnoException).code
  return new SeedopsError(`cannot read ${what} ${path}: ${code === 'ENOENT' ? 'no such file' : (e as Error).message}`, {
    code: code === 'ENOENT' ? 'FILE_NOT_FOUND' : 'FILE_READ',
    suggestions: [`Check the path given to the ${what} flag`],
  })
}

/**
 * Reads the file `chunkSize` bytes at a time into one Buffer (skipping a UTF-8 BOM) and hands
 * buf[pos, len) to `consume`, which returns how far it got: the start of a record that is not
 * complete yet. The rest is moved to the front and more is read; a record longer than the buffer
 * doubles it. At end of file (`eof`) consume must take everything.
 */
function readChunks(path: string, what: string, chunkSize: number, consume: (buf: Buffer, pos: number, len: number, eof: boolean) => number): void {
  const fd = openForRead(path, what)
  try {
    let buf = Buffer.allocUnsafe(Math.max(4, chunkSize))
    let len = 0
    let pos = 0
    let eof = false
    let bomChecked = false
    for (;;) {
      if (pos > 0) {
        buf.copy(buf, 0, pos, len)
        len -= pos
        pos = 0
      }
      if (len === buf.length) {
        const bigger = Buffer.allocUnsafe(buf.length * 2)
        buf.copy(bigger, 0, 0, len)
        buf = bigger
      }
      let n: number
      try {
        n = readSync(fd, buf, len, buf.length - len, null)
      } catch (e) {
        throw readError(e, path, what)
      }
      if (n === 0) eof = true
      len += n
      if (!bomChecked) {
        if (len < 3 && !eof) continue
        if (len >= 3 && buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf) pos = 3
        bomChecked = true
      }
      pos = consume(buf, pos, len, eof)
      if (eof) return
    }
  } finally {
    closeSync(fd)
  }
}

/** Points `f` at the current buffer, with a scratch buffer at least as long. */
function attach(f: CsvFields, buf: Buffer): void {
  f.chunk = buf
  if (f.scratch.length < buf.length) f.scratch = Buffer.allocUnsafe(buf.length)
}

/** A record of one empty field is an empty line (or `""`): skipped, as parseCsv does. */
function isEmptyRecord(f: CsvFields): boolean {
  return f.count === 1 && f.ends[0] === f.starts[0]
}

/**
 * Calls `onRecord` for every non-empty record of the file (header included) with its fields and
 * the line it starts on. Any record is handed over whole, however it falls across reads.
 */
export function scanCsvFile(path: string, onRecord: (f: CsvFields, line: number) => void, opts: { chunkSize?: number; what?: string } = {}): void {
  const f = new CsvFields(Buffer.alloc(0), Buffer.alloc(0))
  const lines = new Int32Array(1)
  let line = 1
  readChunks(path, opts.what ?? 'file', opts.chunkSize ?? DEFAULT_CHUNK_SIZE, (buf, pos, len, eof) => {
    attach(f, buf)
    while (pos < len) {
      const end = parseRecord(buf, pos, len, eof, f, lines)
      if (end === UNTERMINATED) throw unterminated(path, `on line ${line}`)
      if (end < 0) break
      if (!isEmptyRecord(f)) onRecord(f, line)
      line += 1 + lines[0]
      pos = end
    }
    return pos
  })
}

const FNV_OFFSET = 0x811c9dc5 | 0
const FNV_PRIME = 0x01000193

/**
 * Open-addressing hash table from an id's raw bytes to an entry holding the decoded, trimmed id
 * and its index in the builder. A row whose id was seen before costs a hash and a byte compare,
 * no string; the bytes are decoded once per distinct id.
 */
class ByteInterner {
  /** Open addressing, two ints a slot: entry + 1 (0 = empty) and the hash, so a miss costs one cache line. */
  private table = new Int32Array(2 << 12)
  private mask = (1 << 12) - 1
  /** Four ints an entry: hash, start in pool, length, builder index (-1 until the id is in an accepted row, -2 for a blank id). */
  meta = new Int32Array(4 << 11)
  private pool = Buffer.allocUnsafe(1 << 14)
  private poolLen = 0
  /** The entry found last: rows of one learner usually come together, so this is the common hit. */
  private last = -1
  size = 0
  /** Decoded and trimmed id per entry ('' for a blank id). */
  readonly strs: string[] = []
  /**
   * 1 when the entry's bytes are all printable ASCII without blanks: such ids decode one-to-one,
   * so two of them never give the same string and need no check against each other.
   */
  plain = new Uint8Array(1 << 11)

  constructor() {
    // Stored a second time on purpose: V8 treats a field written once as a constant baked into
    // optimised code, and the table's first growth would then deoptimise the scanning loop.
    this.table = new Int32Array(2 << 12)
    this.meta = new Int32Array(4 << 11)
    this.plain = new Uint8Array(1 << 11)
    this.pool = Buffer.allocUnsafe(1 << 14)
    this.mask = (1 << 12) - 1
  }

  lookup(src: Buffer, s: number, e: number): number {
    let h = FNV_OFFSET
    for (let p = s; p < e; p++) h = Math.imul(h ^ src[p], FNV_PRIME)
    return this.lookupHashed(src, s, e, h)
  }

  /** lookup() with the FNV-1a hash of src[s, e) already computed (by the scanning loop). */
  lookupHashed(src: Buffer, s: number, e: number, h: number): number {
    const len = e - s
    const meta = this.meta
    const pool = this.pool
    const last = this.last
    if (last >= 0 && meta[4 * last] === h && meta[4 * last + 2] === len) {
      const o = meta[4 * last + 1]
      let q = 0
      while (q < len && pool[o + q] === src[s + q]) q++
      if (q === len) return last
    }
    const table = this.table
    const mask = this.mask
    // Linear probing; the step runs before every probe so the optimised code has seen it before
    // the first collision (otherwise the first collision deoptimises the scanning loop).
    let slot = (h - 1) & mask
    for (;;) {
      slot = (slot + 1) & mask
      const t = table[2 * slot]
      if (t === 0) break
      if (table[2 * slot + 1] === h) {
        const k = t - 1
        if (meta[4 * k + 2] === len) {
          const o = meta[4 * k + 1]
          let q = 0
          while (q < len && pool[o + q] === src[s + q]) q++
          if (q === len) return (this.last = k)
        }
      }
    }
    return (this.last = this.insert(src, s, e, h, slot))
  }

  private insert(src: Buffer, s: number, e: number, h: number, slot: number): number {
    const k = this.size
    const len = e - s
    if (4 * k === this.meta.length) {
      const meta = new Int32Array(this.meta.length * 2)
      meta.set(this.meta)
      this.meta = meta
      const plain = new Uint8Array(k * 2)
      plain.set(this.plain)
      this.plain = plain
    }
    if (this.poolLen + len > this.pool.length) {
      const bigger = Buffer.allocUnsafe(Math.max(this.pool.length * 2, this.poolLen + len))
      this.pool.copy(bigger, 0, 0, this.poolLen)
      this.pool = bigger
    }
    src.copy(this.pool, this.poolLen, s, e)
    const meta = this.meta
    meta[4 * k] = h
    meta[4 * k + 1] = this.poolLen
    meta[4 * k + 2] = len
    let plain = 1
    for (let p = s; p < e; p++) if (src[p] <= 32 || src[p] >= 127) plain = 0
    this.plain[k] = plain
    const str = src.toString('utf8', s, e).trim()
    meta[4 * k + 3] = str === '' ? -2 : -1
    this.poolLen += len
    this.strs.push(str)
    this.table[2 * slot] = k + 1
    this.table[2 * slot + 1] = h
    this.size = k + 1
    if (this.size * 2 > this.mask + 1) this.rehash()
    return k
  }

  private rehash(): void {
    const size = (this.mask + 1) * 2
    const mask = size - 1
    const table = new Int32Array(2 * size)
    for (let k = 0; k < this.size; k++) {
      const h = this.meta[4 * k]
      let slot = h & mask
      while (table[2 * slot] !== 0) slot = (slot + 1) & mask
      table[2 * slot] = k + 1
      table[2 * slot + 1] = h
    }
    this.table = table
    this.mask = mask
  }
}

function columnIndex(header: string[], path: string, required: string[]): number[] {
  return required.map((r) => {
    const k = header.indexOf(r)
    if (k < 0) {
      throw new SeedopsError(`${path}: missing column "${r}" (header is: ${header.join(',') || 'empty'})`, {
        code: 'IRT_BAD_CSV',
        suggestions: [`The file needs a header line with ${required.join(',')}`],
      })
    }
    return k
  })
}

export interface ReadResponsesOptions extends BuildOptions {
  /** Bytes read at a time (default 1 MiB); tests use a few bytes to cross chunk boundaries. */
  chunkSize?: number
}

/**
 * Streams long-format responses `user_id,item_id,is_correct` (columns in any order, others
 * ignored) into a ResponseMatrixBuilder. `row` numbers non-empty data records from 1 (header not
 * counted), as the whole-file reader did.
 *
 * The hot loop scans a record's bytes once, hashing every field as it goes, and resolves the ids
 * through byte interners: a row costs no string and no object. Values "0"/"1" take a byte fast
 * path; anything else goes through parseBinary, so acceptance is exactly buildResponseMatrix's.
 * A record with a quote in it is handed to the general record parser (parseRecord).
 */
class ResponsesReader {
  private cu = -1
  private ci = -1
  private cv = -1
  private row = 0
  private readonly users = new ByteInterner()
  private readonly items = new ByteInterner()
  private readonly f = new CsvFields(Buffer.alloc(0), Buffer.alloc(0))
  private readonly lines = new Int32Array(1)
  private reserved = false
  private usersPlain = true
  private itemsPlain = true

  constructor(
    private readonly path: string,
    private readonly builder: ResponseMatrixBuilder,
    private readonly fileSize: number,
  ) {}

  get hasHeader(): boolean {
    return this.cu >= 0
  }

  consume(buf: Buffer, pos: number, len: number, eof: boolean): number {
    attach(this.f, buf)
    while (pos < len) {
      if (this.cu >= 0) {
        if (!this.reserved) this.reserve(buf, pos, len)
        this.quoteAt = -1
        pos = this.fast(buf, pos, len, eof)
        // fast() stops at an incomplete record (read more), the end, or a record with a quote.
        if (this.quoteAt < 0) return pos
      }
      // The header, or a record with a quote: the general parser.
      const end = parseRecord(buf, pos, len, eof, this.f, this.lines)
      if (end === UNTERMINATED) throw unterminated(this.path, this.cu < 0 ? 'in the header' : `in row ${this.row + 1}`)
      if (end < 0) return pos
      if (!isEmptyRecord(this.f)) {
        if (this.cu < 0) this.header()
        else this.record()
      }
      pos = end
    }
    return pos
  }

  /** Set by fast() when it stops before a record that has a quote; -1 otherwise. */
  private quoteAt = -1

  /** Sizes the builder's arrays from the file size and the first chunk's bytes per row (saves the doublings). */
  private reserve(buf: Buffer, pos: number, len: number): void {
    this.reserved = true
    let nl = 0
    for (let p = pos; p < len; p++) if (buf[p] === LF) nl++
    if (nl >= 16) this.builder.reserve(Math.ceil(((this.fileSize / (len - pos)) * nl) * 1.05) + 16)
  }

  private header(): void {
    const header: string[] = []
    for (let k = 0; k < this.f.count; k++) header.push(this.f.text(k)!.trim())
    const [cu, ci, cv] = columnIndex(header, this.path, ['user_id', 'item_id', 'is_correct'])
    this.cu = cu
    this.ci = ci
    this.cv = cv
  }

  /** One record from the general parser (fields in this.f). */
  private record(): void {
    const f = this.f
    const n = f.count
    const { cu, ci, cv } = this
    const ue = cu < n ? this.users.lookup(f.buf(cu), f.starts[cu], f.ends[cu]) : -1
    const ie = ci < n ? this.items.lookup(f.buf(ci), f.starts[ci], f.ends[ci]) : -1
    const vb = cv < n ? f.buf(cv) : f.chunk
    this.accept(ue, ie, vb, cv < n ? f.starts[cv] : -1, cv < n ? f.ends[cv] : -1)
  }

  /**
   * Decides one row: ue/ie interner entries (-1 when the column is missing), value bytes
   * vb[vs, ve) (vs -1 when missing). The common row — ids already in the builder, value "0" or
   * "1" — touches only the two entries' metadata.
   */
  private accept(ue: number, ie: number, vb: Buffer, vs: number, ve: number): void {
    const row = ++this.row
    const c = vs >= 0 && ve - vs === 1 ? vb[vs] : 0
    const pi = ue < 0 ? -2 : this.users.meta[4 * ue + 3]
    const ii = ie < 0 ? -2 : this.items.meta[4 * ie + 3]
    if ((c === 48 || c === 49) && pi >= 0 && ii >= 0) this.builder.addIndexed(pi, ii, (c - 48) as 0 | 1, row)
    else this.acceptSlow(row, ue, ie, vb, vs, ve)
  }

  private acceptSlow(row: number, ue: number, ie: number, vb: Buffer, vs: number, ve: number): void {
    const b = this.builder
    let value: string | undefined
    let y: 0 | 1 | RejectReason
    const c = vs >= 0 && ve - vs === 1 ? vb[vs] : 0
    if (c === 48 || c === 49) {
      // A learner's or item's first row: the value is plain, only the id is new to the builder.
      value = c === 48 ? '0' : '1'
      y = (c - 48) as 0 | 1
    } else if (vs < 0) {
      value = ''
      y = 'empty_value'
    } else {
      value = vb.toString('utf8', vs, ve)
      y = parseBinary(value)
    }
    const users = this.users
    const items = this.items
    const u = ue < 0 ? '' : users.strs[ue]
    const i = ie < 0 ? '' : items.strs[ie]
    if (u === '') y = 'missing_user_id'
    else if (i === '') y = 'missing_item_id'
    if (typeof y === 'string') {
      b.reject(row, u, i, value, y)
      return
    }
    // While every id so far was plain, distinct entries are distinct ids: append without a lookup.
    let pi = users.meta[4 * ue + 3]
    if (pi < 0) {
      if (this.usersPlain && users.plain[ue] === 1) pi = b.appendPerson(u)
      else {
        this.usersPlain = false
        pi = b.internPerson(u)
      }
      users.meta[4 * ue + 3] = pi
    }
    let ii = items.meta[4 * ie + 3]
    if (ii < 0) {
      if (this.itemsPlain && items.plain[ie] === 1) ii = b.appendItem(i)
      else {
        this.itemsPlain = false
        ii = b.internItem(i)
      }
      items.meta[4 * ie + 3] = ii
    }
    b.addIndexed(pi, ii, y, row)
  }

  /**
   * The hot loop: complete quote-free records from pos on. Returns the start of the first record
   * it did not take (incomplete, or with a quote: then quoteAt is set).
   */
  private fast(buf: Buffer, pos: number, len: number, eof: boolean): number {
    const { cu, ci, cv } = this
    let p = pos
    for (;;) {
      if (p >= len) return p
      const rs = p
      let k = 0
      let us = -1
      let ue = -1
      let uh = 0
      let is = -1
      let ie = -1
      let ih = 0
      let vs = -1
      let ve = -1
      let f0 = -1
      for (;;) {
        const fs = p
        let h = FNV_OFFSET
        let c = 0
        while (p < len) {
          c = buf[p]
          // Every byte that ends or quotes a field is ≤ 44 (',' 44, '"' 34, CR 13, LF 10).
          if (c <= COMMA && (c === COMMA || c === LF || c === CR || c === QUOTE)) break
          h = Math.imul(h ^ c, FNV_PRIME)
          p++
        }
        if (p < len && c === QUOTE) {
          this.quoteAt = rs
          return rs
        }
        if (k === 0) f0 = p - fs
        if (k === cu) {
          us = fs
          ue = p
          uh = h
        } else if (k === ci) {
          is = fs
          ie = p
          ih = h
        } else if (k === cv) {
          vs = fs
          ve = p
        }
        k++
        if (p >= len) {
          if (!eof) return rs
          break
        }
        if (c === COMMA) {
          p++
          continue
        }
        if (c === CR) {
          if (p + 1 >= len && !eof) return rs
          if (p + 1 < len && buf[p + 1] === LF) p++
        }
        p++
        break
      }
      if (k === 1 && f0 === 0) continue
      this.accept(us < 0 ? -1 : this.users.lookupHashed(buf, us, ue, uh), is < 0 ? -1 : this.items.lookupHashed(buf, is, ie, ih), buf, vs, ve)
    }
  }
}

export function streamResponsesCsv(path: string, builder: ResponseMatrixBuilder, opts: { chunkSize?: number } = {}): void {
  let size = 0
  try {
    size = statSync(path).size
  } catch {
    // openForRead below reports a missing or unreadable file.
  }
  const r = new ResponsesReader(path, builder, size)
  readChunks(path, 'responses file', opts.chunkSize ?? DEFAULT_CHUNK_SIZE, (buf, pos, len, eof) => r.consume(buf, pos, len, eof))
  if (!r.hasHeader) columnIndex([], path, ['user_id', 'item_id', 'is_correct'])
}

/** Reads a long-format responses CSV into the sparse matrix and its rejection/duplicate report. */
export function readResponsesCsvStream(path: string, opts: ReadResponsesOptions = {}): { data: ResponseMatrix; report: BuildReport } {
  const builder = new ResponseMatrixBuilder(opts)
  streamResponsesCsv(path, builder, { chunkSize: opts.chunkSize })
  return builder.finish()
}
