import { Flags } from '@oclif/core'
import { openDb, type Db } from './index.js'

export const dbFlags = {
  'database-url': Flags.string({
    description: 'PostgreSQL URL (default: env DATABASE_URL, else the embedded database in SEEDOPS_HOME). Prefer the env var: flag values show in `ps`.',
    helpGroup: 'DATABASE',
  }),
}

/** Opens the database for a command and always closes it (pools keep the process alive). */
export async function withDb<T>(flags: { 'database-url'?: string }, fn: (db: Db) => Promise<T>): Promise<T> {
  const db = await openDb({ databaseUrl: flags['database-url'] })
  try {
    return await fn(db)
  } finally {
    await db.close()
  }
}
