import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { DeleteObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3'
import { envFirst, seedopsHome } from '../config/index.js'
import { redactUrl } from '../db/index.js'
import { migrationStatus } from '../db/migrate.js'
import { redact, registerSecret, translateError } from '../errors/index.js'
import { createS3Client, describeStoreConfig, resolveStoreConfig, translateS3Error } from '../storage/index.js'
import type { V1CronJob } from '@kubernetes/client-node'
import { ageHours, lastFailures, lastSuccesses, stageCadences } from '../stages/run-log.js'
import type { DoctorCheck, DoctorContext, Finding } from './types.js'

/** Where the database is when one is configured: --database-url / DATABASE_URL, or an embedded data folder that already exists. */
export function dbTarget(flagUrl: string | undefined, env: NodeJS.ProcessEnv): { url?: string; home?: string; display: string } | undefined {
  const url = flagUrl ?? (env.DATABASE_URL || undefined)
  if (url) return { url, display: redactUrl(url) }
  const home = seedopsHome(env)
  if ((env.SEEDOPS_HOME && env.SEEDOPS_HOME !== '') || existsSync(join(home, 'pgdata'))) return { home, display: `embedded (${join(home, 'pgdata')})` }
  return undefined
}

export const dbReachable: DoctorCheck = {
  id: 'db.reachable',
  group: 'database',
  description: 'The database answers (DATABASE_URL or --database-url)',
  slow: true,
  // No database configured (a warning): the database checks after it have nothing to look at.
  blocksDependents: (out) => (out.some((f) => f.status === 'fail') ? 'db.reachable failed' : out.some((f) => f.status !== 'ok') ? 'no database configured' : undefined),
  async run(ctx) {
    let db
    try {
      db = await ctx.db()
    } catch (e) {
      const err = translateError(e)
      return [{ status: 'fail', message: `cannot open ${ctx.dbTarget ?? 'the database'}: ${err.message}`, fix: err.suggestions.length ? err.suggestions : ['Check DATABASE_URL (secret seedtest-db-credentials)'] }]
    }
    if (!db) {
      return [{ status: ctx.requireDb ? 'fail' : 'warn', message: 'no database configured: database checks skipped', fix: ['Set DATABASE_URL (or pass --database-url) to check the database', ...(ctx.requireDb ? [] : ['--require-db makes this a failure'])] }]
    }
    try {
      const r = await db.pool.query<{ v: string }>('SELECT current_setting(\'server_version\') AS v')
      return [{ status: 'ok', message: `${db.target} answers (PostgreSQL ${r.rows[0]?.v})` }]
    } catch (e) {
      const err = translateError(e)
      return [{ status: 'fail', message: `${db.target}: ${err.message}`, fix: err.suggestions }]
    }
  },
}

export const dbSchema: DoctorCheck = {
  id: 'db.schema',
  group: 'database',
  description: "seedops' schema version is current (seedops db migrate applied)",
  slow: true,
  dependsOn: 'db.reachable',
  async run(ctx) {
    const db = await ctx.db()
    if (!db) return []
    const st = await migrationStatus(db)
    if (st.current) return [{ status: 'ok', message: `schema at ${st.version} (current)` }]
    return [{ status: 'fail', message: `schema is behind: version ${st.version ?? 'none'}, ${st.pending.length} pending (${st.pending.join(', ')})`, fix: [`seedops db migrate${ctx.dbTarget ? '' : ''}`] }]
  },
}

export function age(ms: number): string {
  const m = Math.round(ms / 60_000)
  if (m < 60) return `${m}m`
  const h = Math.floor(m / 60)
  if (h < 48) return `${h}h${m % 60 ? `${String(m % 60).padStart(2, '0')}m` : ''}`
  const d = Math.floor(h / 24)
  return `${d}d${h % 24 ? `${h % 24}h` : ''}`
}

/**
 * The deployed CronJobs when this run already read the cluster (the cluster checks ran), else
 * undefined: cadences then come from k8s/, and `--only db` never waits on a cluster.
 */
async function deployedCronJobs(ctx: DoctorContext): Promise<V1CronJob[] | undefined> {
  return (await ctx.clusterIfRead().catch(() => undefined))?.cronjobs
}

export const dbFreshness: DoctorCheck = {
  id: 'db.freshness',
  group: 'database',
  description: "Each scheduled stage's last successful run is fresh: younger than the interval of its CronJob schedule plus a grace (daily 26 h, weekly 192 h)",
  slow: true,
  dependsOn: 'db.schema',
  async run(ctx) {
    const db = await ctx.db()
    if (!db) return []
    const last = await lastSuccesses(db.pool)
    const failed = await lastFailures(db.pool)
    const cadences = stageCadences(ctx.expected, await deployedCronJobs(ctx), ctx.now)
    const out: Finding[] = []
    const ns = ctx.namespace
    for (const e of ctx.expected) {
      const cad = cadences.get(e.stage)
      if (!cad) continue
      const l = last.get(e.stage)
      const fl = failed.get(e.stage)
      const lastFail = fl && (!l?.finishedAt || fl.startedAt > l.finishedAt) ? ` — last run failed: ${redact(String(fl.error ?? '').split('\n')[0])}` : ''
      const fix = [`seedops jobs trigger ${e.name} -n ${ns} --wait`, `or locally: seedops run ${e.stage}`]
      const limit = cad.maxAgeHours
      const numbers = { max_age_hours: limit, interval_hours: cad.intervalHours, schedule: cad.schedule, limit_from: cad.source, last_success_age_hours: ageHours(l, ctx.now), last_as_of: l?.asOf ?? null }
      if (!l?.finishedAt) {
        out.push({ status: 'warn', subject: e.stage, message: `stage ${e.stage} has no successful run recorded${lastFail}`, fix, numbers })
        continue
      }
      const ms = ctx.now.getTime() - l.finishedAt.getTime()
      if (ms > limit * 3_600_000) {
        out.push({ status: 'fail', subject: e.stage, message: `stage ${e.stage} is stale: last success ${age(ms)} ago (as of ${l.asOf ?? '?'}), ${cad.label} limit ${limit} h${lastFail}`, fix, numbers })
      } else {
        out.push({ status: 'ok', subject: e.stage, message: `stage ${e.stage}: last success ${age(ms)} ago (as of ${l.asOf ?? '?'})${lastFail}`, numbers })
      }
    }
    return out
  },
}

export const storageS3: DoctorCheck = {
  id: 'storage.s3',
  group: 'storage',
  description: 'The object store (S3_BUCKET) is reachable and writable: put and delete a probe object',
  slow: true,
  async run(ctx) {
    const env = ctx.env
    if (!envFirst(['S3_BUCKET'], env)) return []
    const cfg = resolveStoreConfig({ store: 's3' }, env)
    if (cfg.kind !== 's3') return []
    const client = createS3Client(cfg, env, { maxAttempts: 2, requestTimeoutMs: 20_000 })
    const key = `.seedops-doctor/probe-${randomBytes(6).toString('hex')}`
    const where = describeStoreConfig(cfg)
    try {
      try {
        await client.send(new PutObjectCommand({ Bucket: cfg.bucket, Key: key, Body: 'seedops doctor probe\n', ContentType: 'text/plain' }))
      } catch (e) {
        const err = translateS3Error(e, { bucket: cfg.bucket, endpoint: cfg.endpoint, op: 'put', key })
        return [{ status: 'fail', message: `${where}: ${err.message}`, fix: err.suggestions }]
      }
      try {
        await client.send(new DeleteObjectCommand({ Bucket: cfg.bucket, Key: key }))
      } catch (e) {
        const err = translateS3Error(e, { bucket: cfg.bucket, endpoint: cfg.endpoint, op: 'delete', key })
        return [{ status: 'warn', message: `${where}: writable, but deleting the probe ${key} failed: ${err.message}`, fix: err.suggestions }]
      }
      return [{ status: 'ok', message: `${where} writable (probe object put and deleted)` }]
    } finally {
      client.destroy()
    }
  },
}

export const irtHealth: DoctorCheck = {
  id: 'irt.health',
  group: 'irt',
  description: 'The R IRT service (R_IRT_BASE_URL) answers GET /healthz with the bearer token',
  slow: true,
  async run(ctx) {
    const base = envFirst(['R_IRT_BASE_URL'], ctx.env)?.value
    if (!base) return []
    const token = envFirst(['R_IRT_INTERNAL_TOKEN', 'IRT_TOKEN'], ctx.env)?.value
    registerSecret(token)
    let url: URL
    try {
      url = new URL('healthz', base.endsWith('/') ? base : base + '/')
    } catch {
      return [{ status: 'fail', message: `R_IRT_BASE_URL ${JSON.stringify(base)} is not a URL`, fix: ['Set R_IRT_BASE_URL to e.g. http://irt-service.seedtest.svc:8000'] }]
    }
    const timeoutMs = Number(ctx.env.SEEDOPS_IRT_TIMEOUT_MS ?? 5000)
    const t0 = Date.now()
    try {
      const res = await fetch(url, { headers: token ? { Authorization: `Bearer ${token}` } : {}, signal: AbortSignal.timeout(timeoutMs) })
      await res.text().catch(() => '')
      const ms = Date.now() - t0
      if (res.ok) return [{ status: 'ok', message: `${url.origin} healthy (HTTP ${res.status}, ${ms} ms)` }]
      if (res.status === 401 || res.status === 403) {
        return [{ status: 'fail', message: `${url.origin} rejected the token (HTTP ${res.status})${token ? '' : ': R_IRT_INTERNAL_TOKEN is not set'}`, fix: ['Set R_IRT_INTERNAL_TOKEN to the service token', `Sync the cluster secret: seedops secrets ensure --only irt --update -n ${ctx.namespace}`] }]
      }
      return [{ status: 'fail', message: `${url.origin}/healthz answered HTTP ${res.status}`, fix: [`${`kubectl -n ${ctx.namespace}`} logs deploy/irt-service --tail 50`] }]
    } catch (e) {
      const err = e as Error & { cause?: { code?: string; message?: string; errors?: { code?: string }[] } }
      const why = err.name === 'TimeoutError' || err.name === 'AbortError' ? `no answer within ${timeoutMs} ms` : (err.cause?.code ?? err.cause?.errors?.[0]?.code ?? err.cause?.message ?? err.message)
      return [{ status: 'fail', message: `${url.origin} unreachable: ${why}`, fix: [`Check R_IRT_BASE_URL (${url.origin}) and that the service runs: kubectl -n ${ctx.namespace} get deploy,pods -l app.kubernetes.io/name=irt-service`, 'Or calibrate with the native engine (the default) and unset R_IRT_BASE_URL'] }]
    }
  },
}

export const SERVICE_CHECKS: DoctorCheck[] = [dbReachable, dbSchema, dbFreshness, storageS3, irtHealth]

