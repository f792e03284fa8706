import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'
import type { V1CronJob } from '@kubernetes/client-node'
import { describe, expect, it } from 'vitest'
import type { Db } from '../../src/lib/db/index.js'
import { expectedFor } from '../../src/lib/kube/expected.js'
import { cadenceOf, freshnessLimit, hasRunLog, lastFailures, lastRuns, lastSuccess, lastSuccesses, resolveCadences, runningRun, stageAsOf, stageCadences } from '../../src/lib/stages/run-log.js'
import { executeVerifyParts } from '../../src/lib/verify/command.js'
import { featuresGroup } from '../../src/lib/verify/features.js'
import { DB_KINDS, freshDatabase } from '../support/db.js'

const NOW = new Date('2026-11-21T09:00:00Z')
const hoursAgo = (h: number) => new Date(NOW.getTime() - h * 3_600_000)

async function run(db: Db, r: { stage: string; status: string; finished: Date | null; started?: Date; asOf?: string; dryRun?: boolean; params?: object; error?: string }) {
  await db.pool.query(
    `INSERT INTO seedops_stage_runs (stage, as_of, status, started_at, finished_at, dry_run, params, error) VALUES ($1, $2::date, $3, $4, $5, $6, $7::jsonb, $8)`,
    [r.stage, r.asOf ?? null, r.status, r.started ?? r.finished ?? NOW, r.finished, r.dryRun ?? false, JSON.stringify(r.params ?? {}), r.error ?? null],
  )
}

