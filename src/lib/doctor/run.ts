import { openDb, type Db } from '../db/index.js'
import { redact, SeedopsError, usageError } from '../errors/index.js'
import type { KubeClients } from '../kube/client.js'
import type { ExpectedCronJob } from '../kube/expected.js'
import { color } from '../output/index.js'
import { clusterReachable, configRefs, cronjobsPresent, cronjobsSpec, jobsFailed, jobsSidecar, podsImagePull, podsOomKilled } from './cluster-checks.js'
import { cronjobsFired, irtDeployment, jobsModulePath, jobsNotCreated, podsStuck } from './workload-checks.js'
import { dbTarget, SERVICE_CHECKS } from './service-checks.js'
import { takeSnapshot } from './snapshot.js'
import { CheckSkipped, type CheckFinding, type ClusterSnapshot, DoctorCheck, DoctorContext, DoctorReport, DoctorStatus, SkippedCheck } from './types.js'

/** The cluster checks, in the order a reader follows them: the CronJobs, what they read, their pods, their jobs. */
export const CLUSTER_CHECKS: DoctorCheck[] = [clusterReachable, cronjobsPresent, cronjobsSpec, cronjobsFired, configRefs, irtDeployment, podsImagePull, podsStuck, podsOomKilled, jobsNotCreated, jobsModulePath, jobsSidecar, jobsFailed]

/** Every check, in run order: the cluster ones first, the slow ones (outside services) last. */
export const CHECKS: DoctorCheck[] = [...CLUSTER_CHECKS.filter((c) => !c.slow), ...CLUSTER_CHECKS.filter((c) => c.slow), ...SERVICE_CHECKS.filter((c) => !c.slow), ...SERVICE_CHECKS.filter((c) => c.slow)]

export function listChecks(): { id: string; category: string; description: string; slow: boolean }[] {
  return CHECKS.map((c) => ({ id: c.id, category: c.category, description: c.description, slow: Boolean(c.slow) }))
}

