import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseAllDocuments } from 'yaml'
import { findResource, type Standin } from './kube-standin/index.js'

/**
 * The predecessor's namespace (test/fixtures/predecessor/namespace/*.yaml) seeded into the
 * stand-in, plus the runtime objects of its failed runs (Jobs, Pods, Events, container logs) in
 * the shapes the job controller, the kubelet and containerd write them. Returns what was planted.
 */
export const PREDECESSOR_DIR = join(import.meta.dirname, '..', 'fixtures', 'predecessor', 'namespace')

/** The secret values in the fixture, decoded: tests assert none of them reaches output. */
export const PREDECESSOR_SECRET_VALUES = {
  DATABASE_URL: 'postgresql+psycopg://seedtest:Pred-Db-Pa55-fixture@127.0.0.1:5432/seedtest',
  R_IRT_INTERNAL_TOKEN: 'pred-irt-token-7f3a9c2e51',
  R_IRT_BASE_URL: 'http://r-irt-plumber.seedtest.svc.cluster.local:8000',
  AWS_ACCESS_KEY_ID: 'AKIAPREDECESSORFIX1',
  AWS_SECRET_ACCESS_KEY: 'predSecretKey/Fixture+9xQ2',
  BRMS_TOKEN: 'pred-brms-token-0c4d',
}

export type PlantedProblem = 'duplicate-cronjob' | 'wrong-module' | 'missing-secret' | 'wrong-image' | 'oom-killed' | 'sidecar-never-exits' | 'networkpolicy-port-mismatch' | 'secret-wrong-name'

export interface Planted {
  problem: PlantedProblem
  /** `Kind/name` of the object that shows it. */
  object: string
  detail: string
}

const rt = (apiVersion: string, resource: string) => {
  const [g, v] = apiVersion.includes('/') ? apiVersion.split('/') : ['', apiVersion]
  return findResource(g, v, resource)!
}
const JOBS = () => rt('batch/v1', 'jobs')
const PODS = () => rt('v1', 'pods')
const CRONJOBS = () => rt('batch/v1', 'cronjobs')

const ago = (ms: number) => new Date(Date.now() - ms).toISOString().replace(/\.\d{3}Z$/, 'Z')
const H = 3_600_000

/** The YAML objects of the fixture, in file order, for a namespace. */
export function predecessorObjects(ns: string): any[] {
  const out: any[] = []
  for (const f of readdirSync(PREDECESSOR_DIR).filter((x) => x.endsWith('.yaml')).sort()) {
    for (const d of parseAllDocuments(readFileSync(join(PREDECESSOR_DIR, f), 'utf8'))) {
      const o = d.toJS()
      if (!o) continue
      o.metadata.namespace = ns
      out.push(o)
    }
  }
  return out
}

