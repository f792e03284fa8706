import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { legacyStageOf } from '../../src/lib/adopt/index.js'
import { loadManifests } from '../../src/lib/kube/manifests.js'
import { findResource, startStandin, type Standin } from '../support/kube-standin/index.js'
import { runCli } from '../support/cli.js'
import { namespaceVersions, PREDECESSOR_SECRET_VALUES, seedPredecessorNamespace, type Planted } from '../support/predecessor-namespace.js'

const IMAGE = 'registry.example/seedops:1.4.0'
const STAGE_CRONJOBS = ['aggregate-features', 'compute-kpis', 'calibrate-irt', 'generate-report', 'detect-inactivity']
const LEGACY = ['aggregate-features-daily', 'aggregate-features-daily-r', 'calibrate-irt-weekly', 'compute-daily-kpis', 'detect-inactivity', 'fit-bayesian-growth', 'generate-weekly-report', 'mirt-calibrate']
const R = {
  cronjobs: () => findResource('batch', 'v1', 'cronjobs')!,
  secrets: () => findResource('', 'v1', 'secrets')!,
  configmaps: () => findResource('', 'v1', 'configmaps')!,
  services: () => findResource('', 'v1', 'services')!,
  deployments: () => findResource('apps', 'v1', 'deployments')!,
}

let s: Standin
const planted: Record<string, Planted[]> = {}

/** The predecessor's namespace, with seedops' ServiceAccounts and Roles applied by an admin, and a token for each identity. */
function prepare(ns: string) {
  planted[ns] = seedPredecessorNamespace(s, ns)
  for (const o of loadManifests({ namespace: ns }).filter((x) => ['ServiceAccount', 'Role', 'RoleBinding'].includes(x.kind))) s.seed(o)
  s.api.addToken(`operator-${ns}`, `system:serviceaccount:${ns}:seedops-operator`)
  s.api.addToken(`doctor-${ns}`, `system:serviceaccount:${ns}:seedops-doctor`)
}
const asOperator = (ns: string) => ({ KUBECONFIG: s.kubeconfigFor(`operator-${ns}`, `operator-${ns}`), SEEDOPS_KUBE_POLL_MS: '100' })
const adopt = (ns: string, ...args: string[]) => runCli(['adopt', '-n', ns, ...args], { env: asOperator(ns) })

/** Every fixture secret value, plain and base64, found in the text. */
function leaks(text: string): string[] {
  const values = [...Object.values(PREDECESSOR_SECRET_VALUES), 'Pred-Db-Pa55-fixture']
  return [...values, ...values.map((v) => Buffer.from(v).toString('base64'))].filter((v) => text.includes(v))
}
const secretValue = (ns: string, name: string, key: string) => {
  const v = s.api.store.get(R.secrets(), ns, name)?.data?.[key]
  return v === undefined ? undefined : Buffer.from(v, 'base64').toString('utf8')
}
const cronjob = (ns: string, name: string) => s.api.store.get(R.cronjobs(), ns, name)
const legacySpecs = (ns: string) => Object.fromEntries(LEGACY.map((n) => [n, { spec: cronjob(ns, n).spec, labels: cronjob(ns, n).metadata.labels, annotations: cronjob(ns, n).metadata.annotations }]))
const operatorForbidden = (ns: string) => s.api.requests.filter((r) => r.user === `system:serviceaccount:${ns}:seedops-operator` && r.status === 403)

beforeAll(async () => {
  s = await startStandin()
  s.controller.script = (job) => ({ outcome: { kind: 'succeed' }, logs: [`${job.metadata.name}: done`], startDelayMs: 20, lineDelayMs: 5 })
  prepare('seedtest')
  prepare('legacy2')
})
afterAll(() => s?.stop())

