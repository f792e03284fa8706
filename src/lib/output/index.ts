import { Chalk } from 'chalk'
import Table from 'cli-table3'
import { redact } from '../errors/translate.js'

/** Colour only on a TTY and without NO_COLOR (clig.dev). */
export function colorEnabled(stream: NodeJS.WriteStream = process.stderr): boolean {
  if (process.env.NO_COLOR !== undefined && process.env.NO_COLOR !== '') return false
  if (process.env.FORCE_COLOR === '0') return false
  return Boolean(stream.isTTY)
}

export const color = new Chalk({ level: colorEnabled(process.stdout) ? 1 : 0 })
export const errColor = new Chalk({ level: colorEnabled(process.stderr) ? 1 : 0 })

export interface Logger {
  info(msg: string): void
  warn(msg: string): void
  debug(msg: string): void
  progress(msg: string): void
}

/** Logs go to stderr, always redacted. `quiet` silences info/progress (not warnings). */
export function createLogger(opts: { quiet?: boolean; verbose?: boolean; onWarn?: (m: string) => void } = {}): Logger {
  const write = (s: string) => process.stderr.write(redact(s) + '\n')
  return {
    info: (m) => { if (!opts.quiet) write(m) },
    progress: (m) => { if (!opts.quiet) write(errColor.dim(m)) },
    debug: (m) => { if (opts.verbose || process.env.SEEDOPS_DEBUG) write(errColor.gray(`debug: ${m}`)) },
    warn: (m) => { opts.onWarn?.(m); write(errColor.yellow(`Warning: ${m}`)) },
  }
}

export const silentLogger: Logger = { info() {}, warn() {}, debug() {}, progress() {} }

export type Cell = string | number | boolean | null | undefined

export function formatCell(v: Cell | unknown): string {
  if (v === null || v === undefined) return '—'
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) return String(v)
    return Number.isInteger(v) ? String(v) : v.toFixed(3)
  }
  if (v instanceof Date) return v.toISOString()
  if (typeof v === 'object') return JSON.stringify(v)
  return String(v)
}

/** Renders rows as a table (plain borders off a TTY so logs stay greppable). */
export function renderTable(head: string[], rows: Cell[][] | unknown[][]): string {
  const tty = colorEnabled(process.stdout)
  const t = new Table({
    head: head.map((h) => (tty ? color.bold(h) : h)),
    style: { head: [], border: [] },
    ...(tty ? {} : { chars: { top: '', 'top-mid': '', 'top-left': '', 'top-right': '', bottom: '', 'bottom-mid': '', 'bottom-left': '', 'bottom-right': '', left: '', 'left-mid': '', mid: '', 'mid-mid': '', right: '', 'right-mid': '', middle: '  ' } }),
  })
  for (const r of rows) t.push(r.map((c) => formatCell(c)))
  return t.toString()
}
