import pg from 'pg'
import { createPool, type Db } from '../src/lib/db/index.js'
import { migrate } from '../src/lib/db/migrate.js'

/** Benchmarks run on a real server: BENCH_DATABASE_URL (or TEST_DATABASE_URL) names an admin database. */
export function adminUrl(): string {
  const u = process.env.BENCH_DATABASE_URL ?? process.env.TEST_DATABASE_URL
  if (!u) {
    console.error('Set BENCH_DATABASE_URL (or TEST_DATABASE_URL) to a PostgreSQL server, e.g. eval "$(scripts/test-postgres.sh)"')
    process.exit(2)
  }
  return u
}

/** The URL of a bench database (for the command under test, which connects itself). */
export function benchDbUrl(name: string): string {
  const u = new URL(adminUrl())
  u.pathname = `/${name}`
  return u.toString()
}

/** Opens (creating if needed) a dedicated, migrated bench database on the server. */
export async function benchDb(name: string): Promise<{ db: Db; created: boolean }> {
  const admin = adminUrl()
  const c = new pg.Client({ connectionString: admin })
  await c.connect()
  const exists = (await c.query(`SELECT 1 FROM pg_database WHERE datname = $1`, [name])).rowCount
  if (!exists) await c.query(`CREATE DATABASE ${name}`)
  await c.end()
  const u = new URL(admin)
  u.pathname = `/${name}`
  const pool = createPool(u.toString(), 4)
  const db: Db = { pool, kind: 'postgres', target: name, close: () => pool.end() }
  await migrate(db)
  return { db, created: !exists }
}

export async function time<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const t0 = performance.now()
  const value = await fn()
  return { ms: performance.now() - t0, value }
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

export function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`)
  return i > 0 ? Number(process.argv[i + 1]) : def
}
