import { cpSync, mkdtempSync } from 'node:fs'
import { join } from 'node:path'
import pg from 'pg'
import { inject } from 'vitest'
import { openDb, type Db } from '../../src/lib/db/index.js'
import { PLANTED } from '../faults/support/secret-scan.js'

export type DbKind = 'embedded' | 'postgres'

/** The databases every DB test runs against: the embedded default always, the real server when TEST_DATABASE_URL is set. */
export const DB_KINDS: DbKind[] = process.env.TEST_DATABASE_URL ? ['embedded', 'postgres'] : ['embedded']

export interface TestDatabase {
  kind: DbKind
  /** Env for a spawned CLI: DATABASE_URL (real server) or SEEDOPS_HOME (embedded). */
  env: Record<string, string>
  /** Opens a connection pool. Embedded: close it before spawning the CLI (one process per data folder). */
  open(): Promise<Db>
}

let counter = 0

/** A fresh, migrated database (copy of the suite's template). Pass migrated=false for an empty one. */
export async function freshDatabase(kind: DbKind, opts: { migrated?: boolean } = {}): Promise<TestDatabase> {
  const migrated = opts.migrated ?? true
  const name = `seedops_t_${inject('runId')}_${process.pid}_${++counter}`
  if (kind === 'embedded') {
    const home = mkdtempSync(join(inject('testRoot'), 'home-'))
    if (migrated) cpSync(inject('embeddedTemplate'), home, { recursive: true, filter: (src) => !src.endsWith('seedops.pid') })
    return { kind, env: { SEEDOPS_HOME: home }, open: () => openDb({ home, databaseUrl: undefined }) }
  }
  const admin = process.env.TEST_DATABASE_URL!
  const c = new pg.Client({ connectionString: admin })
  await c.connect()
  await c.query(migrated ? `CREATE DATABASE ${name} TEMPLATE ${inject('pgTemplate')}` : `CREATE DATABASE ${name}`)
  await c.end()
  const u = new URL(admin)
  u.pathname = `/${name}`
  // A planted password (the test server trusts 127.0.0.1 and ignores it): test/support/cli.ts fails any run that prints it.
  u.password = PLANTED.DB_PASSWORD
  const url = u.toString()
  return { kind, env: { DATABASE_URL: url }, open: () => openDb({ databaseUrl: url }) }
}
