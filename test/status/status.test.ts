import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { lazyConnect } from '../../src/lib/kube/connect.js'
import { collectStatus, renderStatus } from '../../src/lib/status/index.js'
import { findResource, startStandin, type Standin } from '../support/kube-standin/index.js'
import { DB_KINDS, freshDatabase, type TestDatabase } from '../support/db.js'
import { runCli } from '../support/cli.js'
import { clientsFor, kubeEnv, seedManifests } from '../kube/helpers.js'

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
  const conn = lazyConnect({ kubeconfig, namespace: 'seedtest', requestTimeout: '5s' })
  return collectStatus({ namespace: conn.namespace, connect: conn.connect, env, now: NOW })
}

describe.each(DB_KINDS)('seedops status (%s)', { timeout: 120_000 }, (kind) => {
  test('CronJobs from the cluster and the stage run log from the database; each half alone when the other is unavailable', async () => {
    const t = await freshDatabase(kind)
    await seedRuns(t)
    const r = await status(t.env)
    expect(r.cluster.available).toBe(true)
    expect(r.cluster.rows.map((c) => c.name)).toEqual(['aggregate-features', 'calibrate-irt', 'compute-kpis', 'detect-inactivity', 'generate-report'])
    expect(r.cluster.rows.find((c) => c.name === 'compute-kpis')).toEqual({ name: 'compute-kpis', stage: 'compute-kpis', schedule: '10 2 * * *', timeZone: 'Etc/UTC', suspended: true, lastScheduleTime: '2026-11-21T02:10:00.000Z', lastSuccessfulTime: '2026-11-21T02:12:31.000Z', active: 1 })
    expect(r.cluster.rows.find((c) => c.name === 'generate-report')).toMatchObject({ schedule: '0 4 * * 1', suspended: false, active: 0, lastScheduleTime: undefined })

    expect(r.database.available).toBe(true)
    const agg = r.database.rows.find((x) => x.stage === 'aggregate-features')!
    expect(agg.lastRun).toMatchObject({ status: 'succeeded', asOf: '2026-11-21', durationSeconds: 62, rows: { features_topic_daily: 18412 }, error: null })
    // Fresh against its daily schedule (24 h + 2 h grace); compute-kpis' last success is not.
    expect(agg.lastSuccess).toEqual({ asOf: '2026-11-21', finishedAt: '2026-11-21T01:16:02.000Z', ageSeconds: 7 * 3600 + 43 * 60 + 58, maxAgeHours: 26, stale: false })
    const kpi = r.database.rows.find((x) => x.stage === 'compute-kpis')!
    expect(kpi.lastRun).toMatchObject({ status: 'failed', asOf: '2026-11-21', durationSeconds: 5, error: 'cannot reach the database at db.internal:5432' })
    expect(kpi.lastSuccess).toMatchObject({ asOf: '2026-11-20', ageSeconds: 30 * 3600 + 49 * 60, maxAgeHours: 26, stale: true })
    expect(r.database.rows.find((x) => x.stage === 'calibrate-irt')).toEqual({ stage: 'calibrate-irt' })

    const text = renderStatus(r, NOW)
    expect(text).toMatch(/compute-kpis\s+10 2 \* \* \*\s+yes\s+6h50m ago\s+6h47m ago\s+1/)
    expect(text).toMatch(/compute-kpis\s+failed 6h50m ago\s+2026-11-21\s+5s\s+—\s+30h49m ago \(as of 2026-11-20\), stale \(> 26 h\)\s+cannot reach the database at db\.internal:5432/)
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

describe('seedops status: the IRT service', { timeout: 120_000 }, () => {
  test('seedops-irt and the predecessor\'s r-irt-plumber beside the CronJobs: ready/desired replicas, restarts summed over their pods, image', async () => {
    const k = clientsFor(s)
    const t = await freshDatabase(DB_KINDS[0]!)
    await seedRuns(t)
    // The image the production overlay pins (k8s/overlays/production).
    const image = (await k.apps.readNamespacedDeployment({ name: 'seedops-irt', namespace: 'seedtest' })).spec!.template.spec!.containers[0]!.image!
    expect(image).toMatch(/seedops:/)
    // Deployed, no controller has reported on it yet: 0 of 1 ready, no pods.
    const fresh = await status(t.env)
    expect(fresh.irt).toMatchObject({ available: true, rows: [{ name: 'seedops-irt', role: 'seedops', desired: 1, ready: 0, restarts: 0, pods: 0, image }] })
    expect(renderStatus(fresh, NOW)).toMatch(/IRT service in seedtest\n\s*DEPLOYMENT\s+READY\s+UP-TO-DATE\s+AVAILABLE\s+RESTARTS\s+IMAGE\s*\n\s*seedops-irt\s+0\/1\s+0\s+0\s+0\s+\S*seedops:/)

    // The predecessor's R Plumber Deployment, still there and crash-looping.
    await k.apps.createNamespacedDeployment({
      namespace: 'seedtest',
      body: {
        metadata: { name: 'r-irt-plumber', labels: { app: 'r-irt-plumber' } },
        spec: {
          replicas: 1,
          selector: { matchLabels: { app: 'r-irt-plumber' } },
          template: { metadata: { labels: { app: 'r-irt-plumber' } }, spec: { containers: [{ name: 'r-irt-plumber', image: 'gcr.io/univprepai/r-irt-plumber:1.0.0', ports: [{ containerPort: 8000 }] }] } },
        },
      },
    })
    // Pods as the ReplicaSet controller would make them, their status as the kubelet reports it (status subresource).
    const pod = async (name: string, labels: Record<string, string>, image: string, restarts: number[]) => {
      const containers = restarts.map((_, i) => ({ name: `c${i}`, image }))
      const p = await k.core.createNamespacedPod({ namespace: 'seedtest', body: { metadata: { name, labels }, spec: { containers } } })
      p.status = { phase: 'Running', containerStatuses: restarts.map((n, i) => ({ name: `c${i}`, image, imageID: '', ready: n === 0, restartCount: n, started: true, state: { running: { startedAt: new Date('2026-11-21T08:00:00Z') } } })) }
      await k.core.replaceNamespacedPodStatus({ name, namespace: 'seedtest', body: p })
    }
    const irtLabels = { 'app.kubernetes.io/name': 'seedops', 'app.kubernetes.io/component': 'irt' }
    await pod('seedops-irt-7d9f-abcde', irtLabels, image, [2])
    await pod('seedops-irt-7d9f-fghij', irtLabels, image, [0, 1])
    await pod('r-irt-plumber-5c4-xyz12', { app: 'r-irt-plumber' }, 'gcr.io/univprepai/r-irt-plumber:1.0.0', [7])
    // Another workload's pod in the namespace: its restarts are not the service's.
    await pod('compute-kpis-29000000-q1w2e', { 'app.kubernetes.io/name': 'seedops', 'app.kubernetes.io/component': 'stage' }, image, [5])
    const setStatus = async (name: string, st: { replicas: number; updatedReplicas: number; readyReplicas: number; availableReplicas: number }) => {
      const d = await k.apps.readNamespacedDeployment({ name, namespace: 'seedtest' })
      d.status = { observedGeneration: 1, ...st }
      await k.apps.replaceNamespacedDeploymentStatus({ name, namespace: 'seedtest', body: d })
    }
    await setStatus('seedops-irt', { replicas: 1, updatedReplicas: 1, readyReplicas: 1, availableReplicas: 1 })
    await setStatus('r-irt-plumber', { replicas: 1, updatedReplicas: 1, readyReplicas: 0, availableReplicas: 0 })

    const r = await status(t.env)
    expect(r.irt.rows).toEqual([
      { name: 'seedops-irt', role: 'seedops', desired: 1, ready: 1, updated: 1, available: 1, restarts: 3, pods: 2, image },
      { name: 'r-irt-plumber', role: 'predecessor', desired: 1, ready: 0, updated: 1, available: 0, restarts: 7, pods: 1, image: 'gcr.io/univprepai/r-irt-plumber:1.0.0' },
    ])
    const text = renderStatus(r, NOW)
    expect(text).toMatch(new RegExp(`seedops-irt\\s+1/1\\s+1\\s+1\\s+3\\s+${image.replace(/[.]/g, '\\.')}\\s*\\n`))
    expect(text).toMatch(/r-irt-plumber \(predecessor\)\s+0\/1\s+1\s+0\s+7\s+gcr\.io\/univprepai\/r-irt-plumber:1\.0\.0/)
    // Beside the CronJobs and the run log.
    expect(text.indexOf('CronJobs in seedtest')).toBeLessThan(text.indexOf('IRT service in seedtest'))
    expect(text.indexOf('IRT service in seedtest')).toBeLessThan(text.indexOf('Stage runs'))

    // The CLI, as the operator (k8s/base/rbac-operator.yaml: its Role lists deployments and pods).
    s.api.addToken('operator-token', 'system:serviceaccount:seedtest:seedops-operator')
    const cli = await runCli(['status', '--json', '-n', 'seedtest'], { env: { ...kubeEnv(s, s.kubeconfigFor('operator-token', 'operator')), ...t.env } })
    expect(cli.code, cli.stderr).toBe(0)
    const doc = JSON.parse(cli.stdout)
    expect(doc.result.irt, cli.stdout).toMatchObject({ available: true })
    expect(doc.result.irt.rows.map((x: { name: string; ready: number; desired: number; restarts: number }) => [x.name, `${x.ready}/${x.desired}`, x.restarts])).toEqual([['seedops-irt', '1/1', 3], ['r-irt-plumber', '0/1', 7]])
    expect(doc.result.cluster.rows).toHaveLength(5)
    expect(doc.result.database.available).toBe(true)

    // No cluster: the IRT half is unavailable too, said once.
    const dbOnly = await status(t.env, deadKubeconfig)
    expect(dbOnly.irt).toMatchObject({ available: false, code: 'KUBE_UNREACHABLE' })
    expect(renderStatus(dbOnly, NOW)).toContain('IRT service in seedtest\n  unavailable (the cluster, above)')
  })
})
