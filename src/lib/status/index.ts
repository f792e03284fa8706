import type { V1CronJob } from '@kubernetes/client-node'
import { kubeCall } from '../kube/errors.js'
import type { KubeClients } from '../kube/client.js'
import { expectedFor, type ExpectedCronJob } from '../kube/expected.js'
import { openDb } from '../db/index.js'
import { hasRunLog, lastRuns, lastSuccesses, stageCadences } from '../stages/run-log.js'
import { redact, SeedopsError, translateError } from '../errors/index.js'
import { age, dbTarget } from '../doctor/service-checks.js'
import { IRT_DEPLOYMENTS } from '../doctor/checks/irt-deployment.js'
import { color, renderTable } from '../output/index.js'

/**
 * `seedops status`: the CronJobs and the IRT service Deployments as the cluster sees them and
 * the stage run log from the database, at a glance. Either half may be unavailable (no kubeconfig, no database); the
 * command says which and why, and fails only when both are.
 */
export interface CronJobRow {
  name: string
  stage?: string
  schedule: string
  timeZone?: string
  suspended: boolean
  lastScheduleTime?: string
  lastSuccessfulTime?: string
  active: number
}

/** An IRT service Deployment: seedops' (seedops-irt) or the predecessor's R Plumber (r-irt-plumber). */
export interface IrtServiceRow {
  name: string
  /** seedops: k8s/base/irt-service.yaml; predecessor: the R Plumber service seedops replaces. */
  role: 'seedops' | 'predecessor'
  desired: number
  ready: number
  updated: number
  available: number
  /** Container restarts summed over the Deployment's pods. */
  restarts: number
  pods: number
  image: string
}

export interface StageRow {
  stage: string
  lastRun?: { status: string; asOf: string | null; startedAt: string; finishedAt: string | null; durationSeconds: number | null; rows: Record<string, unknown> | null; error: string | null; dryRun: boolean }
  lastSuccess?: {
    asOf: string | null
    finishedAt: string
    ageSeconds: number
    /** The freshness limit from the stage's CronJob schedule (the cluster's, else k8s/), and whether the success is older. */
    maxAgeHours?: number
    stale?: boolean
  }
}

export interface Part<T> {
  available: boolean
  /** Why not, when unavailable. */
  reason?: string
  code?: string
  where?: string
  rows: T[]
}

export interface StatusResult {
  namespace: string
  cluster: Part<CronJobRow>
  /** The IRT service Deployments beside the CronJobs (unavailable on its own, e.g. when deployments may not be listed). */
  irt: Part<IrtServiceRow>
  database: Part<StageRow>
}

export async function clusterStatus(connect: () => KubeClients): Promise<Part<CronJobRow>> {
  let k: KubeClients
  try {
    k = connect()
    const list = await kubeCall(k, { verb: 'list', resource: 'cronjobs.batch', namespace: k.namespace }, () => k.batch.listNamespacedCronJob({ namespace: k.namespace }))
    const iso = (d?: Date | string) => (d ? new Date(d).toISOString() : undefined)
    const rows = list.items
      .map((c) => ({
        name: c.metadata!.name!,
        stage: c.metadata?.labels?.['seedops.io/stage'],
        schedule: c.spec?.schedule ?? '',
        ...(c.spec?.timeZone ? { timeZone: c.spec.timeZone } : {}),
        suspended: Boolean(c.spec?.suspend),
        lastScheduleTime: iso(c.status?.lastScheduleTime),
        lastSuccessfulTime: iso(c.status?.lastSuccessfulTime),
        active: c.status?.active?.length ?? 0,
      }))
      .sort((a, b) => a.name.localeCompare(b.name))
    return { available: true, where: `${k.server} (context ${k.context})`, rows }
  } catch (e) {
    const err = translateError(e)
    return { available: false, reason: err.message, code: err.code, rows: [] }
  }
}

/**
 * The IRT service: Deployments named seedops-irt or r-irt-plumber, or labelled component irt (as
 * doctor's deployments.irt finds them), with ready/desired replicas from their status and the
 * restarts of the pods their selector matches.
 */
