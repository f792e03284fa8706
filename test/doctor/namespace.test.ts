import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { executeDoctor, type DoctorOptions } from '../../src/lib/doctor/command.js'
import { pullCause } from '../../src/lib/doctor/checks/images.js'
import { renderReport } from '../../src/lib/doctor/run.js'
import { findResource, startStandin, type Standin } from '../support/kube-standin/index.js'
import { manifestsFor, newNamespace, secretLeaks, seedAll, seedSecrets } from './helpers.js'
import type { CheckFinding } from '../../src/lib/doctor/types.js'

/**
 * doctor on what else runs in a namespace: the predecessor's CronJobs, its R Plumber service,
 * pods that cannot start, jobs without pods, CronJobs that stopped firing. Jobs, pods and events
 * are seeded as the job controller, the scheduler and the kubelet write them (a Job seeded with a
 * startTime is left alone by the stand-in's controller).
 */
let s: Standin

/** Findings as `doctor --json` prints them. */
type F = CheckFinding

async function doctor(ns: string, opts: Partial<DoctorOptions> = {}) {
  const report = await executeDoctor({ kube: { kubeconfig: s.kubeconfig, namespace: ns, requestTimeout: '10s' }, only: ['cluster'], ...opts }, { logger: { info() {}, warn() {}, debug() {}, progress() {} }, interactive: false, confirm: async () => false }, {})
  const text = renderReport(report)
  expect(secretLeaks(text + JSON.stringify(report))).toEqual([])
  return { findings: report.checks.filter((c) => c.status !== 'skip') as F[], text, report }
}
const of = (fs: F[], check: string) => fs.filter((f) => f.id === check)
const iso = (msAgo: number) => new Date(Date.now() - msAgo).toISOString().replace(/\.\d{3}Z$/, 'Z')
const H = 3_600_000

/** A predecessor CronJob as in portal_front/ops/k8s/cron/ (facts: names, schedules, commands). */
function legacyCronJob(ns: string, name: string, schedule: string, script: string, extra: Record<string, unknown> = {}) {
  return {
    apiVersion: 'batch/v1',
    kind: 'CronJob',
    metadata: { name, namespace: ns },
    spec: {
      schedule,
      concurrencyPolicy: 'Forbid',
      ...extra,
      jobTemplate: {
        spec: {
          backoffLimit: 1,
          template: {
            spec: {
              restartPolicy: 'Never',
              serviceAccountName: 'seedtest-api',
              containers: [
                { name, image: 'asia-northeast3-docker.pkg.dev/univprepai/seedtest/seedtest-api:f830ff9c2-with-env', command: ['/bin/sh', '-c', `echo "Waiting for Cloud SQL Proxy to be ready..."\nsleep 5\n${script}\n`] },
                { name: 'cloud-sql-proxy', image: 'gcr.io/cloud-sql-connectors/cloud-sql-proxy:2.11.3', args: ['--structured-logs', '--port=5432', 'univprepai:asia-northeast3:seedtest-db'] },
              ],
            },
          },
        },
      },
    },
  }
}

/** A Job of a CronJob and its one pod, in the shapes the job controller and kubelet leave them. */
function seedJobWithPod(ns: string, cronjob: any, jobName: string, main: Record<string, unknown>, opts: { failed?: boolean; logs?: string[] } = {}) {
  const cj = s.api.store.get(findResource('batch', 'v1', 'cronjobs')!, ns, cronjob.metadata.name)
  const tpl = structuredClone(cronjob.spec.jobTemplate.spec)
  const start = iso(2 * H)
  const job = s.seed({
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name: jobName, namespace: ns, ownerReferences: [{ apiVersion: 'batch/v1', kind: 'CronJob', name: cj.metadata.name, uid: cj.metadata.uid, controller: true }] },
    spec: tpl,
    status: opts.failed
      ? { startTime: start, failed: 2, conditions: [{ type: 'Failed', status: 'True', reason: 'BackoffLimitExceeded', message: 'Job has reached the specified backoff limit', lastProbeTime: start, lastTransitionTime: start }] }
      : { startTime: start, active: 1 },
  })
  const podName = `${jobName}-x7k2p`
  const containers = tpl.template.spec.containers
  s.seed({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: podName, namespace: ns, labels: { 'job-name': jobName, 'batch.kubernetes.io/job-name': jobName, 'controller-uid': job.metadata.uid }, ownerReferences: [{ apiVersion: 'batch/v1', kind: 'Job', name: jobName, uid: job.metadata.uid, controller: true, blockOwnerDeletion: true }] },
    spec: { ...tpl.template.spec, nodeName: 'node-a' },
    status: {
      phase: opts.failed ? 'Failed' : 'Running',
      startTime: start,
      containerStatuses: [
        { name: containers[0].name, image: containers[0].image, imageID: '', ready: false, restartCount: 0, started: false, ...main },
        ...containers.slice(1).map((c: any) => ({ name: c.name, image: c.image, imageID: `${c.image}@sha256:${'b'.repeat(64)}`, ready: false, restartCount: 0, started: false, state: { terminated: { exitCode: 0, reason: 'Completed', startedAt: start, finishedAt: start } } })),
      ],
    },
  })
  for (const l of opts.logs ?? []) s.api.logs.append(ns, podName, containers[0].name, l)
  s.api.logs.finish(ns, podName, containers[0].name)
  return job
}

