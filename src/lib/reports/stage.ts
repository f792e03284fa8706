import { fileURLToPath } from 'node:url'
import { z } from 'zod'
import type { S3Client } from '@aws-sdk/client-s3'
import { isoWeekStart, addDays, lastCompleteWeek, parseIsoWeek, resolveDate } from '../config/index.js'
import { usersOption } from '../kpi/stage.js'
import { SeedopsError, translateError, usageError } from '../errors/index.js'
import { describeStoreConfig, openStore, reportKey, resolveStoreConfig, type ObjectStore, type StoreConfig } from '../storage/index.js'
import type { Stage, StageContext } from '../stages/types.js'
import { gatherReports } from './data.js'
import { CONTENT_TYPES, resolveRenderers, type ReportFormat, type Renderers } from './render.js'
import { inShard, resolveShard } from './shard.js'
import { USERS_WITH_KPIS, UPSERT_ARTIFACTS } from './sql.js'

const StoreSchema = z.union([
  z.object({ kind: z.literal('local'), dir: z.string().min(1) }),
  z.object({ kind: z.literal('s3'), bucket: z.string().min(1), region: z.string().min(1), endpoint: z.string().optional(), forcePathStyle: z.boolean().optional() }),
])

export const ReportParams = z.object({
  formats: z.array(z.enum(['html', 'pdf'])).min(1),
  renderer: z.enum(['auto', 'builtin', 'quarto']),
  store: StoreSchema,
  shard: z.object({ index: z.number().int().min(0), count: z.number().int().min(1) }),
  users: z.array(z.string()).optional(),
  batchSize: z.number().int().min(1).max(10_000),
  concurrency: z.number().int().min(1).max(64),
  /** The ISO week (its Monday) to report; absent: the last complete week before the as-of day. */
  week: z.string().regex(/^\d{4}-\d{2}-\d{2}$/).optional(),
  /** Refuse instead of finalising when the default week's KPIs are not final. */
  requireFinalKpis: z.boolean().optional(),
})
export type ReportParams = z.infer<typeof ReportParams>

export interface ReportFailure {
  user_id: string
  format: ReportFormat
  error: string
}

export interface ReportSummary {
  weekStart: string
  asOf: string
  store: string
  renderer: 'builtin' | 'quarto'
  formats: ReportFormat[]
  shard: string
  /** Users of this shard (with KPIs for the week, or given with --user). */
  users: number
  reports: number
  failedUsers: number
  failures: ReportFailure[]
  /** One report to open (the first HTML one), as URL and, for a local store, path. */
  sample: { url: string; path?: string } | null
}

/**
 * generate-report's options (flag, env twin, default): see stages/options.ts. Where reports go
 * (--store, --out-dir, --bucket with REPORT_STORE, REPORT_OUT_DIR, S3_BUCKET and the AWS chain) and
 * which shard this run is (--shard, --shard-count with JOB_COMPLETION_INDEX/COUNT) depend on each
 * other: storage's resolveStoreConfig and resolveShard settle those in toParams.
 */
export const ReportOptions = z.object({
  format: z.enum(['html', 'pdf', 'both', 'html,pdf', 'pdf,html']).default('html').meta({ flag: 'format', env: ['REPORT_FORMAT'] }),
  renderer: z.enum(['auto', 'builtin', 'quarto']).default('auto').meta({ flag: 'renderer', env: ['REPORT_RENDERER'] }),
  store: z.enum(['local', 's3', 'auto']).optional().meta({ flag: 'store' }),
  outDir: z.string().min(1).optional().meta({ flag: 'out-dir' }),
  bucket: z.string().min(1).optional().meta({ flag: 'bucket' }),
  shard: z.string().optional().meta({ flag: 'shard' }),
  shardCount: z.number().int().min(1).max(10_000).optional().meta({ flag: 'shard-count' }),
  users: usersOption,
  batchSize: z.number().int().min(1).max(10_000).default(200).meta({ flag: 'batch-size', env: ['REPORT_BATCH_SIZE'] }),
  concurrency: z.number().int().min(1).max(64).default(4).meta({ flag: 'concurrency', env: ['REPORT_CONCURRENCY'] }),
  /** YYYY-Www, or a day YYYY-MM-DD: the ISO week holding it (`run generate-report --date D`). */
  week: z
    .string()
    .optional()
    .transform((w) => (w === undefined ? undefined : /^\d{4}-\d{2}-\d{2}$/.test(w.trim()) ? isoWeekStart(resolveDate(w.trim())) : parseIsoWeek(w)))
    .meta({ flag: 'week' }),
  requireFinalKpis: z.boolean().default(false).meta({ flag: 'require-final-kpis' }),
})
export type ReportOptions = z.output<typeof ReportOptions>

