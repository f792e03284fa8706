import { CheckSkipped, renderChecks, runChecks as runAll, toJUnit } from '../checks/index.js'
import { openDb, type Db } from '../db/index.js'
import { SeedopsError, usageError } from '../errors/index.js'
import type { KubeClients } from '../kube/client.js'
import type { ExpectedCronJob } from '../kube/expected.js'
import { color } from '../output/index.js'
import { clusterReachable } from './checks/cluster-reachable.js'
import { cronjobsSpec } from './checks/cronjob-spec.js'
import { cronjobsPresent } from './checks/duplicates.js'
import { jobsFailed } from './checks/failed-jobs.js'
import { podsImagePull } from './checks/images.js'
import { irtDeployment } from './checks/irt-deployment.js'
import { jobsNotCreated } from './checks/jobs-no-pods.js'
import { jobsModulePath } from './checks/module-path.js'
import { podsStuck } from './checks/pods-stuck.js'
import { podsOomKilled } from './checks/resources.js'
import { cronjobsFired } from './checks/schedules.js'
import { configRefs } from './checks/secrets.js'
import { jobsSidecar } from './checks/sidecars.js'
import { dbTarget, SERVICE_CHECKS } from './service-checks.js'
import { takeSnapshot } from './snapshot.js'
import type { ClusterSnapshot, DoctorCheck, DoctorContext, DoctorReport, SafeFix } from './types.js'

/** The cluster checks, in the order a reader follows them: the CronJobs, what they read, their pods, their jobs. */
export const CLUSTER_CHECKS: DoctorCheck[] = [clusterReachable, cronjobsPresent, cronjobsSpec, cronjobsFired, configRefs, irtDeployment, podsImagePull, podsStuck, podsOomKilled, jobsNotCreated, jobsModulePath, jobsSidecar, jobsFailed]

/** Every check, in run order: the cluster ones first, the slow ones (outside services) last. */
export const CHECKS: DoctorCheck[] = [...CLUSTER_CHECKS.filter((c) => !c.slow), ...CLUSTER_CHECKS.filter((c) => c.slow), ...SERVICE_CHECKS.filter((c) => !c.slow), ...SERVICE_CHECKS.filter((c) => c.slow)]

export function listChecks(): { id: string; category: string; description: string; slow: boolean }[] {
  return CHECKS.map((c) => ({ id: c.id, category: c.group, description: c.description, slow: Boolean(c.slow) }))
}

/** `--only a,b` → the checks, in run order; a category name (cluster, database, storage, irt) or id prefix (`db`) selects all of its checks. */
export function selectChecks(only: string[] | undefined): DoctorCheck[] {
  const wanted = (only ?? []).flatMap((o) => o.split(',')).map((s) => s.trim()).filter(Boolean)
  if (!wanted.length) return CHECKS
  const unknown = wanted.filter((w) => !CHECKS.some((c) => c.id === w || c.group === w || c.id.startsWith(`${w}.`)))
  if (unknown.length) throw usageError(`--only: unknown check ${unknown.join(', ')}`, [`Checks: ${CHECKS.map((c) => c.id).join(', ')}`, 'List them: seedops doctor --list-checks'])
  return CHECKS.filter((c) => wanted.some((w) => c.id === w || c.group === w || c.id.startsWith(`${w}.`)))
}

export interface DoctorOptions {
  namespace: string
  expected: ExpectedCronJob[]
  /** Builds the clients (connect(flags)); may throw (no kubeconfig). */
  connect: () => KubeClients
  databaseUrl?: string
  requireDb?: boolean
  requireCluster?: boolean
  /** True when --image/--report-image were given (expected images are then the user's, not the overlay's). */
  explicitImages?: boolean
  env?: NodeJS.ProcessEnv
  only?: string[]
  now?: Date
}

export interface DoctorSession {
  ctx: DoctorContext
  close(): Promise<void>
}

export function createContext(opts: DoctorOptions): DoctorSession {
  const env = opts.env ?? process.env
  let cluster: Promise<ClusterSnapshot> | undefined
  let db: Promise<Db | undefined> | undefined
  const target = dbTarget(opts.databaseUrl, env)
  const ctx: DoctorContext = {
    namespace: opts.namespace,
    env,
    expected: opts.expected,
    requireDb: Boolean(opts.requireDb),
    requireCluster: Boolean(opts.requireCluster),
    explicitImages: Boolean(opts.explicitImages),
    dbTarget: target?.display,
    now: opts.now ?? new Date(),
    cluster: () => (cluster ??= (async () => takeSnapshot(opts.connect()))()),
    clusterIfRead: async () => (cluster ? cluster : undefined),
    db: () => (db ??= target ? openDb({ databaseUrl: target.url, home: target.home, max: 2 }) : Promise.resolve(undefined)),
  }
  return {
    ctx,
    async close() {
      const d = await db?.catch(() => undefined)
      await d?.close().catch(() => {})
    },
  }
}

/**
 * Runs the checks in order on the common runner (sequentially: later ones reuse what earlier
 * ones read): failures first, skipped checks last with their reason.
 */
export async function runChecks(ctx: DoctorContext, checks: DoctorCheck[], onProgress?: (id: string) => void): Promise<DoctorReport> {
  const r = await runAll<DoctorContext, SafeFix>(checks, ctx, {
    onProgress,
    // No kubeconfig: a cluster check run without cluster.reachable (--only irt) is skipped too.
    onError: (e, c) =>
      !(e instanceof CheckSkipped) && e instanceof SeedopsError && e.code === 'KUBE_NO_CONFIG' && c.group === 'cluster' && !ctx.requireCluster ? new CheckSkipped(`${e.message}: skipped`, 'no cluster configured') : undefined,
    emptyReason: notConfigured,
  })
  return { namespace: ctx.namespace, ...r }
}

function notConfigured(id: string): string {
  if (id === 'storage.s3') return 'S3_BUCKET not set'
  if (id === 'irt.health') return 'R_IRT_BASE_URL not set'
  return 'nothing to check'
}

/** Human report: failures, then warnings, ok and skipped, each with its cause and fix; the summary last. */
export function renderReport(r: DoctorReport): string {
  const after = (r.fixes ?? []).map((x) => `${x.ok ? color.green('fixed') : color.red('fix failed')}: ${x.message}`)
  return renderChecks(r, { safeFixNote: '(seedops doctor --fix applies this)', after })
}

/** JUnit XML of a doctor run (doctor --junit FILE). */
export function doctorJUnit(r: DoctorReport): string {
  return toJUnit(r, { name: 'seedops doctor', classPrefix: 'seedops.doctor' })
}
