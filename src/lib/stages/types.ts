import type pg from 'pg'
import type { z } from 'zod'
import type { Db } from '../db/index.js'
import type { Logger } from '../output/index.js'

/** What every stage run gets. `tx` is the one transaction all its writes go through. */
export interface StageContext {
  db: Db
  tx: pg.PoolClient
  logger: Logger
  signal: AbortSignal
  /** As-of date, YYYY-MM-DD (UTC). */
  asOf: string
  dryRun: boolean
  env: NodeJS.ProcessEnv
  runId: number | null
  /**
   * Queue a statement to run in autocommit on the run's connection after the main transaction has
   * ended, committed or rolled back (never for --dry-run or a cancelled run): a record that must
   * outlive a failure, e.g. a non-converged fit in mirt_fit_meta. A second connection cannot do
   * this on the embedded server while the transaction is open.
   */
  recordAfter(sql: string, values?: unknown[]): void
}

export interface StageResult<S = unknown> {
  /** Row counts by table or kind, e.g. { features_topic_daily: 120, malformed_exam_results: 2 }. */
  rows: Record<string, number>
  /** Stage-specific summary (JSON-safe), shown under --json and in the run log. */
  summary?: S
  /** Optional table for humans (and for --dry-run: what would be written). */
  table?: { head: string[]; rows: unknown[][] }
  warnings?: string[]
  /**
   * Partial failure: what was written still commits, but the run is recorded as failed with this
   * message and the command exits 1 (e.g. some reports could not be stored).
   */
  failed?: string
}

/**
 * A stage is a small typed object (graphile-worker / backstage style): an id, its options (one zod
 * schema, flags > env > defaults, see options.ts), and run(). The runner owns locking, the
 * transaction, dry-run rollback and the run log, so a stage only computes and writes.
 */
export interface Stage<P = Record<string, unknown>, S = unknown> {
  id: string
  description: string
  supportsDryRun: boolean
  /** false for stages that write outside the database (objects in S3) and manage their own atomicity. */
  transactional?: boolean
  /** Its options: each field names its flag and env twins with `.meta({ flag, env })` and has its default. */
  options: z.ZodObject
  /** Params from the validated options when they differ (derived values, checks against the environment). Throws usageError. */
  toParams?(options: any, env: NodeJS.ProcessEnv): P
  /**
   * Optional: the part of the params that runs must not share. Runs with different scopes may run
   * at once (report shards 0/4 and 1/4); undefined locks the whole stage (the default).
   */
  lockScope?(params: P): string | undefined
  /** Wait up to this long for a run holding the same lock to finish, instead of refusing at once (default 0: refuse). */
  lockWaitMs?: number
  run(params: P, ctx: StageContext): Promise<StageResult<S>>
}

export interface StageRunReport<S = unknown> {
  stage: string
  runId: number | null
  asOf: string
  dryRun: boolean
  params: unknown
  status: 'succeeded' | 'failed'
  startedAt: string
  finishedAt: string
  durationMs: number
  rows: Record<string, number>
  summary?: S
  table?: { head: string[]; rows: unknown[][] }
  warnings: string[]
}