describe('seedops adopt on the predecessor namespace', { timeout: 300_000 }, () => {
  test('the fixture plants every known problem', () => {
    expect(planted.seedtest.map((p) => p.problem).sort()).toEqual(['duplicate-cronjob', 'duplicate-cronjob', 'missing-secret', 'networkpolicy-port-mismatch', 'oom-killed', 'secret-wrong-name', 'sidecar-never-exits', 'wrong-image', 'wrong-module'])
    expect(s.api.store.get(R.secrets(), 'seedtest', 'r-irt-credentials')).toBeUndefined()
    const pods = s.api.store.list(findResource('', 'v1', 'pods')!, 'seedtest')
    expect(pods.flatMap((p) => p.status.containerStatuses.map((c: any) => c.state.terminated?.reason ?? c.state.waiting?.reason ?? 'Running')).sort()).toEqual(['Completed', 'Error', 'Error', 'ImagePullBackOff', 'OOMKilled', 'Running', 'Running', 'Running'])
  })

  test('a CronJob maps to its stage by label, name or python module path', () => {
    const stages = STAGE_CRONJOBS
    const cj = (name: string, command: string[], labels?: Record<string, string>) => ({ apiVersion: 'batch/v1', kind: 'CronJob', metadata: { name, labels }, spec: { jobTemplate: { spec: { template: { spec: { containers: [{ name: 'x', command }] } } } } } })
    expect(legacyStageOf(cj('nightly', ['/bin/sh', '-c', 'sleep 5\npython3 -m seedtest_api.jobs.compute_daily_kpis\n']), stages)).toEqual({ stage: 'compute-kpis', by: 'module' })
    expect(legacyStageOf(cj('weekly', ['python3', '/app/generate_weekly_report.py', '--dry-run']), stages)).toEqual({ stage: 'generate-report', by: 'module' })
    expect(legacyStageOf(cj('mirt-calibrate', []), stages)).toEqual({ stage: 'calibrate-irt', by: 'name' })
    expect(legacyStageOf(cj('x', [], { 'seedops.io/stage': 'detect-inactivity' }), stages)).toEqual({ stage: 'detect-inactivity', by: 'label' })
    expect(legacyStageOf(cj('fit-bayesian-growth', ['python3', '-m', 'apps.seedtest_api.jobs.fit_bayesian_growth']), stages)).toBeUndefined()
  })

  test('plan (as the operator): every mapping is a row, nothing changes, no value is printed', async () => {
    const before = namespaceVersions(s, 'seedtest')
    const human = await adopt('seedtest')
    expect(human.stderr).not.toContain('Error')
    expect(human.code).toBe(0)
    const json = await adopt('seedtest', '--json')
    expect(json.code).toBe(0)
    expect(namespaceVersions(s, 'seedtest')).toEqual(before)
    expect(leaks(human.stdout + human.stderr + json.stdout + json.stderr)).toEqual([])
    expect(human.stdout).not.toContain('ap-northeast-2')
    const rows = JSON.parse(json.stdout).result.rows as { legacy: string; seedops: string; action: string; note: string }[]
    const row = (legacy: string, seedops?: string) => rows.find((r) => r.legacy === legacy && (!seedops || r.seedops === seedops))
    expect(row('CronJob/aggregate-features-daily')).toMatchObject({ seedops: 'CronJob/aggregate-features', action: 'suspend', note: expect.stringContaining('schedule "25 2 * * *" kept') })
    expect(row('CronJob/aggregate-features-daily-r')).toMatchObject({ seedops: 'CronJob/aggregate-features', action: 'record', note: expect.stringContaining('already suspended') })
    expect(row('CronJob/compute-daily-kpis')).toMatchObject({ seedops: 'CronJob/compute-kpis', action: 'suspend' })
    expect(row('CronJob/calibrate-irt-weekly')).toMatchObject({ seedops: 'CronJob/calibrate-irt', action: 'suspend' })
    expect(row('CronJob/mirt-calibrate')).toMatchObject({ seedops: 'CronJob/calibrate-irt', action: 'suspend' })
    expect(row('CronJob/generate-weekly-report')).toMatchObject({ seedops: 'CronJob/generate-report', action: 'suspend' })
    expect(row('CronJob/detect-inactivity')).toMatchObject({ seedops: 'CronJob/detect-inactivity', action: 'replace' })
    expect(row('CronJob/fit-bayesian-growth')).toMatchObject({ seedops: '—', action: 'none', note: 'not a seedops stage, left alone' })
    for (const c of ['aggregate-features', 'compute-kpis', 'calibrate-irt', 'generate-report']) expect(row('—', `CronJob/${c}`)).toMatchObject({ action: 'create' })
    expect(row('—', 'Deployment/seedops-irt')).toMatchObject({ action: 'create' })
    expect(row('Secret/calibrate-irt-credentials[R_IRT_INTERNAL_TOKEN]')).toMatchObject({ seedops: 'Secret/r-irt-credentials[token]', action: 'copy', note: 'value not shown' })
    expect(row('CronJob/generate-weekly-report env AWS_REGION')).toMatchObject({ seedops: 'ConfigMap/report-config[AWS_REGION]', action: 'add-key' })
    expect(row('CronJob/generate-weekly-report env REPORT_FORMAT')).toMatchObject({ seedops: 'ConfigMap/report-config[REPORT_FORMAT]', action: 'add-key' })
    expect(row('Secret/seedtest-irt-credentials[R_IRT_BASE_URL]')).toMatchObject({ action: 'none', note: expect.stringContaining('not copied') })
    expect(row('Service/r-irt-plumber')).toMatchObject({ seedops: 'Deployment/seedops-irt', action: 'retarget', note: expect.stringContaining('selector app=r-irt-plumber → seedops irt pods; ports 80→8000') })
    expect(row('—', 'Secret/seedtest-db-credentials')).toMatchObject({ action: 'none', note: 'present (DATABASE_URL)' })
    expect(row('—', 'ServiceAccounts, Roles, RoleBindings')).toMatchObject({ action: 'none' })
    expect(JSON.parse(json.stdout).result.changes).toBe(rows.filter((r) => !['none', 'missing'].includes(r.action)).length)
    // The table as printed.
    expect(human.stdout).toMatch(/LEGACY\s+SEEDOPS\s+ACTION\s+NOTE/)
    expect(human.stdout).toMatch(/CronJob\/mirt-calibrate\s+CronJob\/calibrate-irt\s+suspend/)
    expect(human.stderr).toContain('change(s) planned in seedtest. Apply them: seedops adopt --yes -n seedtest')
    console.log(human.stdout)
  })

  test('usage: --yes with --rollback is exit 2; a read-only identity is told which verbs it lacks', async () => {
    const both = await adopt('seedtest', '--yes', '--rollback')
    expect(both.code).toBe(2)
    expect(both.stderr).toContain('--yes and --rollback cannot be combined')
    const before = namespaceVersions(s, 'seedtest')
    // An identity that may read everything adopt reads but write nothing: the plan works, --yes names each missing verb.
    s.seed({ apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: { name: 'reader', namespace: 'seedtest' }, rules: [{ apiGroups: ['', 'apps', 'batch', 'rbac.authorization.k8s.io'], resources: ['*'], verbs: ['get', 'list'] }] })
    s.seed({ apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: { name: 'reader', namespace: 'seedtest' }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'reader' }, subjects: [{ kind: 'User', name: 'reader' }] })
    s.api.addToken('reader-token', 'reader')
    const readerEnv = { KUBECONFIG: s.kubeconfigFor('reader-token', 'reader') }
    expect((await runCli(['adopt', '-n', 'seedtest'], { env: readerEnv })).code).toBe(0)
    const ro = await runCli(['adopt', '-n', 'seedtest', '--yes'], { env: readerEnv })
    expect(ro.code).toBe(1)
    expect(ro.stderr).toMatch(/Error \(KUBE_FORBIDDEN\): seedops adopt --yes needs permissions .* patch cronjobs\.batch "mirt-calibrate" \(suspend the legacy CronJob\)/)
    expect(ro.stderr).toContain('kubectl auth can-i create secrets -n seedtest')
    expect(namespaceVersions(s, 'seedtest')).toEqual(before)
    const doc = await runCli(['adopt', '-n', 'seedtest'], { env: { KUBECONFIG: s.kubeconfigFor('doctor-seedtest', 'doctor-seedtest') } })
    expect(doc.code).toBe(1)
    expect(doc.stderr).toContain('Error (KUBE_FORBIDDEN): not allowed to get configmaps "seedops-adoption" in namespace seedtest')
  })

  test('--yes: seedops deployed with the image, legacy suspended, secrets copied with their values, the alias set; nothing printed', async () => {
    const fitRv = cronjob('seedtest', 'fit-bayesian-growth').metadata.resourceVersion
    const r = await adopt('seedtest', '--yes', '--image', IMAGE)
    expect(r.stderr).not.toContain('Error')
    expect(r.code).toBe(0)
    expect(leaks(r.stdout + r.stderr)).toEqual([])
    expect(operatorForbidden('seedtest')).toEqual([])
    for (const name of STAGE_CRONJOBS) {
      const cj = cronjob('seedtest', name)
      expect(cj.metadata.labels['app.kubernetes.io/part-of']).toBe('seedops')
      expect(cj.spec.jobTemplate.spec.template.spec.containers[0]).toMatchObject({ image: name === 'generate-report' ? `${IMAGE}-report` : IMAGE, command: ['seedops', 'run', name] })
      expect(Boolean(cj.spec.suspend)).toBe(false)
    }
    for (const name of ['aggregate-features-daily', 'aggregate-features-daily-r', 'calibrate-irt-weekly', 'compute-daily-kpis', 'generate-weekly-report', 'mirt-calibrate']) expect(cronjob('seedtest', name).spec.suspend).toBe(true)
    expect(cronjob('seedtest', 'fit-bayesian-growth').metadata.resourceVersion).toBe(fitRv)
    expect(secretValue('seedtest', 'r-irt-credentials', 'token')).toBe(PREDECESSOR_SECRET_VALUES.R_IRT_INTERNAL_TOKEN)
    expect(secretValue('seedtest', 'r-irt-credentials', 'token')).toBe(secretValue('seedtest', 'seedtest-irt-credentials', 'R_IRT_INTERNAL_TOKEN'))
    expect(secretValue('seedtest', 'seedtest-db-credentials', 'DATABASE_URL')).toBe(PREDECESSOR_SECRET_VALUES.DATABASE_URL)
    expect(s.api.store.get(R.configmaps(), 'seedtest', 'report-config').data).toEqual({ S3_BUCKET: 'dreamseed-reports', AWS_REGION: 'ap-northeast-2', REPORT_FORMAT: 'pdf' })
    const svc = s.api.store.get(R.services(), 'seedtest', 'r-irt-plumber')
    expect(svc.spec.selector).toEqual({ 'app.kubernetes.io/name': 'seedops', 'app.kubernetes.io/component': 'irt' })
    expect(svc.spec.ports.map((p: any) => [p.port, p.targetPort])).toEqual([[80, 'http'], [8000, 'http']])
    expect(s.api.store.get(R.deployments(), 'seedtest', 'seedops-irt').spec.template.spec.containers[0].image).toBe(IMAGE)
    const record = JSON.parse(s.api.store.get(R.configmaps(), 'seedtest', 'seedops-adoption').data['record.json'])
    expect(record.legacyCronJobs.find((l: any) => l.name === 'aggregate-features-daily-r')).toEqual({ name: 'aggregate-features-daily-r', stage: 'aggregate-features', schedule: '30 2 * * *', wasSuspended: true, suspendedByAdopt: false })
    expect(leaks(JSON.stringify(record))).toEqual([])
  })

  test('a second --yes is a no-op plan and writes nothing', async () => {
    const before = namespaceVersions(s, 'seedtest')
    const r = await adopt('seedtest', '--yes', '--image', IMAGE, '--json')
    expect(r.code).toBe(0)
    const doc = JSON.parse(r.stdout)
    expect(doc.result.changes).toBe(0)
    expect(doc.result.done).toEqual([])
    expect(leaks(r.stdout + r.stderr)).toEqual([])
    expect(namespaceVersions(s, 'seedtest')).toEqual(before)
  })

  test('--prune-legacy refuses before each stage has succeeded, then jobs trigger --wait succeeds for every stage and prune deletes the legacy CronJobs', async () => {
    const refused = await adopt('seedtest', '--prune-legacy')
    expect(refused.code).toBe(1)
    expect(refused.stderr).toContain('Error (ADOPT_PRUNE_REFUSED): not pruning: stages aggregate-features, calibrate-irt, compute-kpis, generate-report have no successful run yet')
    expect(refused.stderr).toContain('seedops jobs trigger calibrate-irt --wait -n seedtest')
    for (const n of LEGACY) expect(cronjob('seedtest', n)).toBeDefined()

    for (const name of STAGE_CRONJOBS) {
      const t = await runCli(['jobs', 'trigger', name, '--wait', '-n', 'seedtest', '--timeout', '60s'], { env: asOperator('seedtest') })
      expect(t.stderr).not.toContain('Error')
      expect(t.code).toBe(0)
    }
    const pruned = await adopt('seedtest', '--prune-legacy', '--json')
    expect(pruned.code).toBe(0)
    expect(JSON.parse(pruned.stdout).result.done).toEqual(['deleted legacy CronJob/aggregate-features-daily', 'deleted legacy CronJob/aggregate-features-daily-r', 'deleted legacy CronJob/calibrate-irt-weekly', 'deleted legacy CronJob/compute-daily-kpis', 'deleted legacy CronJob/generate-weekly-report', 'deleted legacy CronJob/mirt-calibrate'])
    expect(s.api.store.list(R.cronjobs(), 'seedtest').map((c) => c.metadata.name).sort()).toEqual([...STAGE_CRONJOBS, 'fit-bayesian-growth'].sort())
    expect(operatorForbidden('seedtest')).toEqual([])
    const rb = await adopt('seedtest', '--rollback')
    expect(rb.code).toBe(1)
    expect(rb.stderr).toContain('Error (ADOPT_PRUNED)')
  })
})

