import { usageError } from '../errors/index.js'
import { redact } from '../errors/translate.js'

/**
 * LOG_FORMAT=json: one JSON object per line on stderr, for log collectors in the cluster
 * (`kubectl logs`, Loki, Cloud Logging): {"time","level","message", bindings (stage, runId), fields}.
 *
 * Built here rather than with pino: seedops writes a few lines per run, so pino's speed buys
 * nothing; its redaction is by key path, while seedops must mask secret *values* wherever they
 * appear (a password inside a driver's error message), which redact() does; and plain
 * process.stderr writes are synchronous on Linux for pipes and files (pino's default destination
 * is asynchronous), so the last lines before process.exit (SIGTERM past the grace period) are not lost.
 */

export type LogLevel = 'debug' | 'info' | 'warn' | 'error'
export type LogFields = Record<string, unknown>
export type LogFormat = 'text' | 'json'

/** LOG_FORMAT: text (the default, for terminals) or json. Anything else is a usage error, not a silent fallback. */
export function logFormat(env: NodeJS.ProcessEnv = process.env): LogFormat {
  const v = (env.LOG_FORMAT ?? '').trim().toLowerCase()
  if (v === '' || v === 'text') return 'text'
  if (v === 'json') return 'json'
  throw usageError(`LOG_FORMAT=${JSON.stringify(env.LOG_FORMAT)} is not a log format`, ['Set LOG_FORMAT=json for one JSON object per line, or unset it for the terminal format'])
}

/** Field names whose values are secrets whatever they hold. */
const SECRET_KEY = /pass(word)?|secret|token|authorization|api[-_]?key|credential/i

/** Redacts every string in a value (deeply); Errors become their redacted message. */
export function redactValue(v: unknown, depth = 0): unknown {
  if (typeof v === 'string') return redact(v)
  if (v instanceof Error) return redact(v.message)
  if (v instanceof Date) return v.toISOString()
  if (typeof v === 'bigint') return v.toString()
  if (v === null || typeof v !== 'object') return v
  if (depth > 8) return '[…]'
  if (Array.isArray(v)) return v.map((x) => redactValue(x, depth + 1))
  const out: Record<string, unknown> = {}
  for (const [k, x] of Object.entries(v)) out[k] = SECRET_KEY.test(k) && x !== null && x !== undefined ? '[REDACTED]' : redactValue(x, depth + 1)
  return out
}

/** One log line (without the newline). Reserved keys (time, level, message) win over bindings and fields. */
export function jsonLine(level: LogLevel, message: string, bindings: LogFields, fields: LogFields | undefined, now: Date = new Date()): string {
  const extra = redactValue({ ...bindings, ...fields }) as LogFields
  delete extra.time
  delete extra.level
  delete extra.message
  return JSON.stringify({ time: now.toISOString(), level, message: redact(message), ...extra })
}
