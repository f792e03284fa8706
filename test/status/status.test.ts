import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { lazyConnect } from '../../src/lib/kube/flags.js'
import { collectStatus, renderStatus } from '../../src/lib/status/index.js'
import { findResource, startStandin, type Standin } from '../support/kube-standin/index.js'
import { DB_KINDS, freshDatabase, type TestDatabase } from '../support/db.js'
import { runCli } from '../support/cli.js'
import { kubeEnv, seedManifests } from '../kube/helpers.js'

const NOW = new Date('2026-11-21T09:00:00Z')
let s: Standin
let deadKubeconfig: string

beforeAll(async () => {
  s = await startStandin()
  seedManifests(s)
  const store = s.api.store
  const rt = findResource('batch', 'v1', 'cronjobs')!
  const cj = store.get(rt, 'seedtest', 'compute-kpis')
  cj.status = { lastScheduleTime: '2026-11-21T02:10:00Z', lastSuccessfulTime: '2026-11-21T02:12:31Z', active: [{ kind: 'Job', name: 'compute-kpis-29000000', namespace: 'seedtest' }] }
  cj.spec.suspend = true
  store.update(rt, cj)
  deadKubeconfig = s.kubeconfigFor('admin-token', 'dead')
  writeFileSync(deadKubeconfig, readFileSync(deadKubeconfig, 'utf8').replace(/server: https:\/\/127\.0\.0\.1:\d+/, 'server: https://127.0.0.1:1'))
})
afterAll(() => s?.stop())

async function seedRuns(t: TestDatabase) {
  const db = await t.open()
  const ins = (stage: string, status: string, started: string, finished: string | null, rows: object | null, error: string | null = null, dry = false) =>
    db.pool.query(`INSERT INTO seedops_stage_runs (stage, as_of, status, started_at, finished_at, rows, error, dry_run) VALUES ($1, $2::date, $3, $4, $5, $6, $7, $8)`, [stage, started.slice(0, 10), status, started, finished, rows && JSON.stringify(rows), error, dry])
  await ins('aggregate-features', 'succeeded', '2026-11-20T01:15:00Z', '2026-11-20T01:15:42.5Z', { features_topic_daily: 18330 })
  await ins('aggregate-features', 'succeeded', '2026-11-21T01:15:00Z', '2026-11-21T01:16:02Z', { features_topic_daily: 18412 })
  await ins('compute-kpis', 'succeeded', '2026-11-20T02:10:00Z', '2026-11-20T02:11:00Z', { weekly_kpi: 1204 })
  await ins('compute-kpis', 'failed', '2026-11-21T02:10:00Z', '2026-11-21T02:10:05Z', null, 'cannot reach the database at db.internal:5432\n  at connect…')
  await db.close()
}

const status = (env: Record<string, string>, kubeconfig = s.kubeconfig) => {
  const conn = lazyConnect({ kubeconfig, namespace: 'seedtest', 'request-timeout': '5s' })
  return collectStatus({ namespace: conn.namespace, connect: conn.connect, env, now: NOW })
}

describe.each(DB_KINDS)('seedops status (%s)', { timeout: 120_000 }, (kind) => {
  test('CronJobs from the cluster and the stage run log from the database; each half alone when the other is unavailable', async () => {
    const t = await freshDatabase(kind)
    await seedRuns(t)
    const r = await status(t.env)
    expect(r.cluster.available).toBe(true)
    expect(r.cluster.rows.map((c) => c.name)).toEqual(['aggregate-features', 'calibrate-irt', 'compute-kpis', 'detect-inactivity', 'generate-report'])
    expect(r.cluster.rows.find((c) => c.name === 'compute-kpis')).toEqual({ name: 'compute-kpis', stage: 'compute-kpis', schedule: '10 2 * * *', suspended: true, lastScheduleTime: '2026-11-21T02:10:00.000Z', lastSuccessfulTime: '2026-11-21T02:12:31.000Z', active: 1 })
    expect(r.cluster.rows.find((c) => c.name === 'generate-report')).toMatchObject({ schedule: '0 4 * * 1', suspended: false, active: 0, lastScheduleTime: undefined })

    expect(r.database.available).toBe(true)
    const agg = r.database.rows.find((x) => x.stage === 'aggregate-features')!
    expect(agg.lastRun).toMatchObject({ status: 'succeeded', asOf: '2026-11-21', durationSeconds: 62, rows: { features_topic_daily: 18412 }, error: null })
    expect(agg.lastSuccess).toEqual({ asOf: '2026-11-21', finishedAt: '2026-11-21T01:16:02.000Z', ageSeconds: 7 * 3600 + 43 * 60 + 58 })
    const kpi = r.database.rows.find((x) => x.stage === 'compute-kpis')!
    expect(kpi.lastRun).toMatchObject({ status: 'failed', asOf: '2026-11-21', durationSeconds: 5, error: 'cannot reach the database at db.internal:5432' })
    expect(kpi.lastSuccess).toMatchObject({ asOf: '2026-11-20', ageSeconds: 30 * 3600 + 49 * 60 })
    expect(r.database.rows.find((x) => x.stage === 'calibrate-irt')).toEqual({ stage: 'calibrate-irt' })

    const text = renderStatus(r, NOW)
    expect(text).toMatch(/compute-kpis\s+10 2 \* \* \*\s+yes\s+6h50m ago\s+6h47m ago\s+1/)
    expect(text).toMatch(/compute-kpis\s+failed 6h50m ago\s+2026-11-21\s+5s\s+—\s+30h49m ago \(as of 2026-11-20\)\s+cannot reach the database at db\.internal:5432/)
    expect(text).toMatch(/aggregate-features\s+succeeded 7h45m ago\s+2026-11-21\s+62s\s+features_topic_daily=18,412\s+7h44m ago \(as of 2026-11-21\)/)
    expect(text).toMatch(/calibrate-irt\s+never\s+—\s+—\s+—\s+never/)

    // Only the database: the cluster half says why.
    const dbOnly = await status(t.env, deadKubeconfig)
    expect(dbOnly.cluster).toMatchObject({ available: false, code: 'KUBE_UNREACHABLE', reason: 'cannot reach the cluster at https://127.0.0.1:1 (ECONNREFUSED)' })
    expect(dbOnly.database.rows).toHaveLength(5)
    expect(renderStatus(dbOnly, NOW)).toContain('  unavailable: cannot reach the cluster at https://127.0.0.1:1 (ECONNREFUSED)')
  })
})

describe('seedops status (CLI)', { timeout: 120_000 }, () => {
  test('only the cluster: exit 0, the database half unavailable with the reason; neither: exit 1', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'status-nodb-'))
    const r = await runCli(['status', '--json'], { env: kubeEnv(s), cwd })
    expect(r.code).toBe(0)
    const doc = JSON.parse(r.stdout)
    expect(doc.result.cluster.rows).toHaveLength(5)
    expect(doc.result.database).toEqual({ available: false, reason: 'no database configured (set DATABASE_URL or pass --database-url)', code: 'DB_NOT_CONFIGURED', rows: [] })
    expect(doc.warnings).toEqual(['database unavailable: no database configured (set DATABASE_URL or pass --database-url)'])

    const none = await runCli(['status'], { env: { KUBECONFIG: deadKubeconfig }, cwd })
    expect(none.code).toBe(1)
    expect(none.stderr).toContain('Error (STATUS_UNAVAILABLE): neither the cluster nor the database is available: cluster: cannot reach the cluster at https://127.0.0.1:1 (ECONNREFUSED); database: no database configured')
  })
})
