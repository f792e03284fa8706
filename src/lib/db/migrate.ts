import type pg from 'pg'
import { PG_MIGRATE_LOCK_ID, runner } from 'node-pg-migrate'
import type { Db, Queryable } from './index.js'
import { SeedopsError } from '../errors/index.js'
import type { Logger } from '../output/index.js'
import { archiveStamp, planAdoption, runSteps, type AdoptionPlan, type PlanStep, type RowChange } from './adopt.js'
import { MIGRATIONS_TABLE, knownMigrations, migrationsDir } from './migrate-files.js'
import { attemptSource, type ReadSource } from './read-source.js'
import { shapeDifferences, type ShapeDifference } from './shape.js'

export { MIGRATIONS_TABLE, knownMigrations, migrationsDir }

export interface MigrationStatus {
  target: string
  version: string | null
  current: boolean
  applied: { name: string; runOn: string }[]
  pending: string[]
}

async function statusOn(q: Queryable, target: string): Promise<MigrationStatus> {
  const exists = await q.query<{ t: string | null }>(`SELECT to_regclass($1)::text AS t`, [`public.${MIGRATIONS_TABLE}`])
  let applied: { name: string; runOn: string }[] = []
  if (exists.rows[0]?.t) {
    const r = await q.query<{ name: string; run_on: Date }>(`SELECT name, run_on FROM ${MIGRATIONS_TABLE} ORDER BY run_on, id`)
    applied = r.rows.map((x) => ({ name: x.name, runOn: new Date(x.run_on).toISOString() }))
  }
  const done = new Set(applied.map((a) => a.name))
  const pending = knownMigrations().filter((m) => !done.has(m))
  return { target, version: applied.at(-1)?.name ?? null, current: pending.length === 0, applied, pending }
}

export async function migrationStatus(db: Db): Promise<MigrationStatus> {
  return statusOn(db.pool, db.target)
}

export interface SchemaStatus extends MigrationStatus {
  /** Every seedops-owned object whose live shape differs from the expected one. */
  drift: ShapeDifference[]
  /** Where attempts are read from (SPEC: attempt → responses → exam_results.result_json). */
  attempts: ReadSource
}

/** `db status`: migrations plus the shape of every seedops-owned table and view. */
export async function schemaStatus(db: Db): Promise<SchemaStatus> {
  return { ...(await statusOn(db.pool, db.target)), drift: await shapeDifferences(db.pool), attempts: await attemptSource(db.pool) }
}

export interface MigrateOptions {
  /** Plan only: print the statements, apply nothing, take no lock. */
  dryRun?: boolean
}

export interface MigrateResult extends MigrationStatus {
  dryRun: boolean
  ran: string[]
  /** Statements besides the migrations (adoption of an existing database), in order. */
  plan: PlanStep[]
  /** Derived tables whose rows changed, each copied first to its archive. */
  rowChanges: RowChange[]
  notes: string[]
}

/**
 * node-pg-migrate's runner opens and commits its own transaction; inside ours it must not. Its
 * BEGIN/COMMIT/ROLLBACK become a savepoint, so the adoption plan and the migrations commit together.
 */
function inOuterTransaction(c: pg.PoolClient): Queryable {
  const map: Record<string, string> = {
    BEGIN: 'SAVEPOINT seedops_migrations',
    COMMIT: 'RELEASE SAVEPOINT seedops_migrations',
    ROLLBACK: 'ROLLBACK TO SAVEPOINT seedops_migrations',
  }
  return {
    query: ((text: unknown, values?: unknown) => {
      const swap = typeof text === 'string' ? map[text.trim().replace(/;$/, '').toUpperCase()] : undefined
      return swap ? c.query(swap) : c.query(text as string, values as unknown[])
    }) as Queryable['query'],
  }
}

/**
 * Applies pending migrations in name order and adopts what another system left (the predecessor's
 * `attempt` view, derived tables in an older shape): one transaction, under node-pg-migrate's
 * advisory lock (waiting for a concurrent migrate rather than failing). Idempotent: a second run
 * plans nothing and applies nothing. Platform tables' rows are never touched.
 */
export async function migrate(db: Db, logger?: Logger, opts: MigrateOptions = {}): Promise<MigrateResult> {
  if (opts.dryRun) {
    const status = await statusOn(db.pool, db.target)
    const plan = await planAdoption(db.pool, { pending: status.pending })
    return { ...status, dryRun: true, ran: [], plan: withMigrations(plan, status.pending), rowChanges: plan.rowChanges, notes: plan.notes }
  }
  const client = await db.pool.connect()
  let ran: string[] = []
  let plan: AdoptionPlan = { steps: [], rowChanges: [], notes: [] }
  let pending: string[] = []
  let locked = false
  try {
    await client.query('SELECT pg_advisory_lock($1)', [PG_MIGRATE_LOCK_ID])
    locked = true
    await client.query('BEGIN')
    try {
      pending = (await statusOn(client, db.target)).pending
      plan = await planAdoption(client, { pending, stamp: archiveStamp() })
      await runSteps(client, plan.steps, 'before')
      const out = await runner({
        dbClient: inOuterTransaction(client) as pg.ClientBase,
        dir: migrationsDir(),
        migrationsTable: MIGRATIONS_TABLE,
        direction: 'up',
        singleTransaction: true,
        noLock: true,
        checkOrder: true,
        log: () => {},
        logger: { debug() {}, info: (m: string) => logger?.debug(m), warn: (m: string) => logger?.debug(m), error: (m: string) => logger?.debug(m) },
      })
      ran = out.map((m) => m.name)
      await runSteps(client, plan.steps, 'after')
      await client.query('COMMIT')
    } catch (e) {
      await client.query('ROLLBACK').catch(() => {})
      throw e
    }
  } catch (e) {
    const err = e as Error & { code?: string }
    if (e instanceof SeedopsError || err.code) throw e
    throw new SeedopsError(`migration failed: ${err.message}`, {
      code: 'MIGRATE_FAILED',
      cause: e,
      suggestions: ['Nothing was applied (one transaction). Check the message above, then run: seedops db status'],
    })
  } finally {
    if (locked) await client.query('SELECT pg_advisory_unlock($1)', [PG_MIGRATE_LOCK_ID]).catch(() => {})
    client.release()
  }
  for (const s of plan.steps) logger?.debug(`adopt ${s.object}: ${s.why}`)
  for (const r of ran) logger?.info(`applied ${r}`)
  return { ...(await statusOn(db.pool, db.target)), dryRun: false, ran, plan: withMigrations(plan, pending), rowChanges: plan.rowChanges, notes: plan.notes }
}

/** The whole plan in execution order, the migrations shown as one step each between the phases. */
function withMigrations(plan: AdoptionPlan, pending: string[]): PlanStep[] {
  return [
    ...plan.steps.filter((s) => s.phase === 'before'),
    ...pending.map((m): PlanStep => ({ phase: 'before', object: MIGRATIONS_TABLE, statement: `-- migration ${m} (migrations/${m}.sql)`, why: 'pending seedops migration' })),
    ...plan.steps.filter((s) => s.phase === 'after'),
  ]
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
