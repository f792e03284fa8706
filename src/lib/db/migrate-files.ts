import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { packageRoot } from '../paths.js'

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