describe.each(DB_KINDS)('stage run log on %s', { timeout: 120_000 }, (kind) => {
  it('last success ignores dry runs, failures and runs still going; last run, failures and as-of per stage', async () => {
    const t = await freshDatabase(kind)
    const db = await t.open()
    try {
      expect(await hasRunLog(db.pool)).toBe(true)
      await run(db, { stage: 'compute-kpis', status: 'succeeded', finished: hoursAgo(30), asOf: '2026-11-20', params: { lookbackDays: 21 } })
      await run(db, { stage: 'compute-kpis', status: 'succeeded', finished: hoursAgo(5), asOf: '2026-11-21', dryRun: true })
      await run(db, { stage: 'compute-kpis', status: 'failed', finished: hoursAgo(3), asOf: '2026-11-21', error: 'boom' })
      await run(db, { stage: 'compute-kpis', status: 'running', finished: null, started: hoursAgo(1), asOf: '2026-11-21' })
      await run(db, { stage: 'aggregate-features', status: 'abandoned', finished: hoursAgo(2), asOf: '2026-11-21' })

      const s = await lastSuccess(db.pool, 'compute-kpis')
      expect(s).toMatchObject({ stage: 'compute-kpis', status: 'succeeded', asOf: '2026-11-20', dryRun: false, params: { lookbackDays: 21 } })
      expect(s!.finishedAt!.toISOString()).toBe(hoursAgo(30).toISOString())
      expect(await stageAsOf(db.pool, 'compute-kpis')).toBe('2026-11-20')
      expect(await lastSuccess(db.pool, 'aggregate-features')).toBeUndefined()
      expect(await stageAsOf(db.pool, 'aggregate-features')).toBeUndefined()

      const last = await lastRuns(db.pool)
      expect(last.get('compute-kpis')).toMatchObject({ status: 'running', finishedAt: null })
      // Who holds the stage lock (the runner names it when it refuses to run twice).
      expect(await runningRun(db.pool, 'compute-kpis', null)).toMatchObject({ status: 'running', asOf: '2026-11-21' })
      expect(await runningRun(db.pool, 'compute-kpis', 'shard-1')).toBeUndefined()
      expect(last.get('aggregate-features')).toMatchObject({ status: 'abandoned' })
      expect([...(await lastSuccesses(db.pool)).keys()]).toEqual(['compute-kpis'])
      const fails = await lastFailures(db.pool)
      expect(fails.get('compute-kpis')).toMatchObject({ status: 'failed', error: 'boom' })
      expect(fails.get('aggregate-features')).toMatchObject({ status: 'abandoned' })
      // Before seedops db migrate there is no log (status says so instead of failing).
      await db.pool.query('ALTER TABLE seedops_stage_runs RENAME TO seedops_stage_runs_gone')
      expect(await hasRunLog(db.pool)).toBe(false)
    } finally {
      await db.close()
    }
  })

  it('filters by as-of range and by params (a final whole-population KPI week, not a per-user run)', async () => {
    const t = await freshDatabase(kind)
    const db = await t.open()
    try {
      await run(db, { stage: 'compute-kpis', status: 'succeeded', finished: hoursAgo(50), asOf: '2026-11-15', params: { final: true, users: ['u1'] } })
      await run(db, { stage: 'compute-kpis', status: 'succeeded', finished: hoursAgo(40), asOf: '2026-11-16' })
      const final = { asOfFrom: '2026-11-15', asOfTo: '2026-11-15', params: { final: 'true', users: null } }
      expect(await lastSuccess(db.pool, 'compute-kpis', final)).toBeUndefined()
      await run(db, { stage: 'compute-kpis', status: 'succeeded', finished: hoursAgo(45), asOf: '2026-11-15', params: { final: true } })
      expect(await lastSuccess(db.pool, 'compute-kpis', final)).toMatchObject({ asOf: '2026-11-15', params: { final: true } })
      // The newest success overall is the 16th; the range picks the 15th.
      expect((await lastSuccess(db.pool, 'compute-kpis'))!.asOf).toBe('2026-11-16')
      expect((await lastSuccess(db.pool, 'compute-kpis', { asOfFrom: '2026-11-09', asOfTo: '2026-11-15' }))!.asOf).toBe('2026-11-15')
    } finally {
      await db.close()
    }
  })

  it('verify freshness: the limit comes from the deployed schedule, and --max-age-hours overrides it', async () => {
    const t = await freshDatabase(kind)
    const db = await t.open()
    try {
      await run(db, { stage: 'aggregate-features', status: 'succeeded', finished: hoursAgo(3), asOf: '2026-11-21' })
      const hourly = async (): Promise<V1CronJob[]> => [{ metadata: { name: 'aggregate-features', labels: { 'seedops.io/stage': 'aggregate-features' } }, spec: { schedule: '0 * * * *', jobTemplate: {} } }]
      const freshness = async (o: { maxAgeHours?: number; listCronJobs?: () => Promise<V1CronJob[]> }) =>
        (await executeVerifyParts([{ groups: [featuresGroup], stage: 'aggregate-features' }], { db, days: 7, now: NOW, ...o })).checks.find((c) => c.id === 'features.freshness')!
      // Hourly on the cluster: 1 h + 30 min grace, so 3 h is stale.
      expect(await freshness({ listCronJobs: hourly })).toMatchObject({ status: 'fail', numbers: { max_age_hours: 1.5, limit_from: 'cluster', last_success_age_hours: 3 } })
      // No cluster: the manifests' daily schedule, 26 h.
      const noCluster = async (): Promise<V1CronJob[]> => {
        throw new Error('no cluster')
      }
      expect(await freshness({ listCronJobs: noCluster })).toMatchObject({ status: 'ok', numbers: { max_age_hours: 26, limit_from: 'manifests' } })
      // The flag wins over either.
      expect(await freshness({ listCronJobs: hourly, maxAgeHours: 4 })).toMatchObject({ status: 'ok', numbers: { max_age_hours: 4, limit_from: 'flag' } })
      expect(await freshness({ listCronJobs: noCluster, maxAgeHours: 2 })).toMatchObject({ status: 'fail', numbers: { max_age_hours: 2, limit_from: 'flag' } })
    } finally {
      await db.close()
    }
  })
})