const FORMATS: Record<ReportOptions['format'], ReportFormat[]> = { html: ['html'], pdf: ['pdf'], both: ['html', 'pdf'], 'html,pdf': ['html', 'pdf'], 'pdf,html': ['html', 'pdf'] }

/** A --format/REPORT_FORMAT value as the formats it means (verify reports reads REPORT_FORMAT too). */
export function parseFormats(v: string | undefined): ReportFormat[] {
  const f = (v ?? 'html').trim().toLowerCase() as ReportOptions['format']
  if (Object.hasOwn(FORMATS, f)) return FORMATS[f]
  throw usageError(`format ${JSON.stringify(v)} is not html, pdf or both`, ['--format html|pdf|both (env REPORT_FORMAT)'])
}

/** Runs fn over items with at most `limit` at once; stops taking new items once stop() is true. */
async function mapLimit<T>(items: T[], limit: number, fn: (x: T) => Promise<void>, stop: () => boolean): Promise<void> {
  let next = 0
  const worker = async () => {
    while (!stop() && next < items.length) await fn(items[next++]!)
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
}

/** Errors that mean the store refuses everything, not one report: the run stops taking users (a timed-out
 *  store would cost every remaining object S3_MAX_ATTEMPTS × S3_REQUEST_TIMEOUT_MS). */
const STORE_WIDE = new Set(['S3_NO_BUCKET', 'S3_ACCESS_DENIED', 'S3_BAD_CREDENTIALS', 'S3_WRONG_REGION', 'S3_UNREACHABLE', 'S3_TIMEOUT', 'STORE_NOT_WRITABLE'])

export interface ReportStageDeps {
  /** An S3 client to use instead of one from the AWS env chain (tests hand in one bound to their server). */
  s3Client?: S3Client
  /** A store to use instead of the configured one (tests: fault injection). */
  store?: ObjectStore
}

/**
 * generate-report (SPEC 4): the weekly report of every user with KPIs for the last complete ISO week
 * before the as-of day (on Monday 04:00: the week that just ended; --week or --date pick another),
 * or of the --user ones, in this shard, rendered and stored as reports/{user}/{week}/report.{fmt}.
 *
 * Atomicity: objects cannot join the database transaction, so the order is what matters. A batch's
 * report_artifacts rows are upserted (in the runner's transaction, ctx.tx) only after all its
 * objects are stored, and the transaction commits at the end: a committed row always points at a
 * stored object. A crash leaves at most objects without rows (the previous rows stay intact); the
 * re-run overwrites the same keys, so nothing is duplicated. A user whose report fails is counted
 * and reported, the others' rows still commit, and the command exits 1.
 */
export function createReportStage(deps: ReportStageDeps = {}): Stage<ReportParams, ReportSummary> {
  return {
    id: 'generate-report',
    description: 'Weekly per-learner report (HTML/PDF) into the object store, recorded in report_artifacts.',
    supportsDryRun: true,
    // Writes objects outside the database: they are not rolled back, see the ordering above.
    transactional: false,
    lockScope: (p) => (p.shard.count > 1 ? `shard:${p.shard.index}/${p.shard.count}` : undefined),
    options: ReportOptions,
    toParams(o: ReportOptions, env): ReportParams {
      return ReportParams.parse({
        formats: FORMATS[o.format],
        renderer: o.renderer,
        store: resolveStoreConfig({ store: o.store, outDir: o.outDir, bucket: o.bucket }, env),
        shard: resolveShard(o.shard, o.shardCount, env),
        users: o.users,
        batchSize: o.batchSize,
        concurrency: o.concurrency,
        week: o.week,
        requireFinalKpis: o.requireFinalKpis || undefined,
      })
    },
    async run(params, ctx) {
      return generateReports(params, ctx, deps)
    },
  }
}

async function generateReports(params: ReportParams, ctx: StageContext, deps: ReportStageDeps) {
  const { tx, logger } = ctx
  const weekStart = params.week ?? lastCompleteWeek(ctx.asOf)
  const asOf = addDays(weekStart, 6)
  if (asOf >= ctx.asOf) logger.warn(`generate-report: the week ${weekStart}..${asOf} is not over as of ${ctx.asOf}: its report is partial`)
  const shardLabel = `${params.shard.index}/${params.shard.count}`
  const storeCfg = params.store as StoreConfig
  const store: ObjectStore = deps.store ?? openStore(storeCfg, { s3Client: deps.s3Client, env: ctx.env })
  const renderers: Renderers = resolveRenderers(params.renderer, params.formats, logger, ctx.env)

  const population = params.users ?? (await tx.query<{ user_id: string }>(USERS_WITH_KPIS, [weekStart])).rows.map((r) => r.user_id)
  const users = population.filter((u) => inShard(u, params.shard))
  logger.progress(
    `generate-report: week ${weekStart}..${asOf}, ${users.length} user(s)${params.shard.count > 1 ? ` in shard ${shardLabel} (of ${population.length})` : ''}, ${params.formats.join('+')} via ${renderers.renderer} → ${describeStoreConfig(storeCfg)}${ctx.dryRun ? ' (dry run: nothing stored)' : ''}`,
  )
  // Fail before rendering anything when the store cannot take objects (missing bucket, denied, unreachable).
  if (!ctx.dryRun && users.length) await store.check()

  const warnings: string[] = []
  if (params.users) {
    const have = new Set((await tx.query<{ user_id: string }>(`SELECT user_id FROM weekly_kpi WHERE week_start = $1::date AND user_id = ANY($2::text[])`, [weekStart, users])).rows.map((r) => r.user_id))
    const missing = users.filter((u) => !have.has(u))
    if (missing.length) warnings.push(`${missing.length} user(s) have no weekly_kpi row for ${weekStart} (their report shows no KPIs): ${missing.slice(0, 10).join(', ')}${missing.length > 10 ? ', …' : ''}`)
  }
  if (users.length === 0) warnings.push(params.users ? 'no requested user is in this shard: nothing to do' : `no weekly_kpi rows for the week ${weekStart}: nothing to report (run: seedops run compute-kpis --date ${asOf})`)

  const failures: ReportFailure[] = []
  const failedUsers = new Set<string>()
  const planned: unknown[][] = []
  let stored = 0
  let rowsWritten = 0
  let sample: ReportSummary['sample'] = null
  let storeDown: SeedopsError | null = null
  let attempted = 0
  const formatsStored = new Map<string, number>()
  for (let i = 0; i < users.length && !storeDown; i += params.batchSize) {
    if (ctx.signal.aborted) throw new SeedopsError('generate-report interrupted', { code: 'ABORTED' })
    const batch = users.slice(i, i + params.batchSize)
    const data = await gatherReports(tx, batch, { weekStart })
    const done: { user: string; format: ReportFormat; url: string }[] = []
    const jobs = data.flatMap((d) => params.formats.map((format) => ({ d, format })))
    await mapLimit(jobs, params.concurrency, async ({ d, format }) => {
      const key = reportKey(d.userId, weekStart, format)
      try {
        if (ctx.dryRun) {
          // Dry run: HTML is rendered (cheap) to report its size; PDFs are only announced.
          const bytes = format === 'html' && renderers.renderer === 'builtin' ? (await renderers.render(d, 'html')).length : null
          planned.push([d.userId, format, store.urlFor(key), bytes])
          return
        }
        const body = await renderers.render(d, format, ctx.signal)
        const put = await store.put(key, body, CONTENT_TYPES[format])
        done.push({ user: d.userId, format, url: put.url })
        formatsStored.set(d.userId, (formatsStored.get(d.userId) ?? 0) + 1)
        stored++
      } catch (e) {
        const err = translateError(e)
        failedUsers.add(d.userId)
        failures.push({ user_id: d.userId, format, error: `${err.code}: ${err.message}` })
        logger.warn(`generate-report: ${format} report of ${JSON.stringify(d.userId)} failed: ${err.message}`)
        if (STORE_WIDE.has(err.code)) storeDown ??= err
      }
    }, () => storeDown !== null)
    attempted += batch.length
    // Rows only for objects that are stored, after they are: upsert on (user_id, week_start, format).
    done.sort((a, b) => (a.user < b.user ? -1 : a.user > b.user ? 1 : a.format < b.format ? -1 : 1))
    if (done.length && !ctx.dryRun) {
      const r = await tx.query(UPSERT_ARTIFACTS, [weekStart, done.map((x) => x.user), done.map((x) => x.format), done.map((x) => x.url)])
      rowsWritten += r.rowCount ?? 0
    }
    if (!sample) {
      const h = done.find((x) => x.format === 'html') ?? done[0]
      if (h) sample = { url: h.url, ...(h.url.startsWith('file://') ? { path: fileURLToPath(h.url) } : {}) }
    }
    logger.progress(`generate-report: ${Math.min(i + params.batchSize, users.length)}/${users.length} users, ${stored} object(s) stored, ${failedUsers.size} user(s) failed`)
  }
  if (storeDown) {
    // The rows of what was stored still commit; the users not reached count as failed.
    for (const u of users) if ((formatsStored.get(u) ?? 0) < params.formats.length) failedUsers.add(u)
    warnings.push(`stopped: the object store refused (${(storeDown as SeedopsError).code}): ${(storeDown as SeedopsError).message}; ${users.length - attempted} user(s) not attempted`)
  }
  if (failures.length) warnings.push(`${failedUsers.size} of ${users.length} user(s) failed (${failures.length} report(s)); the others are stored and recorded. First: ${failures[0]!.user_id}: ${failures[0]!.error}`)
  if (sample) logger.info(`generate-report: open a sample report: ${sample.path ?? sample.url}`)
  failures.sort((a, b) => (a.user_id < b.user_id ? -1 : a.user_id > b.user_id ? 1 : 0))
  return {
    failed: failedUsers.size ? `${failedUsers.size} of ${users.length} user(s) failed; the others are stored and recorded` : undefined,
    rows: { report_artifacts: rowsWritten, objects: stored, users: users.length, failed_users: failedUsers.size },
    summary: {
      weekStart,
      asOf,
      store: describeStoreConfig(storeCfg),
      renderer: renderers.renderer,
      formats: params.formats,
      shard: shardLabel,
      users: users.length,
      reports: stored,
      failedUsers: failedUsers.size,
      failures: failures.slice(0, 50),
      sample,
    },
    table: ctx.dryRun ? { head: ['user_id', 'format', 'would write', 'bytes'], rows: planned.sort((a, b) => (String(a[2]) < String(b[2]) ? -1 : 1)).slice(0, 200) } : undefined,
    warnings,
  }
}

export const generateReport = createReportStage()
export default generateReport