describe('seedops adopt --rollback', { timeout: 300_000 }, () => {
  test('restores the legacy CronJobs (schedule, suspension, definition) exactly, the Service, the config map, and deletes only what adopt created', async () => {
    const ns = 'legacy2'
    const before = legacySpecs(ns)
    const svcBefore = s.api.store.get(R.services(), ns, 'r-irt-plumber')
    const secretsBefore = s.api.store.list(R.secrets(), ns).map((x) => [x.metadata.name, x.data])
    const cmBefore = s.api.store.get(R.configmaps(), ns, 'report-config').data
    expect((await adopt(ns, '--yes')).code).toBe(0)
    // Someone changes a suspended legacy schedule meanwhile: rollback still restores the recorded one.
    const changed = cronjob(ns, 'mirt-calibrate')
    changed.spec.schedule = '0 9 * * *'
    s.api.store.update(R.cronjobs(), changed)
    const r = await adopt(ns, '--rollback', '--json')
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    expect(leaks(r.stdout)).toEqual([])
    expect(legacySpecs(ns)).toEqual(before)
    expect(cronjob(ns, 'aggregate-features-daily-r').spec.suspend).toBe(true)
    expect(cronjob(ns, 'mirt-calibrate').spec.suspend).toBe(false)
    for (const n of ['aggregate-features', 'compute-kpis', 'calibrate-irt', 'generate-report']) expect(cronjob(ns, n)).toBeUndefined()
    expect(s.api.store.get(R.deployments(), ns, 'seedops-irt')).toBeUndefined()
    expect(s.api.store.get(R.services(), ns, 'seedops-irt')).toBeUndefined()
    const svc = s.api.store.get(R.services(), ns, 'r-irt-plumber')
    expect({ spec: svc.spec, labels: svc.metadata.labels, annotations: svc.metadata.annotations }).toEqual({ spec: svcBefore.spec, labels: svcBefore.metadata.labels, annotations: svcBefore.metadata.annotations })
    expect(s.api.store.list(R.secrets(), ns).map((x) => [x.metadata.name, x.data])).toEqual(secretsBefore)
    expect(s.api.store.get(R.configmaps(), ns, 'report-config').data).toEqual(cmBefore)
    expect(s.api.store.get(R.configmaps(), ns, 'seedops-adoption')).toBeUndefined()
    expect(operatorForbidden(ns)).toEqual([])
    // And again from the start: adoptable, the same plan.
    const again = await adopt(ns, '--json')
    expect(again.stderr).toBe('')
    expect(JSON.parse(again.stdout).result.rows.find((x: any) => x.legacy === 'CronJob/mirt-calibrate').action).toBe('suspend')
  })
})
