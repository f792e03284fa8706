import { SeedopsError, EXIT } from './index.js'

/**
 * Secrets known to this process (passwords from URLs, tokens read from env or stdin).
 * Every message that leaves seedops goes through redact(), so a secret that leaks into an
 * error message from a driver or a server is masked before anyone sees it.
 */
const secrets = new Set<string>()

export function registerSecret(value: string | undefined | null): void {
  if (value && value.length >= 4) secrets.add(value)
}

const URL_PASSWORD = /(\b[a-z][a-z0-9+.-]*:\/\/[^:/?#@\s]*:)([^@\s/]+)(@)/gi

export function redact(text: string): string {
  let out = text.replace(URL_PASSWORD, '$1[REDACTED]$3')
  for (const s of secrets) {
    if (out.includes(s)) out = out.split(s).join('[REDACTED]')
    const enc = encodeURIComponent(s)
    if (enc !== s && out.includes(enc)) out = out.split(enc).join('[REDACTED]')
  }
  return out
}

interface PgLikeError {
  code?: string
  message?: string
  detail?: string
  hint?: string
  errno?: number
  syscall?: string
  address?: string
  port?: number
}

/** Maps Postgres SQLSTATE classes and socket errors to SeedopsError with next steps. */
function translatePg(e: PgLikeError): SeedopsError | undefined {
  const code = e.code ?? ''
  const msg = redact(e.message ?? String(e))
  if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'ETIMEDOUT' || code === 'EHOSTUNREACH') {
    return new SeedopsError(`database unreachable: ${msg}`, {
      code: 'DB_UNREACHABLE',
      suggestions: [
        'Check DATABASE_URL (host and port) or unset it to use the embedded database',
        'From the cluster: seedops doctor --only database',
      ],
      cause: e,
    })
  }
  // pg's own words when the URL asks for TLS (sslmode=require/verify-*/an unknown mode) and the server offers none.
  if (/server does not support SSL connections/i.test(msg)) {
    return new SeedopsError(`database connection: ${msg}`, {
      code: 'DB_TLS',
      suggestions: ['Check sslmode in DATABASE_URL (disable, prefer, require, verify-ca, verify-full): the server does not offer TLS', 'Or enable TLS on the server'],
      cause: e,
    })
  }
  if (code === '28P01' || code === '28000') {
    return new SeedopsError(`database rejected the credentials: ${msg}`, {
      code: 'DB_AUTH',
      suggestions: ['Check the user and password in DATABASE_URL (secret seedtest-db-credentials in the cluster)'],
      cause: e,
    })
  }
  if (code === '3D000') {
    return new SeedopsError(`database does not exist: ${msg}`, {
      code: 'DB_MISSING',
      suggestions: ['Create it, or point DATABASE_URL at an existing database'],
      cause: e,
    })
  }
  if (code === '42P01' || code === '42703') {
    return new SeedopsError(`database schema is missing something seedops needs: ${msg}`, {
      code: 'DB_SCHEMA',
      suggestions: ['Run: seedops db migrate', 'Then: seedops db status'],
      cause: e,
    })
  }
  if (/^[0-9A-Z]{5}$/.test(code)) {
    const extra = [e.detail, e.hint].filter(Boolean).map((s) => redact(String(s)))
    return new SeedopsError(`database error ${code}: ${msg}${extra.length ? ` (${extra.join('; ')})` : ''}`, {
      code: 'DB_ERROR',
      cause: e,
    })
  }
  return undefined
}

/**
 * A zod validation error that escaped (input validated where no options resolver named the
 * sources) is still the user's input: a usage error naming each field. Recognised by shape, so
 * this module does not load zod for every command.
 */
function translateZod(e: unknown): SeedopsError | undefined {
  const z = e as { name?: string; issues?: { path?: PropertyKey[]; message?: string }[] }
  if (!z || typeof z !== 'object' || z.name !== 'ZodError' || !Array.isArray(z.issues)) return undefined
  const parts = z.issues.map((i) => `${i.path?.length ? i.path.map(String).join('.') : 'input'}: ${i.message ?? 'invalid'}`)
  return new SeedopsError(redact(`invalid ${parts.join('; ')}`), {
    code: 'USAGE',
    exitCode: EXIT.USAGE,
    suggestions: ['Check the value of each field named above (flags, environment, or the input file)'],
    data: { issues: z.issues.map((i) => ({ field: i.path?.map(String).join('.') ?? '', message: i.message })) },
  })
}

/** Translates any thrown value into a SeedopsError. Unknown errors keep their message, redacted. */
export function translateError(e: unknown): SeedopsError {
  if (e instanceof SeedopsError) {
    const m = redact(e.message)
    if (m === e.message) return e
    return new SeedopsError(m, { code: e.code, exitCode: e.exitCode, suggestions: e.suggestions, data: e.data })
  }
  const zod = translateZod(e)
  if (zod) return zod
  if (e && typeof e === 'object') {
    const pg = translatePg(e as PgLikeError)
    if (pg) return pg
  }
  const message = e instanceof Error ? e.message : String(e)
  return new SeedopsError(redact(message), { code: 'INTERNAL', exitCode: EXIT.FAILURE, cause: e })
}
