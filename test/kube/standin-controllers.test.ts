import { afterEach, describe, expect, test } from 'vitest'
import { findResource, kubectl, SCHEDULED_ANNOTATION, startStandin, type Outcome, type PodScript, type Standin } from '../support/kube-standin/index.js'
import { runCli } from '../support/cli.js'
import { clientsFor, kubeEnv, seedManifests } from './helpers.js'
import { patchCronJob } from '../../src/lib/kube/schedule.js'
import { seedSecrets } from '../doctor/helpers.js'

/**
 * The stand-in's CronJob and Deployment controllers, against what the real ones do
 * (kubernetes/kubernetes pkg/controller/cronjob and pkg/controller/deployment), under the fake clock;
 * then seedops itself reading what they made.
 */
const CJ = () => findResource('batch', 'v1', 'cronjobs')!
const JOB = () => findResource('batch', 'v1', 'jobs')!
const POD = () => findResource('', 'v1', 'pods')!
const DEP = () => findResource('apps', 'v1', 'deployments')!
const RS = () => findResource('apps', 'v1', 'replicasets')!
const EV = () => findResource('', 'v1', 'events')!
const NS = 'seedtest'
const T0 = '2026-03-02T00:00:00Z'
const H = 3_600_000

let s: Standin | undefined
afterEach(async () => {
  await s?.stop()
  s = undefined
})

