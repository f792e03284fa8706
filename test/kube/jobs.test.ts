import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { jobFailure, listJobs, triggerJob, waitForJob } from '../../src/lib/kube/jobs.js'
import { jobLogs } from '../../src/lib/kube/logs.js'
import { findResource, startStandin, type Script, type Standin } from '../support/kube-standin/index.js'
import { once } from 'node:events'
import { ROOT, runCli, spawnCli } from '../support/cli.js'
import { waitForOutput } from '../support/fixtures.js'
import { join } from 'node:path'
import { loadManifests } from '../../src/lib/kube/manifests.js'
import { clientsFor, kubeEnv, seedManifests } from './helpers.js'

let s: Standin
const JOBS = () => findResource('batch', 'v1', 'jobs')!
const LINES = ['aggregate-features: as-of 2026-11-21', 'lookback 7 days: 1,204 users', 'wrote 18,330 rows to features_topic_daily', 'done in 2.1s']
/** Outcome per CronJob the job came from. */
const SCRIPTS: Record<string, Script> = {
  'aggregate-features': { outcome: { kind: 'succeed' }, logs: LINES, startDelayMs: 1200, lineDelayMs: 150 },
  'compute-kpis': { outcome: { kind: 'fail', exitCode: 3 }, logs: ['compute-kpis: database error'], startDelayMs: 20, lineDelayMs: 10 },
  'calibrate-irt': { outcome: { kind: 'oom' }, logs: ['calibrating 2PL'], startDelayMs: 20 },
  'generate-report': { outcome: { kind: 'image-pull', reason: 'not-found' }, startDelayMs: 20 },
  'detect-inactivity': { outcome: { kind: 'hang' }, logs: ['scanning'], startDelayMs: 20 },
  'with-sidecar': { outcome: { kind: 'sidecar-never-exits' }, logs: ['stage done'], startDelayMs: 20 },
}

beforeAll(async () => {
  s = await startStandin()
  seedManifests(s)
  s.seed({
    apiVersion: 'batch/v1',
    kind: 'CronJob',
    metadata: { name: 'with-sidecar', namespace: 'seedtest' },
    spec: { schedule: '0 6 * * *', jobTemplate: { spec: { backoffLimit: 0, template: { spec: { restartPolicy: 'Never', containers: [{ name: 'seedops', image: 'ghcr.io/seedtest/seedops:0.1.0', command: ['seedops', 'run', 'aggregate-features'] }, { name: 'cloud-sql-proxy', image: 'gcr.io/cloud-sql-connectors/cloud-sql-proxy:2.14.1' }] } } } } },
  })
  s.controller.script = (job) => SCRIPTS[job.metadata.ownerReferences?.[0]?.name] ?? { outcome: { kind: 'succeed' } }
})
afterAll(() => s?.stop())