export function seedPredecessorNamespace(s: Standin, ns = 'seedtest'): Planted[] {
  if (!s.api.store.get(rt('v1', 'namespaces'), undefined, ns)) s.seed({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } })
  for (const o of predecessorObjects(ns)) s.seed(o)
  const cj = (name: string) => s.api.store.get(CRONJOBS(), ns, name)

  // The CronJobs' status as the cronjob controller leaves it.
  const setStatus = (name: string, status: any) => {
    const o = cj(name)
    o.status = status
    s.api.store.update(CRONJOBS(), o)
  }
  setStatus('compute-daily-kpis', { lastScheduleTime: ago(20 * H), active: [] })
  setStatus('fit-bayesian-growth', { lastScheduleTime: ago(70 * H), lastSuccessfulTime: ago(69 * H) })
  setStatus('aggregate-features-daily-r', { lastScheduleTime: ago(30 * 24 * H), lastSuccessfulTime: ago(30 * 24 * H - 600_000) })

  const event = (involved: any, type: 'Normal' | 'Warning', reason: string, message: string, component: string, when: string, count = 1) =>
    s.seed({
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { name: `${involved.metadata.name}.${Math.random().toString(16).slice(2, 18)}`, namespace: ns },
      involvedObject: { kind: involved.kind, namespace: ns, name: involved.metadata.name, uid: involved.metadata.uid, apiVersion: involved.apiVersion, resourceVersion: involved.metadata.resourceVersion, ...(involved.kind === 'Pod' && component === 'kubelet' ? { fieldPath: `spec.containers{${involved.spec.containers[0].name}}` } : {}) },
      reason,
      message,
      source: component === 'kubelet' ? { component, host: 'gke-seedtest-pool-1-a1b2' } : { component },
      firstTimestamp: when,
      lastTimestamp: when,
      count,
      type,
      reportingComponent: component,
      reportingInstance: component === 'kubelet' ? 'gke-seedtest-pool-1-a1b2' : '',
    })

  /** A Job made by the cronjob controller from the CronJob's template, with its status. */
  const job = (cronjob: string, suffix: string, startedAgo: number, status: any) => {
    const c = cj(cronjob)
    const tpl = c.spec.jobTemplate
    const j = s.seed({
      apiVersion: 'batch/v1',
      kind: 'Job',
      metadata: {
        name: `${cronjob}-${suffix}`,
        namespace: ns,
        labels: { ...(tpl.metadata?.labels ?? {}) },
        annotations: { 'batch.kubernetes.io/cronjob-scheduled-timestamp': ago(startedAgo) },
        ownerReferences: [{ apiVersion: 'batch/v1', kind: 'CronJob', name: cronjob, uid: c.metadata.uid, controller: true, blockOwnerDeletion: true }],
      },
      spec: structuredClone(tpl.spec),
      status: { startTime: ago(startedAgo), ...status },
    })
    event(c, 'Normal', 'SuccessfulCreate', `Created job ${j.metadata.name}`, 'cronjob-controller', ago(startedAgo))
    return j
  }

  /** A pod of the job as the job controller creates it, with the kubelet's status. */
  const pod = (j: any, suffix: string, startedAgo: number, phase: string, statuses: Record<string, any>, extra: any = {}) => {
    const spec = structuredClone(j.spec.template.spec)
    const p = s.seed({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: `${j.metadata.name}-${suffix}`,
        namespace: ns,
        labels: { ...(j.spec.template.metadata?.labels ?? {}) },
        ownerReferences: [{ apiVersion: 'batch/v1', kind: 'Job', name: j.metadata.name, uid: j.metadata.uid, controller: true, blockOwnerDeletion: true }],
        finalizers: phase === 'Running' || phase === 'Pending' ? ['batch.kubernetes.io/job-tracking'] : [],
      },
      spec: { ...spec, nodeName: 'gke-seedtest-pool-1-a1b2', serviceAccountName: spec.serviceAccountName ?? 'default' },
      status: {
        phase,
        hostIP: '10.128.0.12',
        podIP: '10.52.1.17',
        qosClass: 'Burstable',
        startTime: ago(startedAgo),
        conditions: [{ type: 'PodScheduled', status: 'True', lastTransitionTime: ago(startedAgo) }],
        containerStatuses: spec.containers.map((c: any) => ({ name: c.name, image: c.image, imageID: statuses[c.name]?.state?.waiting ? '' : `${c.image.split(':')[0]}@sha256:${'7'.repeat(64)}`, restartCount: 0, started: Boolean(statuses[c.name]?.state?.running), ready: Boolean(statuses[c.name]?.state?.running), lastState: {}, ...statuses[c.name] })),
        ...extra,
      },
    })
    event(j, 'Normal', 'SuccessfulCreate', `Created pod: ${p.metadata.name}`, 'job-controller', ago(startedAgo))
    return p
  }
  const logs = (p: any, container: string, lines: string[], finished = true) => {
    for (const l of lines) s.api.logs.append(ns, p.metadata.name, container, l)
    if (finished) s.api.logs.finish(ns, p.metadata.name, container)
  }
  const term = (exitCode: number, reason: string, startedAgo: number, ranMs: number, message?: string) => ({ state: { terminated: { exitCode, reason, startedAt: ago(startedAgo), finishedAt: ago(startedAgo - ranMs), containerID: `containerd://${'a'.repeat(64)}`, ...(message ? { message } : {}) } } })
  const running = (startedAgo: number) => ({ state: { running: { startedAt: ago(startedAgo) } }, ready: true, started: true })

  // Sidecar never exits: the stage finished, the proxy keeps the pod (and the job) running for two days.
  const sideJob = job('aggregate-features-daily', '29374705', 48 * H, { active: 1, ready: 0, terminating: 0, uncountedTerminatedPods: {} })
  const sidePod = pod(sideJob, 'x7k2p', 48 * H, 'Running', { 'aggregate-features-daily': term(0, 'Completed', 48 * H, 95_000), 'cloud-sql-proxy': running(48 * H) })
  logs(sidePod, 'aggregate-features-daily', ['Waiting for Cloud SQL Proxy to be ready...', '[aggregate_features_daily] lookback=7 users=1204', '[aggregate_features_daily] upserted 18330 rows into features_topic_daily', '[aggregate_features_daily] done'])
  logs(sidePod, 'cloud-sql-proxy', ['{"severity":"INFO","message":"Listening on 127.0.0.1:5432"}', '{"severity":"INFO","message":"The proxy has started successfully and is ready for new connections!"}'], false)

  // OOMKilled: unlimited observations under a 2Gi limit. The proxy keeps that pod running too.
  const oomJob = job('mirt-calibrate', '29374740', 26 * H, { active: 1, ready: 0, terminating: 0, uncountedTerminatedPods: {} })
  const oomPod = pod(oomJob, 'q9m4t', 26 * H, 'Running', { 'mirt-calibrate': term(137, 'OOMKilled', 26 * H, 412_000), 'cloud-sql-proxy': running(26 * H) })
  logs(oomPod, 'mirt-calibrate', ['Waiting for Cloud SQL Proxy to be ready...', 'Starting IRT calibration...', '[mirt_calibrate] lookback=30d max_obs=0 (unlimited)', '[mirt_calibrate] loaded 2481337 observations, building response matrix'])

  // Wrong module path: python3 -m on a module the image does not have; exit 1, twice (backoffLimit 1).
  const modJob = job('detect-inactivity', '29374800', 22 * H, {
    active: 0,
    failed: 2,
    ready: 0,
    terminating: 0,
    uncountedTerminatedPods: {},
    conditions: [
      { type: 'FailureTarget', status: 'True', lastProbeTime: ago(22 * H - 60_000), lastTransitionTime: ago(22 * H - 60_000), reason: 'BackoffLimitExceeded', message: 'Job has reached the specified backoff limit' },
      { type: 'Failed', status: 'True', lastProbeTime: ago(22 * H - 60_000), lastTransitionTime: ago(22 * H - 60_000), reason: 'BackoffLimitExceeded', message: 'Job has reached the specified backoff limit' },
    ],
  })
  const modLine = "/usr/local/bin/python3: Error while finding module specification for 'portal_front.apps.seedtest_api.jobs.detect_inactivity' (ModuleNotFoundError: No module named 'portal_front')"
  for (const [i, sfx] of ['b4n8w', 'h2c6z'].entries()) {
    const p = pod(modJob, sfx, 22 * H - i * 20_000, 'Failed', { 'detect-inactivity': term(1, 'Error', 22 * H - i * 20_000, 900) })
    logs(p, 'detect-inactivity', [modLine])
  }
  event(modJob, 'Warning', 'BackoffLimitExceeded', 'Job has reached the specified backoff limit', 'job-controller', ago(22 * H - 60_000))

  // Wrong image: the tag does not exist; containerd's NotFound, kubelet ≥ 1.32 wording.
  const image = cj('generate-weekly-report').spec.jobTemplate.spec.template.spec.containers[0].image as string
  const pullJob = job('generate-weekly-report', '29374560', 3 * H, { active: 1, ready: 0, terminating: 0, uncountedTerminatedPods: {} })
  const why = `failed to pull and unpack image "${image}": failed to resolve reference "${image}": ${image}: not found`
  const pullPod = pod(pullJob, 'v5r9d', 3 * H, 'Pending', {
    'generate-weekly-report': { state: { waiting: { reason: 'ImagePullBackOff', message: `Back-off pulling image "${image}": ErrImagePull: rpc error: code = NotFound desc = ${why}` } } },
    'cloud-sql-proxy': running(3 * H),
  })
  event(pullPod, 'Normal', 'Pulling', `Pulling image "${image}"`, 'kubelet', ago(3 * H), 36)
  event(pullPod, 'Warning', 'Failed', `Failed to pull image "${image}": rpc error: code = NotFound desc = ${why}`, 'kubelet', ago(3 * H), 36)
  event(pullPod, 'Warning', 'Failed', 'Error: ErrImagePull', 'kubelet', ago(3 * H), 36)
  event(pullPod, 'Normal', 'BackOff', `Back-off pulling image "${image}"`, 'kubelet', ago(3 * H), 790)
  event(pullPod, 'Warning', 'Failed', 'Error: ImagePullBackOff', 'kubelet', ago(3 * H), 790)

  // The Plumber Deployment runs.
  const dep = s.api.store.get(rt('apps/v1', 'deployments'), ns, 'r-irt-plumber')
  dep.status = { observedGeneration: 1, replicas: 1, updatedReplicas: 1, readyReplicas: 1, availableReplicas: 1, conditions: [{ type: 'Available', status: 'True', reason: 'MinimumReplicasAvailable', message: 'Deployment has minimum availability.' }] }
  s.api.store.update(rt('apps/v1', 'deployments'), dep)

  return [
    { problem: 'duplicate-cronjob', object: 'CronJob/mirt-calibrate', detail: 'calibrate-irt scheduled twice: calibrate-irt-weekly (0 3 * * *) and mirt-calibrate (0 3 * * *)' },
    { problem: 'duplicate-cronjob', object: 'CronJob/aggregate-features-daily-r', detail: 'aggregate-features scheduled twice: aggregate-features-daily (25 2 * * *) and aggregate-features-daily-r (30 2 * * *, suspended)' },
    { problem: 'wrong-module', object: 'CronJob/detect-inactivity', detail: `job ${modJob.metadata.name} failed: ${modLine}` },
    { problem: 'missing-secret', object: 'Secret/r-irt-credentials', detail: 'absent; referenced by mirt-calibrate (optional) and by seedops (key token)' },
    { problem: 'secret-wrong-name', object: 'Secret/seedtest-irt-credentials', detail: 'the IRT token under another name and key (R_IRT_INTERNAL_TOKEN, plus R_IRT_BASE_URL)' },
    { problem: 'wrong-image', object: 'CronJob/generate-weekly-report', detail: `pod ${pullPod.metadata.name}: ImagePullBackOff, ${image} not found` },
    { problem: 'oom-killed', object: 'CronJob/mirt-calibrate', detail: `pod ${oomPod.metadata.name}: mirt-calibrate OOMKilled (exit 137) under a 2Gi limit` },
    { problem: 'sidecar-never-exits', object: 'CronJob/aggregate-features-daily', detail: `pod ${sidePod.metadata.name}: aggregate-features-daily exited 0, cloud-sql-proxy still running` },
    { problem: 'networkpolicy-port-mismatch', object: 'NetworkPolicy/allow-seedtest-api-to-r-irt-plumber', detail: 'allows port 80; the r-irt-plumber pod listens on 8000' },
  ]
}

/** Every object's resourceVersion in the namespace, for "changes nothing" assertions. */
export function namespaceVersions(s: Standin, ns: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [av, r] of [['v1', 'secrets'], ['v1', 'configmaps'], ['v1', 'services'], ['v1', 'serviceaccounts'], ['apps/v1', 'deployments'], ['batch/v1', 'cronjobs'], ['batch/v1', 'jobs'], ['v1', 'pods'], ['networking.k8s.io/v1', 'networkpolicies']] as const) {
    for (const o of s.api.store.list(rt(av, r), ns)) out[`${r}/${o.metadata.name}`] = o.metadata.resourceVersion
  }
  return out
}

export { JOBS as jobsResource, PODS as podsResource, CRONJOBS as cronjobsResource }
