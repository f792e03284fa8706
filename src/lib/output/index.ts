import { Chalk } from 'chalk'
import Table from 'cli-table3'
import { redact } from '../errors/translate.js'
import { jsonLine, logFormat, type LogFields, type LogFormat, type LogLevel } from './json-log.js'

/** Colour only on a TTY and without NO_COLOR (clig.dev). */
export function colorEnabled(stream: NodeJS.WriteStream = process.stderr): boolean {
  if (process.env.NO_COLOR !== undefined && process.env.NO_COLOR !== '') return false
  if (process.env.FORCE_COLOR === '0') return false
  return Boolean(stream.isTTY)
}

export const color = new Chalk({ level: colorEnabled(process.stdout) ? 1 : 0 })
export const errColor = new Chalk({ level: colorEnabled(process.stderr) ? 1 : 0 })

export type { LogFields, LogFormat, LogLevel } from './json-log.js'
export { logFormat } from './json-log.js'

export interface Logger {
  info(msg: string, fields?: LogFields): void
  warn(msg: string, fields?: LogFields): void
  debug(msg: string, fields?: LogFields): void
  progress(msg: string, fields?: LogFields): void
  /** An error the command ends with (JSON format only; the terminal format prints it itself). */
  error?(msg: string, fields?: LogFields): void
  /** A record for machines (e.g. a run's outcome and counts): a JSON line; silent in the terminal, where the command's summary says the same. */
  event?(msg: string, fields?: LogFields): void
  /** A logger whose JSON lines all carry these fields (stage, runId). The terminal format ignores them. */
  child?(bindings: LogFields): Logger
  readonly format?: LogFormat
}

/** `logger.child(bindings)` where the logger has bindings (a hand-written logger may not). */
export function withBindings(logger: Logger, bindings: LogFields): Logger {
  return logger.child ? logger.child(bindings) : logger
}

export interface LoggerOptions {
  quiet?: boolean
  verbose?: boolean
  onWarn?: (m: string) => void
  /** Default: LOG_FORMAT from the environment (text unless it says json). */
  format?: LogFormat
}

/** Logs go to stderr, always redacted. `quiet` silences info/progress (not warnings). */
export function createLogger(opts: LoggerOptions = {}): Logger {
  const format = opts.format ?? logFormat()
  if (format === 'json') return createJsonLogger(opts, {})
  const write = (s: string) => process.stderr.write(redact(s) + '\n')
  const logger: Logger = {
    format,
    info: (m) => { if (!opts.quiet) write(m) },
    progress: (m) => { if (!opts.quiet) write(errColor.dim(m)) },
    debug: (m) => { if (opts.verbose || process.env.SEEDOPS_DEBUG) write(errColor.gray(`debug: ${m}`)) },
    warn: (m) => { opts.onWarn?.(m); write(errColor.yellow(`Warning: ${m}`)) },
    event: () => {},
    child: () => logger,
  }
  return logger
}

/** LOG_FORMAT=json: one object per line, synchronous, every string redacted (see json-log.ts). */
function createJsonLogger(opts: LoggerOptions, bindings: LogFields): Logger {
  const write = (level: LogLevel, m: string, f?: LogFields) => process.stderr.write(jsonLine(level, m, bindings, f) + '\n')
  return {
    format: 'json',
    info: (m, f) => { if (!opts.quiet) write('info', m, f) },
    progress: (m, f) => { if (!opts.quiet) write('info', m, f) },
    debug: (m, f) => { if (opts.verbose || process.env.SEEDOPS_DEBUG) write('debug', m, f) },
    warn: (m, f) => { opts.onWarn?.(m); write('warn', m, f) },
    error: (m, f) => write('error', m, f),
    event: (m, f) => write('info', m, f),
    child: (b) => createJsonLogger(opts, { ...bindings, ...b }),
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
