import { z } from 'zod'
import { envFirst } from '../config/index.js'
import { EXIT, SeedopsError } from '../errors/index.js'
import type { Stage } from './types.js'

/**
 * A stage's options are one zod object. Each field names where a value may come from with
 * `.meta({ flag, env })`: the flag a command maps to it, and its environment twins (the first one
 * set wins, so a predecessor's name can follow ours). Precedence: flag > env > the field's
 * `.default()`. Env values (and string flag values such as `--target=-0.5`) are strings: they are
 * read as the field's type (number, boolean) before zod validates, so zod's range and enum checks
 * apply to every source alike, and a failure names the field and where its value came from.
 */
export interface OptionMeta {
  /** The flag, without dashes (`lookback-days`). */
  flag?: string
  /** Environment twins, first set wins (`['IRT_CALIB_LOOKBACK_DAYS', 'MIRT_LOOKBACK_DAYS']`). */
  env?: string[]
}

/** What a command hands in: the options it has flags for, as typed or as strings. */
export type GivenOptions<T extends z.ZodObject> = { [K in keyof z.input<T>]?: z.input<T>[K] | string | undefined }

type AnySchema = { def: { type: string; innerType?: AnySchema; in?: AnySchema }; meta(): unknown }

const WRAPPERS = new Set(['default', 'prefault', 'optional', 'nullable', 'readonly', 'catch', 'pipe'])

/** The schema that reads a field's raw value: through .default(), .optional(), .transform(). */
function leaf(s: AnySchema): AnySchema {
  let x = s
  while (WRAPPERS.has(x.def.type)) {
    const next = x.def.type === 'pipe' ? x.def.in : x.def.innerType
    if (!next) break
    x = next
  }
  return x
}

const leafType = (s: AnySchema): string => leaf(s).def.type

const NUMBER = /^[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i
const TRUE = new Set(['1', 'true', 'yes', 'on'])
const FALSE = new Set(['0', 'false', 'no', 'off'])

/** A string read as the field's type when it plainly is one; anything else is left for zod to reject. */
function coerce(value: unknown, type: string): unknown {
  if (typeof value !== 'string') return value
  const v = value.trim()
  if (type === 'number') return NUMBER.test(v) ? Number(v) : value
  if (type === 'boolean') return TRUE.has(v.toLowerCase()) ? true : FALSE.has(v.toLowerCase()) ? false : value
  if (type === 'array') return v.split(',').map((x) => x.trim()).filter(Boolean)
  return value
}

/** Where a field's value came from, as the error names it. */
export type OptionSource = { kind: 'flag'; name: string; value: unknown } | { kind: 'env'; name: string; value: string } | { kind: 'default' }

function describeSource(s: OptionSource): string {
  const shown = (v: unknown) => {
    const j = JSON.stringify(v) ?? String(v)
    return j.length > 60 ? `${j.slice(0, 57)}…` : j
  }
  if (s.kind === 'flag') return `flag --${s.name}=${shown(s.value)}`
  if (s.kind === 'env') return `env ${s.name}=${shown(s.value)}`
  return 'its default'
}

interface Issue {
  code: string
  path: PropertyKey[]
  message: string
  expected?: string
  minimum?: unknown
  maximum?: unknown
  inclusive?: boolean
  values?: unknown[]
}

/** Reads as the rest of a sentence after "<field> from <source>". */
function describeIssue(i: Issue, given: unknown, field: AnySchema | undefined): string {
  if (i.code === 'invalid_type') {
    if (given === undefined) return 'is required'
    if (i.expected === 'int') return 'is not an integer'
    if (i.expected === 'number') return field && (leaf(field) as { isInt?: boolean }).isInt ? 'is not an integer' : 'is not a number'
    if (i.expected === 'boolean') return 'is not a boolean (true/false)'
    return `is not a ${i.expected ?? 'valid value'}`
  }
  if (i.code === 'too_small') return `must be ${i.inclusive === false ? '>' : '≥'} ${String(i.minimum)}`
  if (i.code === 'too_big') return `must be ${i.inclusive === false ? '<' : '≤'} ${String(i.maximum)}`
  if (i.code === 'invalid_value' && i.values) return `must be one of ${i.values.map(String).join(', ')}`
  return `: ${i.message}`
}

export interface ResolvedOptions<T> {
  options: T
  /** Field → where its value came from. */
  sources: Record<string, OptionSource>
}

/**
 * Resolves one options object: each field from `given` (a flag), else its env twins, else its
 * default, then validated by the schema as a whole (cross-field refinements included). Any failure
 * is a usage error (exit 2) naming each bad field and its source, e.g.
 * `compute-kpis: lookbackDays from env KPI_LOOKBACK_DAYS="abc" is not an integer`.
 */
export function resolveOptions<T extends z.ZodObject>(schema: T, given: GivenOptions<T>, env: NodeJS.ProcessEnv, context: string): ResolvedOptions<z.output<T>> {
  const raw: Record<string, unknown> = {}
  const sources: Record<string, OptionSource> = {}
  const shape = schema.shape as Record<string, AnySchema>
  const flagOf: Record<string, string | undefined> = {}
  // A key the schema does not have is a command's typo, not a user's mistake.
  for (const k of Object.keys(given)) if (!(k in shape)) throw new Error(`${context}: no option ${k}`)
  for (const [key, field] of Object.entries(shape)) {
    const meta = (field.meta() ?? {}) as OptionMeta
    flagOf[key] = meta.flag
    const type = leafType(field)
    const g = (given as Record<string, unknown>)[key]
    if (g !== undefined) {
      raw[key] = coerce(g, type)
      sources[key] = { kind: 'flag', name: meta.flag ?? key, value: g }
      continue
    }
    const e = meta.env ? envFirst(meta.env, env) : undefined
    if (e) {
      raw[key] = coerce(e.value, type)
      sources[key] = { kind: 'env', name: e.name, value: e.value }
    } else sources[key] = { kind: 'default' }
  }
  const r = schema.safeParse(raw)
  if (r.success) return { options: r.data, sources }
  const issues = (r.error.issues as Issue[]).map((i) => {
    const field = String(i.path[0] ?? '')
    const source = sources[field]
    return { field, source, text: `${field || 'options'}${source ? ` from ${describeSource(source)}` : ''}${sep(describeIssue(i, raw[field], shape[field]))}` }
  })
  const suggestions = [...new Set(issues.map(({ field, source }) => {
    const flag = flagOf[field]
    if (source?.kind === 'env') return `Fix or unset ${source.name}${flag ? ` (the flag --${flag} overrides it)` : ''}`
    if (source?.kind === 'flag') return `See the allowed values: seedops ${context.includes(' ') ? context : `run ${context}`} --help`
    return `Set ${flag ? `--${flag}` : field}`
  }))]
  return usageThrow(`${context}: ${issues.map((x) => x.text).join('; ')}`, suggestions, issues.map(({ field, source }) => ({ field, source: source ? describeSource(source) : undefined })))
}

const sep = (d: string) => (d.startsWith(':') ? d : ` ${d}`)

function usageThrow(message: string, suggestions: string[], issues: unknown[]): never {
  throw new SeedopsError(message, { code: 'USAGE', exitCode: EXIT.USAGE, suggestions, data: { issues } })
}

/** A stage's params from what a command (or `run daily`, the demo: nothing) gives, the environment and the defaults. */
export function resolveStageParams<P>(stage: Stage<P, any>, given: Record<string, unknown>, env: NodeJS.ProcessEnv): P {
  const { options } = resolveOptions(stage.options, given, env, stage.id)
  return stage.toParams ? stage.toParams(options, env) : (options as P)
}

/** `60s`, `1m`, `500ms`, `2h`, or a bare number of seconds; `0` is 0 (for the timeouts: no limit). */
const DURATION = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h)?$/i
const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const
const duration = z
  .string()
  .regex(DURATION, 'is not a duration (e.g. 30s, 2m, 500ms; 0 for none)')
  .transform((s) => {
    const m = DURATION.exec(s.trim())!
    return Math.round(Number(m[1]) * UNIT_MS[(m[2]?.toLowerCase() ?? 's') as keyof typeof UNIT_MS])
  })