/** `--only a,b` → the checks, in run order; a category name (cluster, database, storage, irt) or id prefix (`db`) selects all of its checks. */
export function selectChecks(only: string[] | undefined): DoctorCheck[] {
  const wanted = (only ?? []).flatMap((o) => o.split(',')).map((s) => s.trim()).filter(Boolean)
  if (!wanted.length) return CHECKS
  const unknown = wanted.filter((w) => !CHECKS.some((c) => c.id === w || c.category === w || c.id.startsWith(`${w}.`)))
  if (unknown.length) throw usageError(`--only: unknown check ${unknown.join(', ')}`, [`Checks: ${CHECKS.map((c) => c.id).join(', ')}`, 'List them: seedops doctor --list-checks'])
  return CHECKS.filter((c) => wanted.some((w) => c.id === w || c.category === w || c.id.startsWith(`${w}.`)))
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

const RANK: Record<DoctorStatus, number> = { fail: 0, warn: 1, ok: 2 }

/** Runs the checks in order (sequentially: later ones reuse what earlier ones read) and sorts failures first. */
export async function runChecks(ctx: DoctorContext, checks: DoctorCheck[], onProgress?: (id: string) => void): Promise<DoctorReport> {
  const findings: CheckFinding[] = []
  const skipped: SkippedCheck[] = []
  const failedIds = new Set<string>()
  const emptyIds = new Set<string>()
  const reasons = new Map<string, string>()
  for (const c of checks) {
    const dep = c.dependsOn
    if (dep && (failedIds.has(dep) || emptyIds.has(dep)) && checks.some((x) => x.id === dep)) {
      skipped.push({ check: c.id, reason: reasons.get(dep) ?? (failedIds.has(dep) ? `${dep} failed` : `${dep} did not run`) })
      reasons.set(c.id, reasons.get(dep) ?? `${dep} failed`)
      if (failedIds.has(dep)) failedIds.add(c.id)
      else emptyIds.add(c.id)
      continue
    }
    onProgress?.(c.id)
    let out
    try {
      out = await c.run(ctx)
    } catch (e) {
      // No kubeconfig: a cluster check run without cluster.reachable (--only irt) is skipped too.
      if (!(e instanceof CheckSkipped) && e instanceof SeedopsError && e.code === 'KUBE_NO_CONFIG' && c.category === 'cluster' && !ctx.requireCluster) e = new CheckSkipped(`${e.message}: skipped`, 'no cluster configured')
      if (e instanceof CheckSkipped) {
        skipped.push({ check: c.id, reason: e.reason })
        emptyIds.add(c.id)
        reasons.set(c.id, e.dependentsReason)
        continue
      }
      const err = e instanceof SeedopsError ? e : new SeedopsError(e instanceof Error ? e.message : String(e), { code: 'INTERNAL' })
      out = [{ status: 'fail' as const, message: `${err.message}${err.code !== 'INTERNAL' ? ` (${err.code})` : ''}`, fix: err.suggestions }]
    }
    if (!out.length) {
      emptyIds.add(c.id)
      skipped.push({ check: c.id, reason: notConfigured(c.id) })
    }
    if (out.some((f) => f.status === 'fail')) failedIds.add(c.id)
    // No database configured: the database checks after it have nothing to look at.
    if (c.id === 'db.reachable' && out.some((f) => f.status !== 'ok')) {
      failedIds.add(c.id)
      if (out.every((f) => f.status !== 'fail')) reasons.set(c.id, 'no database configured')
    }
    for (const f of out) findings.push({ check: c.id, category: c.category, ...f })
  }
  const order = new Map(checks.map((c, i) => [c.id, i]))
  findings.sort((a, b) => RANK[a.status] - RANK[b.status] || order.get(a.check)! - order.get(b.check)!)
  const count = (s: DoctorStatus) => findings.filter((f) => f.status === s).length
  const ids = (s: DoctorStatus) => [...new Set(findings.filter((f) => f.status === s).map((f) => f.check))]
  return {
    namespace: ctx.namespace,
    findings: findings.map(redactFinding),
    skipped,
    summary: { fail: count('fail'), warn: count('warn'), ok: count('ok'), skipped: skipped.length, checks: checks.length, failedChecks: ids('fail'), warnedChecks: ids('warn').filter((i) => !ids('fail').includes(i)) },
  }
}

/** Last line of defence: whatever a server echoed back, a registered secret never leaves. */
function redactFinding(f: CheckFinding): CheckFinding {
  return { ...f, message: redact(f.message), ...(f.details ? { details: f.details.map((d) => redact(d)) } : {}), ...(f.fix ? { fix: f.fix.map((d) => redact(d)) } : {}) }
}

function notConfigured(id: string): string {
  if (id === 'storage.s3') return 'S3_BUCKET not set'
  if (id === 'irt.health') return 'R_IRT_BASE_URL not set'
  return 'nothing to check'
}

export function summaryLine(r: DoctorReport): string {
  const s = r.summary
  const plural = (n: number, w: string) => `${n} ${w}${n === 1 ? '' : 's'}`
  const skipped = s.skipped ? `, ${s.skipped} skipped` : ''
  if (!s.fail && !s.warn) return `No issues found: ${plural(s.ok, 'check')} ok${skipped}.`
  const cats = s.failedChecks.length + s.warnedChecks.length
  return `Found issues in ${plural(cats, 'check')}: ${plural(s.fail, 'failure')}, ${plural(s.warn, 'warning')}, ${s.ok} ok${skipped}.`
}

/** Human report: failures, then warnings, then ok, each with its cause and fix; the summary last. */
export function renderReport(r: DoctorReport): string {
  const tag = { fail: color.red('FAIL'), warn: color.yellow('WARN'), ok: color.green('ok  ') }
  const width = Math.max(16, ...r.findings.map((f) => f.check.length))
  const lines: string[] = []
  for (const f of r.findings) {
    lines.push(`${tag[f.status]}  ${f.check.padEnd(width)}  ${f.message}`)
    const pad = ' '.repeat(6 + width + 2)
    for (const d of f.details ?? []) lines.push(`${pad}${color.dim(d)}`)
    if (f.status !== 'ok') for (const [i, x] of (f.fix ?? []).entries()) lines.push(`${pad}${i === 0 ? 'fix: ' : '     '}${x}`)
    if (f.safeFix && f.status !== 'ok') lines.push(`${pad}${color.dim('(seedops doctor --fix applies this)')}`)
  }
  for (const s of r.skipped) lines.push(`${color.dim('skip')}  ${s.check.padEnd(width)}  ${color.dim(s.reason)}`)
  for (const x of r.fixes ?? []) lines.push(`${x.ok ? color.green('fixed') : color.red('fix failed')}: ${x.message}`)
  lines.push('', summaryLine(r))
  return redact(lines.join('\n')) + '\n'
}
