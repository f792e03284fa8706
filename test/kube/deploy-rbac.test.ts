import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { deploy } from '../../src/lib/kube/deploy.js'
import { ensureSecrets } from '../../src/lib/kube/secrets.js'
import { getSchedules, patchCronJob } from '../../src/lib/kube/schedule.js'
import { listJobs, triggerJob, waitForJob } from '../../src/lib/kube/jobs.js'
import { jobLogs } from '../../src/lib/kube/logs.js'
import { findResource, startStandin, type Standin } from '../support/kube-standin/index.js'
import { runCli } from '../support/cli.js'
import { clientsFor, kubeEnv } from './helpers.js'

let s: Standin
const IMAGE = 'registry.example/seedops:2.0.1'
const KINDS = ['namespaces', 'serviceaccounts', 'roles', 'rolebindings', 'services', 'deployments', 'cronjobs'] as const
const rt = (r: string) => findResource(r === 'deployments' ? 'apps' : r === 'cronjobs' ? 'batch' : r.startsWith('role') ? 'rbac.authorization.k8s.io' : '', 'v1', r)!
/** Every object's resourceVersion in a namespace (and the namespace's own). */
function versions(ns: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const r of KINDS) for (const o of s.api.store.list(rt(r), r === 'namespaces' ? undefined : ns)) if (r !== 'namespaces' || o.metadata.name === ns) out[`${r}/${o.metadata.name}`] = o.metadata.resourceVersion
  return out
}

beforeAll(async () => {
  s = await startStandin()
})
afterAll(() => s?.stop())

describe('seedops deploy', { timeout: 180_000 }, () => {
  test('creates the namespace and every object with the image pinned; the second run changes nothing', async () => {
    const first = await runCli(['deploy', '-n', 'dep', '--image', IMAGE, '--json'], { env: kubeEnv(s) })
    expect(first.stderr).toBe('')
    expect(first.code).toBe(0)
    const items = JSON.parse(first.stdout).result.items as { kind: string; name: string; action: string }[]
    expect(items.map((i) => `${i.kind}/${i.name}`)).toEqual([
      'Namespace/dep',
      'ServiceAccount/seedops-runner',
      'ServiceAccount/seedops-operator',
      'ServiceAccount/seedops-doctor',
      'Role/seedops-operator',
      'Role/seedops-doctor',
      'RoleBinding/seedops-operator',
      'RoleBinding/seedops-doctor',
      'Service/seedops-irt',
      'Deployment/seedops-irt',
      'CronJob/aggregate-features',
      'CronJob/compute-kpis',
      'CronJob/calibrate-irt',
      'CronJob/generate-report',
      'CronJob/detect-inactivity',
    ])
    expect(new Set(items.map((i) => i.action))).toEqual(new Set(['created']))
    // Server-side apply with our field manager, not create/replace.
    const writes = s.api.requests.filter((r) => r.method !== 'GET')
    expect(new Set(writes.map((r) => `${r.method} ${r.contentType}`))).toEqual(new Set(['PATCH application/apply-patch+yaml']))
    expect(writes.every((r) => r.query.includes('fieldManager=seedops'))).toBe(true)

    const cronjobs = s.api.store.list(rt('cronjobs'), 'dep')
    expect(cronjobs).toHaveLength(5)
    for (const cj of cronjobs) {
      expect(cj.spec.jobTemplate.spec.template.spec.containers[0].image).toBe(cj.metadata.name === 'generate-report' ? `${IMAGE}-report` : IMAGE)
    }
    expect(s.api.store.get(rt('deployments'), 'dep', 'seedops-irt').spec.template.spec.containers[0].image).toBe(IMAGE)
    // The image deployed is recorded where doctor --fix reads it back (it restores only that one).
    expect(cronjobs.map((cj: any) => cj.metadata.annotations['seedops.io/deployed-image'])).toEqual(cronjobs.map((cj: any) => cj.spec.jobTemplate.spec.template.spec.containers[0].image))
    expect(s.api.store.get(rt('deployments'), 'dep', 'seedops-irt').metadata.annotations['seedops.io/deployed-image']).toBe(IMAGE)
    expect(s.api.store.get(rt('rolebindings'), 'dep', 'seedops-operator').subjects[0].namespace).toBe('dep')

    const before = versions('dep')
    const again = await runCli(['deploy', '-n', 'dep', '--image', IMAGE], { env: kubeEnv(s) })
    expect(again.code).toBe(0)
    expect(again.stderr).toContain('Nothing to change: 15 objects up to date in dep')
    expect(versions('dep')).toEqual(before)
  })

  test('--dry-run server validates a new image without storing it; --dry-run client needs no cluster', async () => {
    await deploy(clientsFor(s, 'dry'), { namespace: 'dry', image: IMAGE })
    const before = versions('dry')
    const r = await deploy(clientsFor(s, 'dry'), { namespace: 'dry', image: 'registry.example/seedops:2.1.0', dryRun: 'server' })
    expect(r.items.filter((i) => i.kind === 'CronJob').map((i) => i.action)).toEqual(['configured', 'configured', 'configured', 'configured', 'configured'])
    expect(r.items.filter((i) => i.kind !== 'CronJob' && i.kind !== 'Deployment').map((i) => i.action)).toEqual(Array(9).fill('unchanged'))
    expect(r.items.find((i) => i.kind === 'Deployment')!.action).toBe('configured')
    expect(versions('dry')).toEqual(before)
    const requests = s.api.requests.length
    const c = await deploy(clientsFor(s, 'dry'), { namespace: 'dry', image: 'registry.example/seedops@sha256:' + 'a'.repeat(64), reportImage: 'registry.example/seedops-report:9', dryRun: 'client' })
    expect(s.api.requests.length).toBe(requests)
    expect(c.manifests).toContain('image: registry.example/seedops@sha256:aaaa')
    expect(c.manifests).toContain('image: registry.example/seedops-report:9')
    await expect(deploy(clientsFor(s, 'dry'), { namespace: 'dry', image: 'registry.example/seedops', dryRun: 'client' })).rejects.toMatchObject({ code: 'USAGE' })
  })
})

