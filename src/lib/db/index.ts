import pg from 'pg'
import { SeedopsError, EXIT, registerSecret } from '../errors/index.js'
import { seedopsHome } from '../config/index.js'
import { startEmbedded, type EmbeddedServer } from './embedded.js'

export type DbKind = 'postgres' | 'embedded'

export interface Db {
  pool: pg.Pool
  kind: DbKind
  /** Display form of the target, password redacted. */
  target: string
  close(): Promise<void>
}

// Numbers come back as numbers: numeric (1700), int8 (20), float. Dates stay 'YYYY-MM-DD' strings
// (1082) so no time zone can shift a day.
const types = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === 1700 || oid === 20) return (v: string) => (v === null ? null : Number(v))
    if (oid === 1082) return (v: string) => v
    return pg.types.getTypeParser(oid, format as 'text')
  },
} as unknown as pg.CustomTypesConfig

export function redactUrl(url: string): string {
  try {
    const u = new URL(url)
    if (u.password) u.password = '[REDACTED]'
    return u.toString()
  } catch {
    return '[unparseable DATABASE_URL]'
  }
}

export function createPool(url: string, max = 4, opts: { utcOption?: boolean } = {}): pg.Pool {
  try {
    const u = new URL(url)
    if (u.password) registerSecret(decodeURIComponent(u.password))
  } catch {
    /* pg reports a bad URL itself */
  }
  // All day arithmetic in UTC, whatever the server's default: a startup parameter on a real
  // server; the embedded one sets it on its single backend session when it starts.
  const pool = new pg.Pool({
    connectionString: url,
    max,
    types,
    application_name: 'seedops',
    connectionTimeoutMillis: 15_000,
    ...(opts.utcOption === false ? {} : { options: '-c TimeZone=UTC' }),
  })
  pool.on('error', () => {
    /* idle client errors surface on the next query */
  })
  return pool
}

/**
 * A clear error for a DATABASE_URL that is not a PostgreSQL URL (a MySQL URL, a bare word such as
 * `base`), instead of pg's "getaddrinfo ENOTFOUND base". The value itself is never printed.
 */
export function assertPostgresUrl(url: string, source: string): void {
  let scheme: string | null = null
  let host = ''
  try {
    const u = new URL(url)
    scheme = u.protocol.replace(/:$/, '')
    host = u.hostname
  } catch {
    scheme = null
  }
  const ok = (scheme === 'postgres' || scheme === 'postgresql') && (host !== '' || /[?&]host=/.test(url))
  if (ok) return
  const what = scheme === null ? 'a value that is not a URL' : scheme === 'postgres' || scheme === 'postgresql' ? 'a PostgreSQL URL with no host' : `a ${scheme}: URL`
  throw new SeedopsError(`${source} is not a PostgreSQL URL: got ${what} (${url.length} characters, not shown), expected postgres://USER@HOST:5432/DBNAME (password in the URL or PGPASSWORD)`, {
    code: 'BAD_DATABASE_URL',
    exitCode: EXIT.USAGE,
    suggestions: [
      'Set DATABASE_URL=postgres://USER:PASSWORD@HOST:5432/DBNAME (also postgresql://; ?sslmode=require as needed)',
      'Or unset it to use the embedded database in SEEDOPS_HOME',
    ],
  })
}

export interface OpenOptions {
  databaseUrl?: string
  home?: string
  max?: number
}

/** DATABASE_URL (or --database-url) selects a real server; otherwise the embedded PGlite. */
export async function openDb(opts: OpenOptions = {}): Promise<Db> {
  const url = opts.databaseUrl ?? process.env.DATABASE_URL
  if (url) {
    assertPostgresUrl(url, opts.databaseUrl !== undefined ? '--database-url' : 'DATABASE_URL')
    const pool = createPool(url, opts.max ?? 4)
    return { pool, kind: 'postgres', target: redactUrl(url), close: () => pool.end() }
  }
  const home = opts.home ?? seedopsHome()
  const server: EmbeddedServer = await startEmbedded(home)
  const pool = createPool(server.url, opts.max ?? 4, { utcOption: false })
  return {
    pool,
    kind: 'embedded',
    target: `embedded (${server.dataDir})`,
    async close() {
      await pool.end()
      await server.stop()
    },
  }
}

export type Queryable = Pick<pg.PoolClient, 'query'>

/** Runs fn in one transaction on one client: all-or-nothing. */
export async function withTransaction<T>(pool: pg.Pool, fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
  const c = await pool.connect()
  try {
    await c.query('BEGIN')
    const out = await fn(c)
    await c.query('COMMIT')
    return out
  } catch (e) {
    await c.query('ROLLBACK').catch(() => {})
    throw e
  } finally {
    c.release()
  }
}

/** Opens the database for a command and always closes it (pools keep the process alive). */
export async function withDb<T>(opts: OpenOptions, fn: (db: Db) => Promise<T>): Promise<T> {
  const db = await openDb(opts)
  try {
    return await fn(db)
  } finally {
    await db.close()
  }
}