/** Let queued controller work (microtasks, zero-delay timers) run. */
const settle = () => new Promise((r) => setTimeout(r, 5))
async function waitFor<T>(what: string, fn: () => T | undefined | false, timeoutMs = 15_000): Promise<T> {
  const end = Date.now() + timeoutMs
  for (;;) {
    const v = fn()
    if (v) return v
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

/** Minutes since the epoch: the suffix the real controller gives a scheduled Job (getJobName). */
const minutes = (iso: string) => Math.floor(Date.parse(iso) / 60_000)
const jobName = (cj: string, iso: string) => `${cj}-${minutes(iso)}`
const jobs = (cj?: string) =>
  s!.api.store
    .list(JOB(), NS)
    .filter((j) => !cj || j.metadata.ownerReferences?.[0]?.name === cj)
    .map((j) => j.metadata.name)
    .sort()
const cronJob = (name: string) => s!.api.store.get(CJ(), NS, name)
const events = (name: string) =>
  s!.api.store
    .list(EV(), NS)
    .filter((e) => e.involvedObject.name === name)
    .map((e) => `${e.reason}: ${e.message}`)
const finished = (name: string) => s!.api.store.get(JOB(), NS, name)?.status?.conditions?.some((c: any) => ['Complete', 'Failed'].includes(c.type) && c.status === 'True')

function seedCronJob(name: string, schedule: string, spec: Record<string, unknown> = {}) {
  return s!.seed({
    apiVersion: 'batch/v1',
    kind: 'CronJob',
    metadata: { name, namespace: NS },
    spec: { schedule, ...spec, jobTemplate: { metadata: { labels: { team: 'seed' } }, spec: { backoffLimit: 0, template: { spec: { restartPolicy: 'Never', containers: [{ name: 'main', image: 'ghcr.io/seedtest/seedops:0.1.0' }] } } } } },
  })
}

/** A stand-in whose clock reads `at`, so the objects seeded next are created then. */
async function standinAt(at: string, outcomes: Record<string, Outcome> = {}, controllers: ('cronjobs' | 'deployments')[] = ['cronjobs']) {
  s = await startStandin({ controllers })
  s.clock.setNow(at)
  s.controller.script = (job) => ({ outcome: outcomes[job.metadata.ownerReferences?.[0]?.name] ?? { kind: 'succeed' }, startDelayMs: 5, lineDelayMs: 2 })
  return s
}

describe('stand-in CronJob controller (fake clock)', { timeout: 60_000 }, () => {
  test('fires at each scheduled time, not before: the Job as the real controller makes it, and the CronJob status', async () => {
    await standinAt(T0)
    const cj = seedCronJob('hourly', '0 * * * *')
    await settle()
    s!.clock.advance(59 * 60_000)
    await settle()
    expect(jobs()).toEqual([])

    s!.clock.advance(60_000)
    const name = jobName('hourly', '2026-03-02T01:00:00Z')
    expect(jobs()).toEqual([name])
    const job = s!.api.store.get(JOB(), NS, name)
    expect(job.metadata.ownerReferences).toEqual([{ apiVersion: 'batch/v1', kind: 'CronJob', name: 'hourly', uid: cj.metadata.uid, controller: true, blockOwnerDeletion: true }])
    expect(job.metadata.annotations[SCHEDULED_ANNOTATION]).toBe('2026-03-02T01:00:00Z')
    expect(job.metadata.labels).toEqual({ team: 'seed' })
    expect(job.metadata.creationTimestamp).toBe('2026-03-02T01:00:00Z')
    // The apiserver defaulted it like any created Job (selector, controller-uid labels).
    expect(job.spec.selector.matchLabels['batch.kubernetes.io/controller-uid']).toBe(job.metadata.uid)
    expect(cronJob('hourly').status).toEqual({ lastScheduleTime: '2026-03-02T01:00:00Z', active: [{ kind: 'Job', namespace: NS, name, uid: job.metadata.uid, apiVersion: 'batch/v1', resourceVersion: expect.any(String) }] })
    expect(events('hourly')).toContain(`SuccessfulCreate: Created job ${name}`)

    // The Job controller runs it; the CronJob sees it complete and records the success.
    await waitFor('lastSuccessfulTime', () => cronJob('hourly').status.lastSuccessfulTime)
    expect(cronJob('hourly').status).toEqual({ lastScheduleTime: '2026-03-02T01:00:00Z', lastSuccessfulTime: '2026-03-02T01:00:00Z' })
    expect(events('hourly')).toContain(`SawCompletedJob: Saw completed job: ${name}, status: Complete`)

    // Time passing with the controller up: every hour on the way gets its own Job.
    s!.clock.advance(2 * H + 30 * 60_000)
    expect(jobs()).toEqual([name, jobName('hourly', '2026-03-02T02:00:00Z'), jobName('hourly', '2026-03-02T03:00:00Z')])
    expect(cronJob('hourly').status.lastScheduleTime).toBe('2026-03-02T03:00:00Z')
  })

  test('timeZone: 02:10 in Asia/Seoul is 17:10 UTC, and the scheduled-time annotation is written in that zone', async () => {
    await standinAt(T0)
    seedCronJob('seoul', '10 2 * * *', { timeZone: 'Asia/Seoul' })
    seedCronJob('utc', '10 2 * * *', { timeZone: 'Etc/UTC' })
    await settle()
    s!.clock.advance(17 * H + 9 * 60_000)
    expect(jobs()).toEqual([jobName('utc', '2026-03-02T02:10:00Z')])
    s!.clock.advance(60_000)
    const name = jobName('seoul', '2026-03-02T17:10:00Z')
    expect(jobs('seoul')).toEqual([name])
    expect(s!.api.store.get(JOB(), NS, name).metadata.annotations[SCHEDULED_ANNOTATION]).toBe('2026-03-03T02:10:00+09:00')
    expect(s!.api.store.get(JOB(), NS, jobName('utc', '2026-03-02T02:10:00Z')).metadata.annotations[SCHEDULED_ANNOTATION]).toBe('2026-03-02T02:10:00Z')
    expect(cronJob('seoul').status.lastScheduleTime).toBe('2026-03-02T17:10:00Z')
  })

  test('missed schedules: one catch-up run for the latest; more than 100 missed warns and still runs one; startingDeadlineSeconds drops late ones', async () => {
    await standinAt(T0)
    seedCronJob('hourly', '0 * * * *')
    seedCronJob('deadline', '0 * * * *', { startingDeadlineSeconds: 300 })
    await settle()
    // The controller was down for 5½ hours: on its return, one Job, for 05:00.
    s!.clock.setNow('2026-03-02T05:30:00Z')
    expect(jobs('hourly')).toEqual([jobName('hourly', '2026-03-02T05:00:00Z')])
    expect(events('hourly').filter((e) => e.startsWith('TooManyMissedTimes'))).toEqual([])
    // 05:00 is 30 minutes late, beyond the 300 s deadline: nothing.
    expect(jobs('deadline')).toEqual([])
    expect(cronJob('deadline').status?.lastScheduleTime).toBeUndefined()
    // Within the deadline it starts, late.
    s!.clock.setNow('2026-03-02T06:04:00Z')
    expect(jobs('deadline')).toEqual([jobName('deadline', '2026-03-02T06:00:00Z')])

    // 200 hours down: "too many missed start times", and the most recent still runs.
    await waitFor('jobs done', () => jobs().every(finished))
    s!.clock.setNow('2026-03-10T14:20:00Z')
    expect(jobs('hourly')).toContain(jobName('hourly', '2026-03-10T14:00:00Z'))
    expect(jobs('hourly')).toHaveLength(3)
    expect(events('hourly')).toContain('TooManyMissedTimes: too many missed start times. Set or decrease .spec.startingDeadlineSeconds or check clock skew')
    // With the deadline the window is only 300 s, so nothing was missed "too many" times.
    expect(events('deadline').some((e) => e.startsWith('TooManyMissedTimes'))).toBe(false)
  })

  test('concurrencyPolicy: Allow runs both, Forbid skips while one is active (and starts the skipped run once it is gone), Replace deletes the running one', async () => {
    const hang: Outcome = { kind: 'hang' }
    await standinAt(T0, { allow: hang, forbid: hang, replace: hang })
    seedCronJob('allow', '0 * * * *', { concurrencyPolicy: 'Allow' })
    seedCronJob('forbid', '0 * * * *', { concurrencyPolicy: 'Forbid' })
    seedCronJob('replace', '0 * * * *', { concurrencyPolicy: 'Replace' })
    await settle()
    s!.clock.advance(H)
    const first = (cj: string) => jobName(cj, '2026-03-02T01:00:00Z')
    const second = (cj: string) => jobName(cj, '2026-03-02T02:00:00Z')
    await waitFor('first pods running', () => ['allow', 'forbid', 'replace'].every((cj) => s!.api.jobPods(NS, first(cj)).some((p) => p.status.phase === 'Running')))
    s!.clock.advance(H)
    await settle()

    expect(jobs('allow')).toEqual([first('allow'), second('allow')])
    expect(cronJob('allow').status.active.map((a: any) => a.name)).toEqual([first('allow'), second('allow')])

    expect(jobs('forbid')).toEqual([first('forbid')])
    expect(cronJob('forbid').status).toMatchObject({ lastScheduleTime: '2026-03-02T01:00:00Z', active: [{ name: first('forbid') }] })
    expect(events('forbid')).toContain('JobAlreadyActive: Not starting job because prior execution is running and concurrency policy is Forbid')

    expect(jobs('replace')).toEqual([second('replace')])
    expect(cronJob('replace').status.active.map((a: any) => a.name)).toEqual([second('replace')])
    expect(events('replace')).toContain(`SuccessfulDelete: Deleted job ${first('replace')}`)
    expect(s!.api.store.list(POD(), NS).filter((p) => p.metadata.name.startsWith(first('replace')))).toEqual([])

    // Forbid: once the stuck Job is deleted, the 02:00 run it blocked starts (before 03:00, no deadline).
    s!.clock.advance(10 * 60_000)
    s!.api.store.delete(JOB(), NS, first('forbid'))
    await settle()
    expect(jobs('forbid')).toEqual([second('forbid')])
    expect(events('forbid')).toContain(`MissingJob: Active job went missing: ${first('forbid')}`)
  })

  test('history limits delete the oldest finished Jobs of each outcome; suspend stops runs and resuming runs the latest missed one', async () => {
    await standinAt(T0)
    const cj = seedCronJob('hist', '0 * * * *', { successfulJobsHistoryLimit: 2, failedJobsHistoryLimit: 1 })
    // Hours 1-4 succeed, 5-6 fail.
    s!.controller.script = (job) => ({ outcome: Number(job.metadata.annotations[SCHEDULED_ANNOTATION].slice(11, 13)) <= 4 ? { kind: 'succeed' } : { kind: 'fail', exitCode: 2 }, startDelayMs: 5, lineDelayMs: 2 })
    await settle()
    const at = (h: number) => jobName('hist', `2026-03-02T0${h}:00:00Z`)
    for (let h = 1; h <= 6; h++) {
      s!.clock.advance(H)
      await waitFor(`job ${h} finished and seen`, () => finished(at(h)) && !cronJob('hist').status.active?.length)
    }
    await waitFor('pruned', () => jobs().length === 3 && jobs())
    expect(jobs()).toEqual([at(3), at(4), at(6)])
    for (const gone of [at(1), at(2), at(5)]) expect(events('hist')).toContain(`SuccessfulDelete: Deleted job ${gone}`)
    // Their pods went with them (garbage collection).
    expect(s!.api.store.list(POD(), NS).map((p) => p.metadata.ownerReferences[0].name).filter((n) => [at(1), at(2), at(5)].includes(n))).toEqual([])
    expect(cronJob('hist').status.lastSuccessfulTime).toBe('2026-03-02T04:00:00Z')

    // Suspended through the API by seedops' own patch (`seedops schedule suspend`): three hours pass, nothing runs.
    const k = clientsFor(s!)
    await patchCronJob(k, 'hist', { suspend: true })
    s!.clock.advance(3 * H)
    await settle()
    expect(jobs()).toEqual([at(3), at(4), at(6)])
    // Resumed: without startingDeadlineSeconds the real controller starts the latest missed run at once.
    await patchCronJob(k, 'hist', { suspend: false })
    await waitFor('catch-up after resume', () => jobs().includes(at(9)))
    expect(jobs().filter((n) => ![at(3), at(4), at(6)].includes(n))).toEqual([at(9)])
    expect(cj.metadata.uid).toBe(cronJob('hist').metadata.uid)
  })

  test('not started, nothing runs: a stand-in without the controller never creates scheduled Jobs', async () => {
    s = await startStandin()
    s.clock.setNow(T0)
    seedCronJob('hourly', '0 * * * *')
    s.clock.advance(5 * H)
    await settle()
    expect(jobs()).toEqual([])
    expect(cronJob('hourly').status?.lastScheduleTime).toBeUndefined()
  })
})

describe('stand-in Deployment controller', { timeout: 60_000 }, () => {
  const deployment = (name: string, image = 'ghcr.io/seedtest/seedops:0.1.0', replicas = 2) => ({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: NS },
    spec: { replicas, selector: { matchLabels: { app: name } }, template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: 'web', image, ports: [{ containerPort: 8080 }] }] } } },
  })
  const dep = (name: string) => s!.api.store.get(DEP(), NS, name)
  const condition = (name: string, type: string) => dep(name)?.status?.conditions?.find((c: any) => c.type === type)

  test('becomes ready: a ReplicaSet with the pod-template-hash, Ready pods, status counts and conditions; kubectl rollout status agrees; a new image rolls out', async () => {
    await standinAt(T0, {}, ['deployments'])
    s!.seed(deployment('web'))
    const status = await waitFor('2 ready', () => dep('web').status?.availableReplicas === 2 && dep('web').status)
    const [rs] = s!.api.store.list(RS(), NS)
    const hash = rs.metadata.labels['pod-template-hash']
    expect(rs.metadata.name).toBe(`web-${hash}`)
    expect(hash).toMatch(/^[bcdfghjklmnpqrstvwxz2456789]{6,10}$/)
    expect(rs.spec.selector.matchLabels).toEqual({ app: 'web', 'pod-template-hash': hash })
    expect(rs.metadata.ownerReferences[0]).toMatchObject({ kind: 'Deployment', name: 'web', controller: true })
    expect(rs.status).toMatchObject({ replicas: 2, readyReplicas: 2, availableReplicas: 2 })
    const pods = s!.api.store.list(POD(), NS)
    expect(pods).toHaveLength(2)
    for (const p of pods) {
      expect(p.metadata.name).toMatch(new RegExp(`^web-${hash}-[a-z0-9]{5}$`))
      expect(p.metadata.ownerReferences[0]).toMatchObject({ kind: 'ReplicaSet', name: rs.metadata.name })
      expect(p.status.conditions.find((c: any) => c.type === 'Ready').status).toBe('True')
    }
    expect(status).toMatchObject({ observedGeneration: 1, replicas: 2, updatedReplicas: 2, readyReplicas: 2, availableReplicas: 2, unavailableReplicas: 0 })
    expect(condition('web', 'Available')).toMatchObject({ status: 'True', reason: 'MinimumReplicasAvailable', message: 'Deployment has minimum availability.' })
    expect(condition('web', 'Progressing')).toMatchObject({ status: 'True', reason: 'NewReplicaSetAvailable', message: `ReplicaSet "web-${hash}" has successfully progressed.` })
    const ok = await kubectl(s!.kubeconfig, ['-n', NS, 'rollout', 'status', 'deployment/web', '--timeout=20s'])
    expect(ok.stdout + ok.stderr).toContain('deployment "web" successfully rolled out')
    expect(ok.code).toBe(0)

    // A new image: a second ReplicaSet (revision 2) takes over and the first scales to 0.
    const d = dep('web')
    d.spec.template.spec.containers[0].image = 'ghcr.io/seedtest/seedops:0.2.0'
    s!.api.store.update(DEP(), d)
    await waitFor('rolled out', () => dep('web').status.observedGeneration === 2 && condition('web', 'Progressing')?.reason === 'NewReplicaSetAvailable' && dep('web').status.replicas === 2)
    const sets = s!.api.store.list(RS(), NS)
    expect(sets.map((x) => [x.metadata.annotations['deployment.kubernetes.io/revision'], x.spec.replicas]).sort()).toEqual([['1', 0], ['2', 2]])
    expect(s!.api.store.list(POD(), NS).map((p) => p.spec.containers[0].image)).toEqual(['ghcr.io/seedtest/seedops:0.2.0', 'ghcr.io/seedtest/seedops:0.2.0'])
    expect(dep('web').metadata.annotations['deployment.kubernetes.io/revision']).toBe('2')
  })

  test('an image that cannot be pulled: not ready with ImagePullBackOff, Available=False, and after progressDeadlineSeconds ProgressDeadlineExceeded (kubectl agrees)', async () => {
    await standinAt(T0, {}, ['deployments'])
    s!.deployments.script = (): PodScript => ({ behaviour: { kind: 'image-pull', reason: 'not-found' }, startDelayMs: 5 })
    s!.seed(deployment('broken', 'ghcr.io/seedtest/seedops:0.0.9-typo', 1))
    const pod = await waitFor('ImagePullBackOff', () => s!.api.store.list(POD(), NS).find((p) => p.status.containerStatuses[0].state.waiting?.reason === 'ImagePullBackOff'))
    expect(pod.status.conditions.find((c: any) => c.type === 'Ready')).toMatchObject({ status: 'False', reason: 'ContainersNotReady' })
    await settle()
    expect(dep('broken').status).toMatchObject({ replicas: 1, updatedReplicas: 1, readyReplicas: 0, availableReplicas: 0, unavailableReplicas: 1 })
    expect(condition('broken', 'Available')).toMatchObject({ status: 'False', reason: 'MinimumReplicasUnavailable', message: 'Deployment does not have minimum availability.' })
    expect(condition('broken', 'Progressing')).toMatchObject({ status: 'True' })
    expect(s!.api.store.list(EV(), NS).some((e) => e.reason === 'Failed' && e.message.includes('ghcr.io/seedtest/seedops:0.0.9-typo: not found'))).toBe(true)

    // 600 s (the default progressDeadlineSeconds) pass without progress.
    s!.clock.advance(599_000)
    expect(condition('broken', 'Progressing').status).toBe('True')
    s!.clock.advance(3_000)
    const rs = s!.api.store.list(RS(), NS)[0].metadata.name
    expect(condition('broken', 'Progressing')).toMatchObject({ status: 'False', reason: 'ProgressDeadlineExceeded', message: `ReplicaSet "${rs}" has timed out progressing.` })
    const r = await kubectl(s!.kubeconfig, ['-n', NS, 'rollout', 'status', 'deployment/broken', '--timeout=20s'])
    expect(r.code).toBe(1)
    expect(r.stderr).toContain('deployment "broken" exceeded its progress deadline')
  })
})