describe('RBAC: the least-rights Roles in k8s/', { timeout: 180_000 }, () => {
  beforeAll(async () => {
    await deploy(clientsFor(s, 'seedtest'), { namespace: 'seedtest' })
    s.api.addToken('operator-token', 'system:serviceaccount:seedtest:seedops-operator')
    s.api.addToken('doctor-token', 'system:serviceaccount:seedtest:seedops-doctor')
    s.api.addToken('stranger-token', 'system:serviceaccount:seedtest:default')
    s.controller.script = () => ({ outcome: { kind: 'succeed' }, logs: ['stage ran'], startDelayMs: 30 })
  })

  test('the operator identity runs secrets ensure, schedule, jobs trigger/logs/list: nothing is forbidden', async () => {
    const kubeconfig = s.kubeconfigFor('operator-token', 'operator')
    const k = clientsFor(s, 'seedtest', kubeconfig)
    const values = { DATABASE_URL: 'postgres://u:p4ssw0rd-x@db/seedtest', R_IRT_INTERNAL_TOKEN: 'tok-123456789', AWS_ACCESS_KEY_ID: 'AKIA123456', AWS_SECRET_ACCESS_KEY: 'secret-abcdefgh', S3_BUCKET: 'b', AWS_REGION: 'r' }
    expect((await ensureSecrets(k, { values })).items.map((i) => i.action)).toEqual(['created', 'created', 'created', 'created'])
    expect((await ensureSecrets(k, { values })).items.map((i) => i.action)).toEqual(['exists', 'exists', 'exists', 'exists'])
    expect((await ensureSecrets(k, { values, update: true })).items.map((i) => i.action)).toEqual(['updated', 'updated', 'updated', 'updated'])
    expect(await getSchedules(k)).toHaveLength(5)
    await patchCronJob(k, 'generate-report', { schedule: '@daily' })
    await patchCronJob(k, 'generate-report', { suspend: true })
    await patchCronJob(k, 'generate-report', { schedule: '0 4 * * 1', suspend: false })
    const job = await triggerJob(k, 'compute-kpis')
    const lines: string[] = []
    await jobLogs(k, job.metadata!.name!, { line: (t) => lines.push(t), marker: () => {} }, { follow: true })
    expect(lines).toEqual(['stage ran'])
    expect((await waitForJob(k, job.metadata!.name!)).state).toBe('succeeded')
    expect((await listJobs(k)).map((j) => j.name)).toContain(job.metadata!.name)

    // The CLI too, with the operator's kubeconfig.
    const cli = await runCli(['jobs', 'trigger', 'aggregate-features', '--follow'], { env: kubeEnv(s, kubeconfig) })
    expect(cli.code).toBe(0)
    expect(cli.stdout).toBe('stage ran\n')

    const asOperator = s.api.requests.filter((r) => r.user === 'system:serviceaccount:seedtest:seedops-operator')
    expect(asOperator.length).toBeGreaterThan(20)
    expect(asOperator.filter((r) => r.status === 403)).toEqual([])
  })

  test('the doctor identity reads but cannot patch; the error names the verb, the resource and the can-i check', async () => {
    const k = clientsFor(s, 'seedtest', s.kubeconfigFor('doctor-token', 'doctor'))
    expect((await getSchedules(k)).map((x) => x.name)).toContain('compute-kpis')
    expect(await listJobs(k)).not.toHaveLength(0)
    await expect(patchCronJob(k, 'compute-kpis', { suspend: true })).rejects.toMatchObject({
      code: 'KUBE_FORBIDDEN',
      message: expect.stringContaining('not allowed to patch cronjobs.batch "compute-kpis" in namespace seedtest: cronjobs.batch "compute-kpis" is forbidden: User "system:serviceaccount:seedtest:seedops-doctor" cannot patch resource "cronjobs" in API group "batch"'),
      suggestions: expect.arrayContaining(['Check the permission: kubectl auth can-i patch cronjobs.batch -n seedtest']),
    })
    await expect(triggerJob(k, 'compute-kpis')).rejects.toMatchObject({ code: 'KUBE_FORBIDDEN', suggestions: expect.arrayContaining(['Check the permission: kubectl auth can-i create jobs.batch -n seedtest']) })
  })

  test('an identity without a Role gets exit 1 and the can-i line from the CLI', async () => {
    const r = await runCli(['schedule', 'get'], { env: kubeEnv(s, s.kubeconfigFor('stranger-token', 'stranger')) })
    expect(r.code).toBe(1)
    expect(r.stderr).toContain('Error (KUBE_FORBIDDEN): not allowed to list cronjobs.batch in namespace seedtest')
    expect(r.stderr).toContain('kubectl auth can-i list cronjobs.batch -n seedtest')
  })
})