export async function irtServiceStatus(connect: () => KubeClients): Promise<Part<IrtServiceRow>> {
  try {
    const k = connect()
    const list = await kubeCall(k, { verb: 'list', resource: 'deployments.apps', namespace: k.namespace }, () => k.apps.listNamespacedDeployment({ namespace: k.namespace }))
    const irt = list.items.filter((d) => IRT_DEPLOYMENTS.includes(d.metadata?.name ?? '') || d.metadata?.labels?.['app.kubernetes.io/component'] === 'irt')
    const rows: IrtServiceRow[] = []
    for (const d of irt) {
      const name = d.metadata!.name!
      const match = d.spec?.selector?.matchLabels ?? {}
      const selector = Object.entries(match).map(([key, v]) => `${key}=${v}`).join(',')
      // No selector labels: counting every pod of the namespace would be wrong, so none are counted.
      const pods = selector
        ? (await kubeCall(k, { verb: 'list', resource: 'pods', namespace: k.namespace }, () => k.core.listNamespacedPod({ namespace: k.namespace, labelSelector: selector }))).items
        : []
      rows.push({
        name,
        role: name === 'r-irt-plumber' ? 'predecessor' : 'seedops',
        desired: d.spec?.replicas ?? 1,
        ready: d.status?.readyReplicas ?? 0,
        updated: d.status?.updatedReplicas ?? 0,
        available: d.status?.availableReplicas ?? 0,
        restarts: pods.reduce((s, p) => s + (p.status?.containerStatuses ?? []).reduce((t, c) => t + (c.restartCount ?? 0), 0), 0),
        pods: pods.length,
        image: (d.spec?.template?.spec?.containers ?? []).map((c) => c.image ?? '?').join(', '),
      })
    }
    rows.sort((a, b) => (a.role === b.role ? a.name.localeCompare(b.name) : a.role === 'seedops' ? -1 : 1))
    return { available: true, where: `${k.server} (context ${k.context})`, rows }
  } catch (e) {
    const err = translateError(e)
    return { available: false, reason: err.message, code: err.code, rows: [] }
  }
}

export async function databaseStatus(flagUrl: string | undefined, env: NodeJS.ProcessEnv, stages: string[], now = new Date()): Promise<Part<StageRow>> {
  const target = dbTarget(flagUrl, env)
  if (!target) return { available: false, reason: 'no database configured (set DATABASE_URL or pass --database-url)', code: 'DB_NOT_CONFIGURED', rows: [] }
  let db
  try {
    db = await openDb({ databaseUrl: target.url, home: target.home, max: 2 })
    if (!(await hasRunLog(db.pool))) return { available: false, reason: `${db.target} has no seedops_stage_runs table (run: seedops db migrate)`, code: 'SCHEMA_OUTDATED', where: db.target, rows: [] }
    const last = await lastRuns(db.pool)
    const ok = await lastSuccesses(db.pool)
    const names = [...new Set([...stages, ...last.keys()])]
    const rows: StageRow[] = names.map((stage) => {
      const l = last.get(stage)
      const s = ok.get(stage)
      return {
        stage,
        ...(l
          ? {
              lastRun: {
                status: l.status,
                asOf: l.asOf,
                startedAt: l.startedAt.toISOString(),
                finishedAt: l.finishedAt ? l.finishedAt.toISOString() : null,
                durationSeconds: l.finishedAt ? Math.round((l.finishedAt.getTime() - l.startedAt.getTime()) / 100) / 10 : null,
                rows: l.rows,
                error: l.error ? redact(String(l.error).split('\n')[0]) : null,
                dryRun: l.dryRun,
              },
            }
          : {}),
        ...(s?.finishedAt ? { lastSuccess: { asOf: s.asOf, finishedAt: s.finishedAt.toISOString(), ageSeconds: Math.round((now.getTime() - s.finishedAt.getTime()) / 1000) } } : {}),
      }
    })
    return { available: true, where: db.target, rows }
  } catch (e) {
    const err = translateError(e)
    return { available: false, reason: err.message, code: err.code, where: target.display, rows: [] }
  } finally {
    await db?.close().catch(() => {})
  }
}

export async function collectStatus(opts: { namespace: string; connect: () => KubeClients; databaseUrl?: string; env?: NodeJS.ProcessEnv; now?: Date; manifests?: string }): Promise<StatusResult> {
  const expected = expectedFor({ dir: opts.manifests, namespace: opts.namespace })
  const stages = expected.map((e) => e.stage)
  const [cluster, irt, database] = await Promise.all([clusterStatus(opts.connect), irtServiceStatus(opts.connect), databaseStatus(opts.databaseUrl, opts.env ?? process.env, stages, opts.now)])
  markStale(database, cluster, expected, opts.now ?? new Date())
  if (!cluster.available && !database.available) {
    throw new SeedopsError(`neither the cluster nor the database is available: cluster: ${cluster.reason}; database: ${database.reason}`, {
      code: 'STATUS_UNAVAILABLE',
      suggestions: ['Point at a cluster: --kubeconfig/--context, or KUBECONFIG', 'Point at the database: DATABASE_URL (or --database-url)', 'Then: seedops doctor'],
      data: { cluster: { code: cluster.code }, database: { code: database.code } },
    })
  }
  return { namespace: opts.namespace, cluster, irt, database }
}

