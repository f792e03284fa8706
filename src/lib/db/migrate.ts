import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { runner } from 'node-pg-migrate'
import type { Db } from './index.js'
import { packageRoot } from '../paths.js'
import { SeedopsError } from '../errors/index.js'
import type { Logger } from '../output/index.js'

export const MIGRATIONS_TABLE = 'seedops_migrations'

export function migrationsDir(): string {
  return join(packageRoot(), 'migrations')
}

export function knownMigrations(): string[] {
  return readdirSync(migrationsDir())
    .filter((f) => f.endsWith('.sql'))
    .map((f) => f.replace(/\.sql$/, ''))
    .sort()
}

export interface MigrationStatus {
  target: string
  version: string | null
  current: boolean
  applied: { name: string; runOn: string }[]
  pending: string[]
}

export async function migrationStatus(db: Db): Promise<MigrationStatus> {
  const exists = await db.pool.query<{ t: string | null }>(`SELECT to_regclass($1) AS t`, [`public.${MIGRATIONS_TABLE}`])
  let applied: { name: string; runOn: string }[] = []
  if (exists.rows[0]?.t) {
    const r = await db.pool.query<{ name: string; run_on: Date }>(`SELECT name, run_on FROM ${MIGRATIONS_TABLE} ORDER BY run_on, id`)
    applied = r.rows.map((x) => ({ name: x.name, runOn: new Date(x.run_on).toISOString() }))
  }
  const done = new Set(applied.map((a) => a.name))
  const pending = knownMigrations().filter((m) => !done.has(m))
  return { target: db.target, version: applied.at(-1)?.name ?? null, current: pending.length === 0, applied, pending }
}

export interface MigrateResult extends MigrationStatus {
  ran: string[]
}

/**
 * Applies pending migrations in name order, all in one transaction, under node-pg-migrate's
 * advisory lock (waiting for a concurrent migrate rather than failing). Idempotent: a second run
 * applies nothing. Every statement is IF NOT EXISTS / OR REPLACE, so it is also safe on a
 * database that already holds the platform's own tables.
 */
export async function migrate(db: Db, logger?: Logger): Promise<MigrateResult> {
  const client = await db.pool.connect()
  let ran: string[] = []
  try {
    const out = await runner({
      dbClient: client,
      dir: migrationsDir(),
      migrationsTable: MIGRATIONS_TABLE,
      direction: 'up',
      singleTransaction: true,
      checkOrder: true,
      advisoryLockMode: 'wait',
      log: () => {},
      logger: { debug() {}, info: (m: string) => logger?.debug(m), warn: (m: string) => logger?.debug(m), error: (m: string) => logger?.debug(m) },
    })
    ran = out.map((m) => m.name)
  } catch (e) {
    const err = e as Error & { code?: string }
    if (err.code) throw e
    throw new SeedopsError(`migration failed: ${err.message}`, {
      code: 'MIGRATE_FAILED',
      cause: e,
      suggestions: ['Nothing was applied (one transaction). Check the message above, then run: seedops db status'],
    })
  } finally {
    client.release()
  }
  for (const r of ran) logger?.info(`applied ${r}`)
  return { ...(await migrationStatus(db)), ran }
}

/** Guard for stages: a clear error instead of a missing-table failure deep in SQL. */
export async function assertMigrated(db: Db): Promise<void> {
  const s = await migrationStatus(db)
  if (!s.current) {
    throw new SeedopsError(`database schema is not current (version ${s.version ?? 'none'}, ${s.pending.length} pending: ${s.pending.join(', ')})`, {
      code: 'SCHEMA_OUTDATED',
      suggestions: ['Run: seedops db migrate'],
    })
  }
}