describe('cadence from a CronJob schedule', () => {
  const from = new Date('2026-11-18T12:00:00Z')
  it('daily, weekly, hourly and weekdays-only: the longest gap between fires plus the grace', () => {
    expect(cadenceOf('15 1 * * *', { from })).toMatchObject({ intervalHours: 24, maxAgeHours: 26, label: 'daily' })
    expect(cadenceOf('0 4 * * 1', { from })).toMatchObject({ intervalHours: 168, maxAgeHours: 192, label: 'weekly' })
    expect(cadenceOf('@weekly', { from })).toMatchObject({ intervalHours: 168, maxAgeHours: 192 })
    expect(cadenceOf('0 * * * *', { from })).toMatchObject({ intervalHours: 1, maxAgeHours: 1.5, label: 'hourly' })
    // Friday 06:00 to Monday 06:00 is the gap that matters.
    expect(cadenceOf('0 6 * * 1-5', { from })).toMatchObject({ intervalHours: 72, maxAgeHours: 96, label: 'other' })
    // Monthly: the horizon is passed by one more fire.
    expect(cadenceOf('0 3 1 * *', { from }).intervalHours).toBeGreaterThanOrEqual(28 * 24)
  })

  it("evaluated in the CronJob's timeZone: a daily run across the end of summer time is 25 h apart there, 24 h in UTC", () => {
    const beforeDst = new Date('2026-10-20T00:00:00Z')
    expect(cadenceOf('30 2 * * *', { from: beforeDst })).toMatchObject({ intervalHours: 24, maxAgeHours: 26 })
    expect(cadenceOf('30 2 * * *', { from: beforeDst, timeZone: 'Europe/Berlin' })).toMatchObject({ intervalHours: 25, timeZone: 'Europe/Berlin', label: 'other' })
  })

  it('from the deployed CronJob when there is one (by stage label or name), else from k8s/; none for update-theta', async () => {
    const expected = expectedFor({ namespace: 'seedtest' })
    const fromManifests = stageCadences(expected, undefined, from)
    expect([...fromManifests.keys()].sort()).toEqual(expected.map((e) => e.stage).filter((s) => s !== 'update-theta').sort())
    expect(fromManifests.get('generate-report')).toMatchObject({ source: 'manifests', label: 'weekly', maxAgeHours: 192 })
    expect(fromManifests.get('compute-kpis')).toMatchObject({ source: 'manifests', label: 'daily', maxAgeHours: 26 })

    const deployed: V1CronJob[] = [
      { metadata: { name: 'renamed', labels: { 'seedops.io/stage': 'compute-kpis' } }, spec: { schedule: '0 */6 * * *', timeZone: 'Etc/UTC', jobTemplate: {} } },
      { metadata: { name: 'generate-report' }, spec: { schedule: 'not a schedule', jobTemplate: {} } },
    ]
    const c = stageCadences(expected, deployed, from)
    expect(c.get('compute-kpis')).toMatchObject({ source: 'cluster', schedule: '0 */6 * * *', timeZone: 'Etc/UTC', intervalHours: 6, maxAgeHours: 6.5 })
    // A schedule cron-parser refuses (cronjobs.spec reports it) falls back to the shipped one.
    expect(c.get('generate-report')).toMatchObject({ source: 'manifests', maxAgeHours: 192 })
    expect(c.get('aggregate-features')).toMatchObject({ source: 'manifests' })
    // An unreachable cluster is the manifests.
    const down = await resolveCadences(expected, async () => Promise.reject(new Error('ECONNREFUSED')), from)
    expect(down.get('compute-kpis')).toMatchObject({ source: 'manifests', maxAgeHours: 26 })
  })

  it('an explicit limit overrides the cadence; without either, the fallback', () => {
    const daily = cadenceOf('15 1 * * *', { from, source: 'cluster' })
    expect(freshnessLimit(3, daily, 26)).toEqual({ maxAgeHours: 3, source: 'flag' })
    expect(freshnessLimit(undefined, daily, 99)).toEqual({ maxAgeHours: 26, source: 'cluster' })
    expect(freshnessLimit(undefined, undefined, 192)).toEqual({ maxAgeHours: 192, source: 'default' })
  })
})

describe('one reader of the stage run log', () => {
  it('no module but stages/run-log.ts reads seedops_stage_runs (the runner only writes it)', () => {
    const root = join(import.meta.dirname, '../../src')
    const files: string[] = []
    const walk = (d: string) => {
      for (const n of readdirSync(d)) {
        const p = join(d, n)
        if (statSync(p).isDirectory()) walk(p)
        else if (p.endsWith('.ts')) files.push(p)
      }
    }
    walk(root)
    expect(files.length).toBeGreaterThan(50)
    const readers = files.filter((f) => /\bFROM\s+seedops_stage_runs\b/i.test(readFileSync(f, 'utf8'))).map((f) => relative(root, f).split('\\').join('/'))
    expect(readers).toEqual(['lib/stages/run-log.ts'])
  })
})