describe('jobs', { timeout: 180_000 }, () => {
  test('trigger --follow: the job is made like kubectl makes it; logs stream once each, even across a pod that starts late and a dropped stream', async () => {
    s.api.faults.dropLogStreamAfterLines = 2
    const r = await runCli(['jobs', 'trigger', 'aggregate-features', '--follow', '--timeout', '60s'], { env: kubeEnv(s) })
    expect(r.stderr).not.toContain('Error')
    expect(r.code).toBe(0)
    expect(r.stdout).toBe(LINES.join('\n') + '\n')
    const job = s.api.store.list(JOBS(), 'seedtest').find((j) => j.metadata.ownerReferences[0].name === 'aggregate-features')
    expect(job.metadata.name).toMatch(/^aggregate-features-manual-[a-z0-9]{5}$/)
    expect(job.metadata.annotations['cronjob.kubernetes.io/instantiate']).toBe('manual')
    expect(job.metadata.ownerReferences[0]).toMatchObject({ kind: 'CronJob', apiVersion: 'batch/v1', controller: true })
    const pod = s.api.jobPods('seedtest', job.metadata.name)[0].metadata.name
    expect(r.stderr).toContain(`+ ${pod} › seedops`)
    expect(r.stderr).toContain(`- ${pod} › seedops (stream dropped, resuming from`)
    expect(r.stderr).toMatch(new RegExp(`job ${job.metadata.name} succeeded`))
  })

  test('trigger --follow whose log stream cannot be read: the exit code is the job outcome, and a warning says lines may be missing', async () => {
    s.api.faults.errors = [{ status: 503, remaining: 1000, verb: 'get', resource: 'pods/log' }]
    try {
      const r = await runCli(['jobs', 'trigger', 'aggregate-features', '--follow', '--timeout', '60s'], { env: kubeEnv(s) })
      expect(r.code, r.stderr).toBe(0)
      expect(r.stdout).not.toContain(LINES[0])
      expect(r.stderr).toMatch(/following the logs of job aggregate-features-manual-\w+ stopped early \(.+\); lines may be missing above\. Read them all with: seedops jobs logs aggregate-features-manual-\w+ -n seedtest/)
    } finally {
      s.api.faults.errors = []
    }
  })

  test('trigger --wait on a failing job exits 1 with the exit code and the logs command', async () => {
    const r = await runCli(['jobs', 'trigger', 'compute-kpis', '--wait', '--json'], { env: kubeEnv(s) })
    expect(r.code).toBe(1)
    const doc = JSON.parse(r.stdout)
    expect(doc.code).toBe('JOB_FAILED')
    expect(doc.message).toMatch(/job compute-kpis-manual-\w+ failed \(BackoffLimitExceeded\): seedops exited 3/)
    expect(doc.suggestions[0]).toMatch(/^Read its logs: seedops jobs logs compute-kpis-manual-\w+ -n seedtest$/)
    // backoffLimit 2 in k8s/: three pods tried.
    expect(doc.data.problems).toHaveLength(3)
  })

  test('trigger --wait --timeout: a job that runs too long exits 1 (JOB_TIMEOUT)', async () => {
    const r = await runCli(['jobs', 'trigger', 'detect-inactivity', '--wait', '--timeout', '2s'], { env: kubeEnv(s) })
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/Error \(JOB_TIMEOUT\): job detect-inactivity-manual-\w+ did not finish within the timeout/)
  })

  test('OOMKilled, image not found and a sidecar that never exits are named, without waiting for the timeout', async () => {
    const k = clientsFor(s)
    const oom = await triggerJob(k, 'calibrate-irt')
    const w1 = await waitForJob(k, oom.metadata!.name!, { timeoutMs: 30_000 })
    expect(jobFailure(w1, 'seedtest')).toMatchObject({ code: 'JOB_OOMKILLED', message: expect.stringContaining('container seedops was OOMKilled') })

    const pull = await triggerJob(k, 'generate-report')
    const t0 = Date.now()
    const w2 = await waitForJob(k, pull.metadata!.name!, { timeoutMs: 30_000 })
    expect(Date.now() - t0).toBeLessThan(10_000)
    const e2 = jobFailure(w2, 'seedtest')
    expect(e2.code).toBe('JOB_IMAGE_PULL')
    expect(e2.message).toBe(`job ${pull.metadata!.name} cannot start: image ghcr.io/seedtest/seedops:0.1.0-report was not found`)

    const side = await triggerJob(k, 'with-sidecar')
    const w3 = await waitForJob(k, side.metadata!.name!, { timeoutMs: 30_000 })
    const e3 = jobFailure(w3, 'seedtest')
    expect(e3.code).toBe('JOB_SIDECAR_RUNNING')
    expect(e3.message).toContain('seedops exited 0 but cloud-sql-proxy is still running')
    expect(e3.suggestions[0]).toContain('native sidecar')
  })

  test('with the db-proxy overlay (native sidecar) the job completes, and logs come from the stage only', async () => {
    s.seed({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'proxy' } })
    for (const o of loadManifests({ dir: join(ROOT, 'k8s', 'overlays', 'db-proxy'), namespace: 'proxy' })) s.seed(o)
    const k = clientsFor(s, 'proxy')
    const job = await triggerJob(k, 'aggregate-features')
    const lines: string[] = []
    await jobLogs(k, job.metadata!.name!, { line: (t) => lines.push(t), marker: () => {} }, { follow: true })
    expect(lines).toEqual(LINES)
    expect((await waitForJob(k, job.metadata!.name!, { timeoutMs: 30_000 })).state).toBe('succeeded')
    const pod = s.api.jobPods('proxy', job.metadata!.name!)[0]
    expect(pod.status.initContainerStatuses).toEqual([expect.objectContaining({ name: 'db-proxy', state: { terminated: expect.objectContaining({ reason: 'Completed' }) } })])
  })

  test('Ctrl-C on trigger --follow stops following (exit 130) and leaves the Job running; SIGTERM with --delete-on-interrupt deletes it (exit 143)', async () => {
    const names: string[] = []
    for (const [sig, extra, code] of [['SIGINT', [], 130], ['SIGTERM', ['--delete-on-interrupt'], 143]] as const) {
      const child = spawnCli(['jobs', 'trigger', 'detect-inactivity', '--follow', ...extra], kubeEnv(s))
      // Following: the `+ pod › container` marker is on stderr once the log stream is open.
      const err = await waitForOutput(child.stderr!, (t) => t.includes('› seedops'), 60_000)
      const more: string[] = []
      child.stderr!.on('data', (d: Buffer) => more.push(d.toString()))
      const name = /job\.batch\/(detect-inactivity-manual-\w+) created/.exec(err)![1]!
      names.push(name)
      const t0 = Date.now()
      child.kill(sig)
      const [exit] = (await once(child, 'close')) as [number | null]
      expect(exit).toBe(code)
      expect(Date.now() - t0).toBeLessThan(5000)
      const stderr = err + more.join('')
      const job = s.api.store.list(JOBS(), 'seedtest').find((j) => j.metadata.name === name)
      if (sig === 'SIGINT') {
        expect(stderr).toContain(`Error (INTERRUPTED): SIGINT: stopped following job ${name}; the Job keeps running in the cluster`)
        expect(stderr).toContain(`seedops jobs logs ${name} -f -n seedtest`)
        expect(job).toBeDefined()
        expect(job.metadata.deletionTimestamp).toBeUndefined()
      } else {
        expect(stderr).toContain(`SIGTERM: stopped following job ${name}; the Job was deleted (--delete-on-interrupt)`)
        expect(job === undefined || job.metadata.deletionTimestamp !== undefined).toBe(true)
      }
    }
  })

  test('jobs logs prints every pod of a finished job; jobs list --failed shows the failed ones', async () => {
    const k = clientsFor(s)
    const failed = (await listJobs(k, { failed: true })).map((j) => j.cronjob)
    expect(failed).toContain('compute-kpis')
    expect(failed).toContain('calibrate-irt')
    expect(failed).not.toContain('aggregate-features')
    const kpiJob = (await listJobs(k, { cronjob: 'compute-kpis' }))[0]
    expect(kpiJob).toMatchObject({ state: 'failed', manual: true, reason: 'BackoffLimitExceeded', completions: '0/1' })
    const lines: string[] = []
    const markers: string[] = []
    const r = await jobLogs(k, kpiJob.name, { line: (t) => lines.push(t), marker: (t) => markers.push(t) })
    expect(r.pods).toHaveLength(3)
    expect(lines).toEqual(['compute-kpis: database error', 'compute-kpis: database error', 'compute-kpis: database error'])
    expect(markers.every((m) => m.startsWith('+ compute-kpis-manual-'))).toBe(true)

    // Following a job that already finished, with the stream cut after one line: nothing lost, nothing twice.
    const done = (await listJobs(k, { cronjob: 'aggregate-features' }))[0].name
    s.api.faults.dropLogStreamAfterLines = 1
    const again: string[] = []
    const notes: string[] = []
    await jobLogs(k, done, { line: (t) => again.push(t), marker: (t) => notes.push(t) }, { follow: true })
    expect(again).toEqual(LINES)
    expect(notes.some((m) => m.includes('(stream dropped, resuming from'))).toBe(true)

    const text = await listJobs(k, { failed: true })
    expect(text.every((x) => x.state === 'failed')).toBe(true)
  })
})