describe('seedops against the controllers', { timeout: 120_000 }, () => {
  test('two days of the production schedule: jobs list shows the scheduled Jobs, status their times, doctor the run Forbid skipped behind a stuck Job and the IRT service ready', async () => {
    // Two days ago at midnight, so the controller's clock ends at the real now that seedops reads.
    const start = new Date(Math.floor(Date.now() / 86_400_000) * 86_400_000 - 2 * 86_400_000)
    s = await startStandin({ controllers: ['cronjobs', 'deployments'] })
    s.clock.setNow(start)
    s.controller.script = (job) => ({ outcome: job.metadata.ownerReferences?.[0]?.name === 'compute-kpis' ? { kind: 'hang' } : { kind: 'succeed' }, logs: ['done'], startDelayMs: 5, lineDelayMs: 2 })
    seedManifests(s)
    seedSecrets(s, NS)
    await waitFor('seedops-irt ready', () => s!.api.store.get(DEP(), NS, 'seedops-irt')?.status?.readyReplicas === 1)
    // Time passes a day at a time; the Jobs of each day finish before the next.
    for (let day = 0; day < 2; day++) {
      s.clock.advance(86_400_000)
      await waitFor(`day ${day} settled`, () => s!.api.store.list(JOB(), NS).every((j) => j.metadata.name.startsWith('compute-kpis-') || finished(j.metadata.name)))
    }
    s.clock.advance(Math.max(0, Date.now() - s.clock.now().getTime()))
    await waitFor('today settled', () => s!.api.store.list(JOB(), NS).every((j) => j.metadata.name.startsWith('compute-kpis-') || finished(j.metadata.name)))
    await waitFor('statuses', () => s!.api.store.list(CJ(), NS).every((c) => c.metadata.name === 'compute-kpis' || !c.status?.active))

    const day0 = start.toISOString().slice(0, 10)
    const stuck = jobName('compute-kpis', `${day0}T02:10:00Z`)
    const list = await runCli(['jobs', 'list', '-o', 'json', '-n', NS], { env: kubeEnv(s) })
    expect(list.code, list.stderr).toBe(0)
    const rows = JSON.parse(list.stdout) as { name: string; cronjob: string; state: string; manual: boolean }[]
    // Made by the controller, not by `jobs trigger`: named by scheduled minute, not manual.
    expect(rows.every((r) => !r.manual && new RegExp(`^${r.cronjob}-\\d{8}$`).test(r.name))).toBe(true)
    expect(rows.filter((r) => r.cronjob === 'compute-kpis')).toEqual([expect.objectContaining({ name: stuck, state: 'running' })])
    // aggregate-features ran each day at 01:15 (today's too once past it): the last three kept.
    const agg = rows.filter((r) => r.cronjob === 'aggregate-features')
    expect(agg.length).toBeGreaterThanOrEqual(2)
    expect(agg.every((r) => r.state === 'succeeded')).toBe(true)
    expect(agg.map((r) => r.name)).toContain(jobName('aggregate-features', `${day0}T01:15:00Z`))

    const st = await runCli(['status', '--json', '-n', NS], { env: { ...kubeEnv(s), DATABASE_URL: '' } })
    const cj = (JSON.parse(st.stdout).result.cluster.rows as { name: string; lastScheduleTime?: string; lastSuccessfulTime?: string; active: number }[]).find((r) => r.name === 'compute-kpis')!
    expect(cj).toMatchObject({ lastScheduleTime: `${day0}T02:10:00.000Z`, active: 1 })
    expect(cj.lastSuccessfulTime).toBeUndefined()

    // doctor, as the operator runs it: the run Forbid skipped, and the IRT service the Deployment controller made ready.
    const doc = await runCli(['doctor', '-n', NS, '--only', 'cronjobs.fired,deployments.irt'], { env: kubeEnv(s) })
    const lines = doc.stdout.split('\n')
    const fired = lines.filter((l) => /^\S+\s+cronjobs\.fired\s/.test(l))
    expect(fired, doc.stdout + doc.stderr).toHaveLength(1)
    expect(fired[0]).toMatch(/^fail\s+cronjobs\.fired\s+CronJob compute-kpis /i)
    expect(fired[0]).toContain(`job ${stuck} is still active and concurrencyPolicy Forbid skips every run while it is`)
    expect(fired[0]).toMatch(/[12] runs? missed/)
    expect(lines.filter((l) => /^\S+\s+deployments\.irt\s/.test(l))).toEqual([expect.stringMatching(/^ok\s+deployments\.irt\s+Deployment seedops-irt: 1\/1 ready, no restarts, secrets present, ports reachable$/i)])
    expect(doc.code).toBe(1)
  })
})