/** What the runner, not the stage, takes from a run's options: the same for every stage, settable per stage. */
export interface RunSettings {
  /** How long to wait for the stage lock while its holder is a run whose process is gone (its backend still finishing a statement). */
  lockWaitMs: number
  /** The session's statement_timeout / lock_timeout (ms, 0: none); undefined leaves the server's (or role's) setting. */
  statementTimeoutMs?: number
  lockTimeoutMs?: number
}

/**
 * The runner's options for one stage. Each has a stage's own env twin first (SEEDOPS_COMPUTE_KPIS_STATEMENT_TIMEOUT),
 * then the one for every stage (SEEDOPS_STATEMENT_TIMEOUT): one CronJob, or `run daily` with one
 * environment, can give each stage its own value.
 */
export function runSettingsOptions(stageId: string) {
  const own = stageId.toUpperCase().replace(/[^A-Z0-9]+/g, '_')
  const env = (name: string) => [`SEEDOPS_${own}_${name}`, `SEEDOPS_${name}`]
  return z.object({
    lockWait: duration.optional().meta({ flag: 'lock-wait', env: env('LOCK_WAIT') }),
    statementTimeout: duration.optional().meta({ flag: 'statement-timeout', env: env('STATEMENT_TIMEOUT') }),
    lockTimeout: duration.optional().meta({ flag: 'lock-timeout', env: env('LOCK_TIMEOUT') }),
  })
}

export const DEFAULT_LOCK_WAIT_MS = 60_000

/** The runner's options as a command gives them (flag values such as `30s`). */
export interface RunnerOptions {
  lockWait?: string
  statementTimeout?: string
  lockTimeout?: string
}

/** The given values (flags, as strings such as `30s`), else the env twins, else the defaults; a bad one is a usage error naming it. */
export function resolveRunSettings(stageId: string, given: RunnerOptions, env: NodeJS.ProcessEnv): RunSettings {
  const { options } = resolveOptions(runSettingsOptions(stageId), given, env, stageId)
  return { lockWaitMs: options.lockWait ?? DEFAULT_LOCK_WAIT_MS, statementTimeoutMs: options.statementTimeout, lockTimeoutMs: options.lockTimeout }
}