function seedEvent(ns: string, involved: { kind: string; name: string; uid?: string }, reason: string, message: string, component: string) {
  s.seed({
    apiVersion: 'v1',
    kind: 'Event',
    metadata: { name: `${involved.name}.${Math.random().toString(16).slice(2, 14)}`, namespace: ns },
    involvedObject: { kind: involved.kind, namespace: ns, name: involved.name, uid: involved.uid, apiVersion: involved.kind === 'Job' ? 'batch/v1' : 'v1' },
    reason,
    message,
    source: { component },
    firstTimestamp: iso(H),
    lastTimestamp: iso(60_000),
    count: 4,
    type: 'Warning',
    reportingComponent: component,
    reportingInstance: '',
  })
}

beforeAll(async () => {
  s = await startStandin()
})
afterAll(() => s?.stop())

describe('doctor sees the whole namespace', { timeout: 120_000 }, () => {
  test('legacy CronJobs by module path and name: each a duplicate named with both schedules; two legacy CronJobs for one stage', async () => {
    const ns = newNamespace(s, 'legacy')
    seedAll(s, manifestsFor(ns))
    seedSecrets(s, ns)
    seedAll(s, [
      legacyCronJob(ns, 'aggregate-features-daily', '25 2 * * *', 'python3 -m seedtest_api.jobs.aggregate_features_daily') as any,
      legacyCronJob(ns, 'compute-daily-kpis', '10 2 * * *', 'python3 -m seedtest_api.jobs.compute_daily_kpis') as any,
      legacyCronJob(ns, 'generate-weekly-report', '0 4 * * 1', 'python3 /app/generate_weekly_report.py --dry-run') as any,
    ])
    const { findings } = await doctor(ns, { only: ['cronjobs.present'] })
    const dup = of(findings, 'cronjobs.present')
    expect(dup.map((f) => f.message).sort()).toEqual([
      'stage aggregate-features is scheduled twice: legacy CronJob aggregate-features-daily ("25 2 * * *") runs seedtest_api.jobs.aggregate_features_daily beside seedops\' aggregate-features ("15 1 * * *" Etc/UTC)',
      'stage compute-kpis is scheduled twice: legacy CronJob compute-daily-kpis ("10 2 * * *") runs seedtest_api.jobs.compute_daily_kpis beside seedops\' compute-kpis ("10 2 * * *" Etc/UTC)',
      'stage generate-report is scheduled twice: legacy CronJob generate-weekly-report ("0 4 * * 1") runs /app/generate_weekly_report.py beside seedops\' generate-report ("0 4 * * 1" Etc/UTC)',
    ])
    expect(dup[0].fix).toEqual([`seedops adopt -n ${ns}   # shows the plan`, `seedops adopt -n ${ns} --yes   # deploys seedops' CronJob, suspends the legacy one (--rollback undoes it)`])
    // Not an exact copy of seedops' command: --fix never deletes a legacy CronJob.
    expect(dup.every((f) => !('safeFix' in f) || f.safeFix === undefined)).toBe(true)

    // The predecessor alone: calibrate-irt-weekly and mirt-calibrate run one stage twice.
    const old = newNamespace(s, 'legacy-only')
    seedAll(s, [
      legacyCronJob(old, 'calibrate-irt-weekly', '0 3 * * *', 'cd /app\npython3 -m apps.seedtest_api.jobs.mirt_calibrate') as any,
      legacyCronJob(old, 'mirt-calibrate', '0 3 * * *', 'python3 -m apps.seedtest_api.jobs.mirt_calibrate') as any,
      legacyCronJob(old, 'detect-inactivity', '0 5 * * *', 'python3 -m apps.seedtest_api.jobs.detect_inactivity') as any,
    ])
    const both = (await doctor(old, { only: ['cronjobs.present', 'cronjobs.spec'] })).findings
    const o = of(both, 'cronjobs.present')
    expect(o.find((f) => f.message.startsWith('stage calibrate-irt is scheduled 2 times'))!.message).toBe('stage calibrate-irt is scheduled 2 times by legacy CronJobs: calibrate-irt-weekly ("0 3 * * *") and mirt-calibrate ("0 3 * * *")')
    // seedops not deployed at all: one finding naming what the predecessor runs, not one "is missing" per CronJob.
    expect(o.filter((f) => f.message.includes(' is missing'))).toEqual([])
    expect(o.find((f) => f.subject === old)).toMatchObject({
      status: 'fail',
      message: `seedops is not deployed in ${old}; the predecessor's CronJobs run calibrate-irt (calibrate-irt-weekly, mirt-calibrate), detect-inactivity (detect-inactivity); nothing runs aggregate-features, compute-kpis, generate-report: seedops adopt -n ${old} shows the plan`,
      fix: [`seedops adopt -n ${old}   # shows the plan`, `seedops adopt -n ${old} --yes   # deploys seedops' CronJob, suspends the legacy one (--rollback undoes it)`],
    })
    // The predecessor's detect-inactivity has seedops' name: said so, and adopt is the fix.
    const same = of(both, 'cronjobs.spec').find((f) => f.subject === 'detect-inactivity')!
    expect(same.message).toBe('CronJob detect-inactivity is the predecessor\'s, not seedops\': it runs apps.seedtest_api.jobs.detect_inactivity ("0 5 * * *")')
    expect(same.fix![0]).toBe(`seedops adopt -n ${old}   # shows the plan`)
  })

  test('module path mismatch: StartError (exec not found) and ModuleNotFoundError in the last log lines', async () => {
    const ns = newNamespace(s, 'modules')
    const agg = legacyCronJob(ns, 'aggregate-features-daily', '25 2 * * *', 'python3 -m seedtest_api.jobs.aggregate_features_daily')
    const kpi = legacyCronJob(ns, 'compute-daily-kpis', '10 2 * * *', 'python3 -m seedtest_api.jobs.compute_daily_kpis')
    const det = { ...legacyCronJob(ns, 'detect-inactivity', '0 5 * * *', '') } as any
    det.spec.jobTemplate.spec.template.spec.containers[0].command = ['python3', '-m', 'apps.seedtest_api.jobs.detect_inactivity']
    seedAll(s, [agg, kpi, det] as any)
    const t = iso(2 * H)
    seedJobWithPod(ns, agg, 'aggregate-features-daily-29401425', { state: { terminated: { exitCode: 1, reason: 'Error', startedAt: t, finishedAt: t } } }, {
      failed: true,
      logs: ['Waiting for Cloud SQL Proxy to be ready...', "/usr/local/bin/python3: Error while finding module specification for 'seedtest_api.jobs.aggregate_features_daily' (ModuleNotFoundError: No module named 'seedtest_api')"],
    })
    seedJobWithPod(ns, det, 'detect-inactivity-29401500', {
      state: { terminated: { exitCode: 128, reason: 'StartError', message: 'failed to create containerd task: failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: error during container init: exec: "python3": executable file not found in $PATH: unknown', startedAt: '1970-01-01T00:00:00Z', finishedAt: t } },
    }, { failed: true })
    // A job that failed for another reason is not a module mismatch.
    seedJobWithPod(ns, kpi, 'compute-daily-kpis-29401390', { state: { terminated: { exitCode: 1, reason: 'Error', startedAt: t, finishedAt: t } } }, { failed: true, logs: ['psycopg2.OperationalError: connection to server at "127.0.0.1", port 5432 failed: Connection refused'] })

    const { findings, text } = await doctor(ns, { only: ['jobs.module-path', 'jobs.failed'] })
    const m = of(findings, 'jobs.module-path')
    // Reported once: jobs.failed leaves the module mismatches to jobs.module-path and keeps the other failure.
    expect(of(findings, 'jobs.failed').map((f) => [f.status, f.subject])).toEqual([['fail', 'compute-daily-kpis-29401390']])
    expect(m.map((f) => f.message)).toEqual([
      "CronJob aggregate-features-daily: module path mismatch: seedtest_api.jobs.aggregate_features_daily is not in image asia-northeast3-docker.pkg.dev/univprepai/seedtest/seedtest-api:f830ff9c2-with-env (No module named 'seedtest_api', exit 1)",
      'CronJob detect-inactivity: module path mismatch: apps.seedtest_api.jobs.detect_inactivity is not in image asia-northeast3-docker.pkg.dev/univprepai/seedtest/seedtest-api:f830ff9c2-with-env (exec: "python3": executable file not found in $PATH, exit 128 StartError)',
    ])
    expect(m[0].fix![1]).toBe(`seedops adopt -n ${ns} --yes   # replaces it with \`seedops run aggregate-features\``)
    expect(m[1].fix![1]).toBe(`seedops adopt -n ${ns} --yes   # replaces it with \`seedops run detect-inactivity\``)
    expect(text).toContain('FAIL  jobs.module-path')
  })

  test("the IRT Deployments: r-irt-plumber's NetworkPolicy allows 80 while the pod listens on 8000, not ready, restarts; seedops-irt's missing secret is a failure", async () => {
    const ns = newNamespace(s, 'irt')
    const labels = { app: 'r-irt-plumber' }
    s.seed({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'r-irt-plumber', namespace: ns, labels },
      spec: { replicas: 1, selector: { matchLabels: labels }, template: { metadata: { labels }, spec: { containers: [{ name: 'r-irt-plumber', image: 'gcr.io/univprepai/r-irt-plumber:1.0.0', ports: [{ containerPort: 8000 }], env: [{ name: 'PORT', value: '8000' }] }] } } },
      status: { observedGeneration: 1, replicas: 1, updatedReplicas: 1, unavailableReplicas: 1, conditions: [{ type: 'Available', status: 'False', reason: 'MinimumReplicasUnavailable', message: 'Deployment does not have minimum availability.' }] },
    })
    s.seed({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'r-irt-plumber', namespace: ns, labels }, spec: { selector: labels, ports: [{ name: 'http', protocol: 'TCP', port: 80, targetPort: 8000 }] } })
    s.seed({ apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: 'allow-seedtest-api-to-r-irt-plumber', namespace: ns }, spec: { podSelector: { matchLabels: labels }, policyTypes: ['Ingress'], ingress: [{ from: [{ podSelector: { matchLabels: { app: 'seedtest-api' } } }], ports: [{ protocol: 'TCP', port: 80 }] }] } })
    const t = iso(H)
    s.seed({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'r-irt-plumber-7c9d5b8f6-q2wxz', namespace: ns, labels: { ...labels, 'pod-template-hash': '7c9d5b8f6' }, ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'r-irt-plumber-7c9d5b8f6', uid: '5f0c6a4e-1111-4c1e-9a53-0a6b1b7e2f10', controller: true }] },
      spec: { containers: [{ name: 'r-irt-plumber', image: 'gcr.io/univprepai/r-irt-plumber:1.0.0', ports: [{ containerPort: 8000 }] }], nodeName: 'node-a' },
      status: { phase: 'Running', startTime: t, containerStatuses: [{ name: 'r-irt-plumber', image: 'gcr.io/univprepai/r-irt-plumber:1.0.0', imageID: '', ready: false, started: true, restartCount: 4, state: { running: { startedAt: t } }, lastState: { terminated: { exitCode: 137, reason: 'Error', startedAt: t, finishedAt: t } } }] },
    })
    // seedops' own service without its token secret.
    seedAll(s, manifestsFor(ns).filter((o) => o.kind === 'Deployment' || o.kind === 'Service'))
    seedSecrets(s, ns, { omit: ['r-irt-credentials'] })

    const { findings } = await doctor(ns, { only: ['deployments.irt'] })
    expect(of(findings, 'deployments.irt').map((f) => `${f.status}: ${f.message}`)).toEqual([
      'fail: Deployment r-irt-plumber: 0/1 replicas ready',
      "fail: NetworkPolicy allow-seedtest-api-to-r-irt-plumber allows ingress to r-irt-plumber on port 80 only, but the pod listens on 8000: NetworkPolicy ports are the pod's ports (not the Service's), so every request is dropped",
      'fail: Deployment seedops-irt reads secret r-irt-credentials, which is missing: its pods cannot start',
      'warn: Deployment r-irt-plumber: container r-irt-plumber of pod r-irt-plumber-7c9d5b8f6-q2wxz restarted 4 times, last exit 137 (Error)',
    ])
    const np = findings.find((f) => f.message.startsWith('NetworkPolicy'))!
    expect(np.fix).toEqual([`kubectl -n ${ns} patch networkpolicy allow-seedtest-api-to-r-irt-plumber --type=json -p '[{"op":"replace","path":"/spec/ingress/0/ports/0/port","value":8000}]'`])
    expect(findings.find((f) => f.message.includes('seedops-irt reads secret'))!.fix).toEqual([`seedops secrets ensure --only irt -n ${ns}`])
  })

  test('pods: CreateContainerConfigError names the secret, CrashLoopBackOff with its last lines, FailedScheduling, a native sidecar stuck in Init on 1.28', async () => {
    const ns = newNamespace(s, 'pods')
    const t = iso(H)
    const pod = (name: string, spec: any, status: any) => s.seed({ apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: ns, labels: { app: name.split('-')[0] } }, spec, status: { startTime: t, ...status } })
    pod('api-config', { containers: [{ name: 'seedops', image: 'ghcr.io/seedtest/seedops:0.1.0' }], nodeName: 'node-a' }, {
      phase: 'Pending',
      containerStatuses: [{ name: 'seedops', image: 'ghcr.io/seedtest/seedops:0.1.0', imageID: '', ready: false, restartCount: 0, started: false, state: { waiting: { reason: 'CreateContainerConfigError', message: `couldn't find key token in Secret ${ns}/r-irt-credentials` } } }],
    })
    pod('legacy-config', { containers: [{ name: 'api', image: 'gcr.io/univprepai/seedtest-api:latest' }], nodeName: 'node-a' }, {
      phase: 'Pending',
      containerStatuses: [{ name: 'api', image: 'gcr.io/univprepai/seedtest-api:latest', imageID: '', ready: false, restartCount: 0, started: false, state: { waiting: { reason: 'CreateContainerConfigError', message: 'secret "seedtest-irt-credentials" not found' } } }],
    })
    pod('crash-loop', { containers: [{ name: 'web', image: 'ghcr.io/seedtest/seedops:0.1.0' }], nodeName: 'node-a' }, {
      phase: 'Running',
      containerStatuses: [{ name: 'web', image: 'ghcr.io/seedtest/seedops:0.1.0', imageID: '', ready: false, started: false, restartCount: 6, state: { waiting: { reason: 'CrashLoopBackOff', message: `back-off 2m40s restarting failed container=web pod=crash-loop_${ns}(0b7c2a4e-5d1f-4f0e-9b1a-7c3d2e1f0a9b)` } }, lastState: { terminated: { exitCode: 1, reason: 'Error', startedAt: t, finishedAt: t } } }],
    })
    s.api.logs.append(ns, 'crash-loop', 'web', 'Error (CONFIG): R_IRT_BASE_URL is not a URL')
    pod('big-calibration', { containers: [{ name: 'seedops', image: 'ghcr.io/seedtest/seedops:0.1.0', resources: { requests: { memory: '24Gi', cpu: '2' } } }] }, {
      phase: 'Pending',
      conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: '0/3 nodes are available: 3 Insufficient memory. preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod.', lastTransitionTime: t }],
    })
    seedEvent(ns, { kind: 'Pod', name: 'big-calibration' }, 'FailedScheduling', '0/3 nodes are available: 3 Insufficient memory. preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod.', 'default-scheduler')
    // On a 1.28 apiserver restartPolicy: Always on an init container is dropped: the proxy never exits.
    pod('with-proxy', { initContainers: [{ name: 'cloud-sql-proxy', image: 'gcr.io/cloud-sql-connectors/cloud-sql-proxy:2.14.1', args: ['--port=5432', 'p:r:db'] }], containers: [{ name: 'seedops', image: 'ghcr.io/seedtest/seedops:0.1.0' }], nodeName: 'node-a' }, {
      phase: 'Pending',
      conditions: [{ type: 'Initialized', status: 'False', reason: 'ContainersNotInitialized', message: 'containers with incomplete status: [cloud-sql-proxy]', lastTransitionTime: t }],
      initContainerStatuses: [{ name: 'cloud-sql-proxy', image: 'gcr.io/cloud-sql-connectors/cloud-sql-proxy:2.14.1', imageID: '', ready: false, started: true, restartCount: 0, state: { running: { startedAt: t } } }],
      containerStatuses: [{ name: 'seedops', image: 'ghcr.io/seedtest/seedops:0.1.0', imageID: '', ready: false, started: false, restartCount: 0, state: { waiting: { reason: 'PodInitializing' } } }],
    })
    s.api.version = { major: '1', minor: '28', gitVersion: 'v1.28.15' }
    try {
      const { findings } = await doctor(ns, { only: ['pods.stuck'] })
      const msgs = of(findings, 'pods.stuck').map((f) => f.message)
      expect(msgs).toEqual([
        'pod api-config cannot start container seedops: secret r-irt-credentials has no key token [CreateContainerConfigError]',
        'pod big-calibration cannot be scheduled: 0/3 nodes are available: 3 Insufficient memory. preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod.',
        'pod crash-loop: container web is in CrashLoopBackOff, restarted 6 times, last exit 1 (Error)',
        'pod legacy-config cannot start container api: secret seedtest-irt-credentials does not exist [CreateContainerConfigError]',
        'pod with-proxy is stuck in Init: init container cloud-sql-proxy never exits; it is meant as a native sidecar (initContainers with restartPolicy: Always), which needs Kubernetes ≥ 1.29, and this server is v1.28.15 (it dropped restartPolicy: Always)',
      ])
      const f = (p: string) => findings.find((x) => x.subject === p)!
      expect(f('api-config').fix).toEqual([`seedops secrets ensure --only irt --update -n ${ns}`])
      expect(f('legacy-config').fix).toEqual([`kubectl -n ${ns} create secret generic seedtest-irt-credentials --from-literal=<key>=…`])
      expect(f('crash-loop').details).toEqual(['| Error (CONFIG): R_IRT_BASE_URL is not a URL'])
      expect(f('big-calibration').fix![0]).toBe('lower the requests (container seedops requests memory 24Gi) or add nodes with more memory')
      expect(f('with-proxy').fix![0]).toContain('upgrade the cluster to 1.29 or later')
    } finally {
      s.api.version = { major: '1', minor: '35', gitVersion: 'v1.35.0-seedops-standin' }
    }
    // On 1.35 a pod an hour in Init is only a warning (no sidecar explanation).
    const later = of((await doctor(ns, { only: ['pods.stuck'] })).findings, 'pods.stuck').find((x) => x.subject === 'with-proxy')!
    expect(later).toMatchObject({ status: 'warn', message: 'pod with-proxy has been in Init for 1h: init container cloud-sql-proxy is still running' })
  })

  test('jobs that never got a pod: quota, Pod Security, missing ServiceAccount (FailedCreate events)', async () => {
    const ns = newNamespace(s, 'nopods')
    const objs = manifestsFor(ns).filter((o) => o.kind === 'CronJob')
    seedAll(s, objs)
    const cj = (n: string) => s.api.store.get(findResource('batch', 'v1', 'cronjobs')!, ns, n)
    const job = (cron: string, name: string) =>
      s.seed({ apiVersion: 'batch/v1', kind: 'Job', metadata: { name, namespace: ns, ownerReferences: [{ apiVersion: 'batch/v1', kind: 'CronJob', name: cron, uid: cj(cron).metadata.uid, controller: true }] }, spec: structuredClone(cj(cron).spec.jobTemplate.spec), status: { startTime: iso(H), active: 0 } })
    const j1 = job('calibrate-irt', 'calibrate-irt-29401380')
    const j2 = job('compute-kpis', 'compute-kpis-29401330')
    const j3 = job('detect-inactivity', 'detect-inactivity-29401500')
    seedEvent(ns, { kind: 'Job', name: j1.metadata.name, uid: j1.metadata.uid }, 'FailedCreate', `Error creating: pods "calibrate-irt-29401380-" is forbidden: exceeded quota: compute-resources, requested: limits.memory=2Gi, used: limits.memory=7Gi, limited: limits.memory=8Gi`, 'job-controller')
    seedEvent(ns, { kind: 'Job', name: j2.metadata.name, uid: j2.metadata.uid }, 'FailedCreate', `Error creating: pods "compute-kpis-29401330-8wq4n" is forbidden: violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false (container "cloud-sql-proxy" must set securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (container "cloud-sql-proxy" must set securityContext.capabilities.drop=["ALL"])`, 'job-controller')
    seedEvent(ns, { kind: 'Job', name: j3.metadata.name, uid: j3.metadata.uid }, 'FailedCreate', `Error creating: pods "detect-inactivity-29401500-" is forbidden: error looking up service account ${ns}/seedops-runner: serviceaccount "seedops-runner" not found`, 'job-controller')
    const { findings } = await doctor(ns, { only: ['jobs.no-pods'] })
    const f = of(findings, 'jobs.no-pods')
    expect(f.map((x) => x.message)).toEqual([
      'job calibrate-irt-29401380 (cronjob calibrate-irt) never got a pod: a ResourceQuota is exceeded',
      'job compute-kpis-29401330 (cronjob compute-kpis) never got a pod: Pod Security rejects the pod',
      'job detect-inactivity-29401500 (cronjob detect-inactivity) never got a pod: its ServiceAccount seedops-runner does not exist',
    ])
    expect(f[0].fix![0]).toBe(`kubectl -n ${ns} describe resourcequota compute-resources`)
    expect(f[1].fix![0]).toContain('Pod Security level (restricted:latest)')
    expect(f[1].details![0]).toContain('allowPrivilegeEscalation != false')
    expect(f[2].fix).toEqual([`seedops deploy -n ${ns}   # creates the ServiceAccount seedops-runner`])
  })

  test('CronJobs that have not fired: daily missed for days, in its time zone; Forbid with a stuck job; suspended ones are not due', async () => {
    const ns = newNamespace(s, 'fired')
    const objs = manifestsFor(ns).filter((o) => o.kind === 'CronJob')
    objs.find((o) => o.metadata.name === 'detect-inactivity')!.spec.suspend = true
    seedAll(s, objs)
    const CJ = findResource('batch', 'v1', 'cronjobs')!
    const setStatus = (name: string, status: any, spec: any = {}) => {
      const o = s.api.store.get(CJ, ns, name)
      s.api.store.update(CJ, { ...o, spec: { ...o.spec, ...spec }, status })
    }
    setStatus('compute-kpis', { lastScheduleTime: iso(74 * H), lastSuccessfulTime: iso(74 * H) }, { timeZone: 'Asia/Seoul' })
    setStatus('aggregate-features', { lastScheduleTime: iso(50 * H), active: [{ kind: 'Job', namespace: ns, name: 'aggregate-features-29398815', apiVersion: 'batch/v1' }] }, { concurrencyPolicy: 'Forbid' })
    setStatus('detect-inactivity', { lastScheduleTime: iso(200 * H) })
    const { findings } = await doctor(ns, { only: ['cronjobs.fired'] })
    const f = of(findings, 'cronjobs.fired')
    expect(f.map((x) => x.subject)).toEqual(['aggregate-features', 'compute-kpis'])
    expect(f[1].message).toMatch(/^CronJob compute-kpis \("10 2 \* \* \*" Asia\/Seoul\) has not fired since its last run \S+Z: due \S+ \(\S+ ago\), [34] runs missed; the CronJob controller did not start it/)
    // 74 h hold 3 or 4 daily fires, by the hour the test runs (4 when now is 17:10–19:10 UTC). 02:10 in Seoul is 17:10 UTC.
    expect(f[1].message).toMatch(/due \d{4}-\d\d-\d\dT17:10:00\.000Z/)
    expect(f[0].message).toContain('job aggregate-features-29398815 is still active and concurrencyPolicy Forbid skips every run while it is')
    expect(f[0].fix![0]).toBe(`kubectl -n ${ns} delete job aggregate-features-29398815`)
    expect(f[1].fix!.at(-1)).toBe(`run it now: seedops jobs trigger compute-kpis -n ${ns} --wait`)
  })

  test('image-pull messages as containerd and the kubelet ≥ 1.32 write them', async () => {
    // containerd, registry answered 404
    expect(pullCause('rpc error: code = NotFound desc = failed to pull and unpack image "ghcr.io/seedtest/seedops:0.0.9": failed to resolve reference "ghcr.io/seedtest/seedops:0.0.9": ghcr.io/seedtest/seedops:0.0.9: not found')).toBe('not-found')
    // containerd, private registry without credentials
    expect(pullCause('failed to pull and unpack image "ghcr.io/seedtest/private:1": failed to resolve reference "ghcr.io/seedtest/private:1": failed to authorize: failed to fetch anonymous token: unexpected status from GET request to https://ghcr.io/token?scope=repository%3Aseedtest%2Fprivate%3Apull&service=ghcr.io: 401 Unauthorized')).toBe('unauthorized')
    expect(pullCause('failed to pull and unpack image "europe-docker.pkg.dev/p/r/seedops:1": failed to resolve reference "europe-docker.pkg.dev/p/r/seedops:1": unexpected status from HEAD request to https://europe-docker.pkg.dev/v2/p/r/seedops/manifests/1: 403 Forbidden')).toBe('unauthorized')
    // Docker Hub: the same answer for a missing and a private repository
    expect(pullCause('failed to pull and unpack image "docker.io/seedtest/seedops:1.4.0": failed to resolve reference "docker.io/seedtest/seedops:1.4.0": pull access denied, repository does not exist or may require authorization: server message: insufficient_scope: authorization failed')).toBe('not-found-or-unauthorized')
    // kubelet ≥ 1.32 repeats the pull error in the back-off message (events may have expired)
    const ns = newNamespace(s, 'pulls')
    const objs = manifestsFor(ns, 'docker.io/seedtest/seedops:1.4.0').filter((o) => o.kind === 'CronJob' && o.metadata.name === 'compute-kpis')
    seedAll(s, objs)
    const cj = s.api.store.get(findResource('batch', 'v1', 'cronjobs')!, ns, 'compute-kpis')
    const job = s.seed({ apiVersion: 'batch/v1', kind: 'Job', metadata: { name: 'compute-kpis-29401330', namespace: ns, ownerReferences: [{ apiVersion: 'batch/v1', kind: 'CronJob', name: 'compute-kpis', uid: cj.metadata.uid, controller: true }] }, spec: structuredClone(cj.spec.jobTemplate.spec), status: { startTime: iso(H), active: 1 } })
    const image = 'docker.io/seedtest/seedops:1.4.0'
    s.seed({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'compute-kpis-29401330-m4zxp', namespace: ns, labels: { 'job-name': job.metadata.name }, ownerReferences: [{ apiVersion: 'batch/v1', kind: 'Job', name: job.metadata.name, uid: job.metadata.uid, controller: true }] },
      spec: { ...structuredClone(cj.spec.jobTemplate.spec.template.spec), nodeName: 'node-a' },
      status: { phase: 'Pending', containerStatuses: [{ name: 'seedops', image, imageID: '', ready: false, started: false, restartCount: 0, state: { waiting: { reason: 'ImagePullBackOff', message: `Back-off pulling image "${image}": ErrImagePull: failed to pull and unpack image "${image}": failed to resolve reference "${image}": pull access denied, repository does not exist or may require authorization: server message: insufficient_scope: authorization failed` } } }] },
    })
    const { findings } = await doctor(ns, { only: ['pods.image-pull'] })
    const f = of(findings, 'pods.image-pull')[0]
    expect(f.message).toBe('pod compute-kpis-29401330-m4zxp (cronjob compute-kpis) cannot pull docker.io/seedtest/seedops:1.4.0: not found or unauthorized: docker.io says the same for a repository that does not exist and one that needs credentials [ImagePullBackOff]')
    expect(f.fix![0]).toBe('if the image name is wrong: seedops deploy -n pulls --image <registry>/seedops:<tag>')
    expect(f.fix![1]).toContain('create secret docker-registry regcred --docker-server=docker.io')
  })
})