/** Each last success against its stage's cadence (run-log.ts), with the schedules the cluster showed when it answered. */
function markStale(database: Part<StageRow>, cluster: Part<CronJobRow>, expected: ExpectedCronJob[], now: Date): void {
  const deployed: V1CronJob[] | undefined = cluster.available
    ? cluster.rows.map((c): V1CronJob => ({ metadata: { name: c.name, labels: c.stage ? { 'seedops.io/stage': c.stage } : {} }, spec: { schedule: c.schedule, timeZone: c.timeZone, jobTemplate: {} } }))
    : undefined
  const cadences = stageCadences(expected, deployed, now)
  for (const row of database.rows) {
    const cad = cadences.get(row.stage)
    if (!cad || !row.lastSuccess) continue
    row.lastSuccess.maxAgeHours = cad.maxAgeHours
    row.lastSuccess.stale = row.lastSuccess.ageSeconds > cad.maxAgeHours * 3600
  }
}

function rowsText(rows: Record<string, unknown> | null | undefined): string {
  if (!rows) return '—'
  return Object.entries(rows).map(([k, v]) => `${k}=${typeof v === 'number' ? v.toLocaleString('en-US') : JSON.stringify(v)}`).join(' ') || '—'
}

const since = (iso: string | undefined, now: Date) => (iso ? `${age(now.getTime() - new Date(iso).getTime())} ago` : '—')

export function renderStatus(r: StatusResult, now = new Date()): string {
  const out: string[] = []
  out.push(color.bold(`CronJobs in ${r.namespace}`) + (r.cluster.where ? ` — ${r.cluster.where}` : ''))
  if (!r.cluster.available) out.push(`  unavailable: ${r.cluster.reason}`)
  else if (!r.cluster.rows.length) out.push('  none (deploy them: seedops deploy)')
  else out.push(renderTable(['NAME', 'SCHEDULE', 'SUSPENDED', 'LAST SCHEDULE', 'LAST SUCCESS', 'ACTIVE'], r.cluster.rows.map((c) => [c.name, c.schedule, c.suspended ? 'yes' : 'no', since(c.lastScheduleTime, now), since(c.lastSuccessfulTime, now), c.active])))
  out.push('')
  out.push(color.bold(`IRT service in ${r.namespace}`))
  // An unreachable cluster is said once, above; a reason of the IRT half's own (e.g. RBAC) is said here.
  if (!r.irt.available) out.push(r.cluster.available ? `  unavailable: ${r.irt.reason}` : '  unavailable (the cluster, above)')
  else if (!r.irt.rows.length) out.push('  none (deploy it: seedops deploy)')
  else
    out.push(
      renderTable(
        ['DEPLOYMENT', 'READY', 'UP-TO-DATE', 'AVAILABLE', 'RESTARTS', 'IMAGE'],
        r.irt.rows.map((d) => [d.role === 'predecessor' ? `${d.name} (predecessor)` : d.name, `${d.ready}/${d.desired}`, d.updated, d.available, d.restarts, d.image]),
      ),
    )
  out.push('')
  out.push(color.bold('Stage runs') + (r.database.where ? ` — ${r.database.where}` : ''))
  if (!r.database.available) out.push(`  unavailable: ${r.database.reason}`)
  else
    out.push(
      renderTable(
        ['STAGE', 'LAST RUN', 'AS OF', 'DURATION', 'ROWS', 'LAST SUCCESS', 'ERROR'],
        r.database.rows.map((s) => [
          s.stage,
          s.lastRun ? `${s.lastRun.status}${s.lastRun.dryRun ? ' (dry run)' : ''} ${since(s.lastRun.startedAt, now)}` : 'never',
          s.lastRun?.asOf ?? '—',
          s.lastRun?.durationSeconds != null ? `${s.lastRun.durationSeconds}s` : '—',
          rowsText(s.lastRun?.rows),
          s.lastSuccess ? `${age(s.lastSuccess.ageSeconds * 1000)} ago (as of ${s.lastSuccess.asOf ?? '?'})${s.lastSuccess.stale ? color.red(`, stale (> ${s.lastSuccess.maxAgeHours} h)`) : ''}` : 'never',
          s.lastRun?.error ?? '',
        ]),
      ),
    )
  return redact(out.join('\n')) + '\n'
}
