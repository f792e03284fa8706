import { existsSync, writeFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { resolveDate } from '../config/index.js'
import { openDb, type Db } from '../db/index.js'
import { assertMigrated } from '../db/migrate.js'
import type { V1CronJob } from '@kubernetes/client-node'
import { mergeReports, renderChecks, toJUnit } from '../checks/index.js'
import { expectedFor } from '../kube/expected.js'
import { freshnessLimit, resolveCadences, stageAsOf } from '../stages/run-log.js'
import { runChecks, type VerifyReport } from './run.js'
import type { CheckGroup, VerifyContext } from './types.js'

/** As-of for window checks: --date, else the last successful run of `stage`, else today. */
async function defaultAsOf(q: VerifyContext['q'], stage: string | undefined, date: string | undefined): Promise<string> {
  if (date) return resolveDate(date)
  const asOf = stage ? await stageAsOf(q, stage) : undefined
  return asOf ?? resolveDate(undefined)
}

export interface VerifyPart {
  groups: CheckGroup[]
  /** The stage whose last successful run sets the default as-of, and whose schedule sets the freshness limit. */
  stage?: string
  extraOptions?: Record<string, number>
  /** The limit when neither --max-age-hours nor a schedule gives one (26 h; weekly stages 192 h). */
  defaultMaxAgeHours?: number
}

export interface VerifyOptions {
  databaseUrl?: string
  /** An open database to use (and leave open) instead of opening databaseUrl. */
  db?: Db
  /** As-of YYYY-MM-DD for window checks (default: the stage's last successful run, else today). */
  date?: string
  /** Also write JUnit XML here. */
  junit?: string
  /** Explicit freshness limit; undefined: from each stage's CronJob schedule. */
  maxAgeHours?: number
  days: number
  /** Where the expected CronJobs come from (default: the production overlay in k8s/). */
  manifests?: string
  /** The deployed CronJobs, for their schedules (default: the cluster of the default kubeconfig, when it answers within 5 s). */
  listCronJobs?: () => Promise<V1CronJob[]>
  now?: Date
}

export async function executeVerify(groups: CheckGroup[], options: VerifyOptions, part: Omit<VerifyPart, 'groups'> = {}): Promise<VerifyReport> {
  return executeVerifyParts([{ groups, ...part }], options)
}

/**
 * The CronJobs of the default kubeconfig's namespace; throws when there is no cluster (the caller
 * falls back to k8s/). The Kubernetes client is loaded only when a kubeconfig or a pod's
 * service-account token exists: it costs seconds of start-up that a verify without a cluster need not pay.
 */
function defaultCronJobLister(env: NodeJS.ProcessEnv = process.env): () => Promise<V1CronJob[]> {
  return async () => {
    const home = env.HOME || homedir()
    if (!env.KUBECONFIG && !existsSync(join(home, '.kube', 'config')) && !existsSync('/var/run/secrets/kubernetes.io/serviceaccount/token')) throw new Error('no kubeconfig')
    const { lazyConnect } = await import('../kube/connect.js')
    const k = lazyConnect({ requestTimeout: '5s' }).connect()
    return (await k.batch.listNamespacedCronJob({ namespace: k.namespace })).items
  }
}

/** Runs several groups on one connection, each with its own default as-of and freshness limit, as one report. */
export async function executeVerifyParts(parts: VerifyPart[], o: VerifyOptions): Promise<VerifyReport> {
  const now = o.now ?? new Date()
  // Only when a limit is not given: the schedules decide it.
  const cadences = o.maxAgeHours === undefined ? await resolveCadences(expectedFor({ dir: o.manifests }), o.listCronJobs ?? defaultCronJobLister(), now) : new Map()
  const db = o.db ?? (await openDb({ databaseUrl: o.databaseUrl }))
  try {
    await assertMigrated(db)
    const reports: VerifyReport[] = []
    for (const part of parts) {
      const asOf = await defaultAsOf(db.pool, part.stage, o.date)
      const limit = freshnessLimit(o.maxAgeHours, part.stage ? cadences.get(part.stage) : undefined, part.defaultMaxAgeHours ?? (part.stage === 'generate-report' ? 192 : 26))
      reports.push(
        await runChecks(part.groups, {
          q: db.pool,
          asOf,
          now,
          options: { days: o.days, ...part.extraOptions, maxAgeHours: limit.maxAgeHours },
          limitSource: limit.source,
        }),
      )
    }
    const report: VerifyReport = { asOf: [...new Set(reports.map((r) => r.asOf))].join(', '), ...mergeReports(reports) }
    if (o.junit) writeFileSync(o.junit, toJUnit(report, { name: 'seedops verify', classPrefix: 'seedops.verify' }))
    return report
  } finally {
    if (!o.db) await db.close()
  }
}

export function renderVerify(r: VerifyReport): void {
  process.stdout.write(renderChecks(r, { summarySuffix: ` (as of ${r.asOf})` }))
}
