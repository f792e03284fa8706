import { readFileSync, writeFileSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { findResource, startStandin, type Script, type Standin } from '../support/kube-standin/index.js'
import { runCli } from '../support/cli.js'
import { kubeEnv } from '../kube/helpers.js'
import { executeDoctor, type DoctorOptions } from '../../src/lib/doctor/command.js'
import { renderReport, listChecks } from '../../src/lib/doctor/run.js'
import { finished, manifestsFor, newNamespace, runJob, secretLeaks, seedAll, seedSecrets, SECRET_VALUES, waitingReason } from './helpers.js'
import type { CheckFinding } from '../../src/lib/doctor/types.js'

/**
 * `seedops doctor` against the Kubernetes stand-in: one namespace per scenario, broken the way
 * the predecessor broke (duplicate CronJobs, images not found or not authorised, OOMKilled,
 * sidecars that never exit, missing secrets), and the specific finding and fix asserted.
 */
let s: Standin
const SCRIPTS: Record<string, Script> = {}
const CRONJOBS = () => findResource('batch', 'v1', 'cronjobs')!
const SECRETS = () => findResource('', 'v1', 'secrets')!

/** Findings as `doctor --json` prints them. */
type Finding = CheckFinding

async function doctor(args: string[], env: Record<string, string> = {}) {
  const r = await runCli(['doctor', ...args], { env: { ...kubeEnv(s), ...env } })
  return r
}

/** The library behind the command, in-process (a spawned CLI costs seconds on a loaded machine). */
async function doctorJson(ns: string, opts: Partial<DoctorOptions> & { kubeconfig?: string } = {}, env: Record<string, string> = {}) {
  const { kubeconfig = s.kubeconfig, ...rest } = opts
  const logs: string[] = []
  const report = await executeDoctor({ kube: { kubeconfig, namespace: ns, requestTimeout: '10s' }, only: ['cluster'], ...rest }, { logger: { info: (m) => logs.push(m), warn: (m) => logs.push(m), debug() {}, progress() {} }, interactive: false, confirm: async () => false }, { ...env })
  const text = JSON.stringify(report) + renderReport(report) + logs.join('\n')
  expect(secretLeaks(text)).toEqual([])
  return { report, findings: report.checks.filter((c) => c.status !== 'skip') as Finding[], logs, code: report.summary.fail > 0 ? 1 : 0 }
}

const CLUSTER_IDS = ['cluster.reachable', 'cronjobs.present', 'cronjobs.spec', 'cronjobs.fired', 'config.refs', 'deployments.irt', 'pods.image-pull', 'pods.stuck', 'pods.oomkilled', 'jobs.no-pods', 'jobs.module-path', 'jobs.sidecar', 'jobs.failed']
const of = (fs: Finding[], check: string) => fs.filter((f) => f.id === check)

beforeAll(async () => {
  s = await startStandin()
  s.controller.script = (job) => SCRIPTS[`${job.metadata.namespace}/${job.metadata.ownerReferences?.[0]?.name}`] ?? { outcome: { kind: 'succeed' }, logs: ['done'], startDelayMs: 10, lineDelayMs: 5 }
})
afterAll(() => s?.stop())

describe('seedops doctor (cluster)', { timeout: 120_000 }, () => {
  test('a healthy namespace: every cluster check ok, exit 0, secret values nowhere', async () => {
    const ns = newNamespace(s, 'healthy')
    seedAll(s, manifestsFor(ns))
    seedSecrets(s, ns)
    await runJob(s, ns, 'aggregate-features', finished('Complete'))
    const { findings, report } = await doctorJson(ns)
    expect(findings.map((f) => f.status)).toEqual(findings.map(() => 'ok'))
    expect(findings.map((f) => f.id)).toEqual(CLUSTER_IDS)
    expect(of(findings, 'cronjobs.present')[0].message).toContain('5 CronJobs present, one per stage')
    expect(report.summary).toMatchObject({ fail: 0, warn: 0, ok: 13 })
    expect(of(findings, 'deployments.irt')[0].message).toBe('Deployment seedops-irt: 1/1 ready, no restarts, secrets present, ports reachable')

    const human = await doctor(['-n', ns, '--only', 'cluster'])
    expect(human.code).toBe(0)
    const lines = human.stdout.trim().split('\n')
    expect(lines.at(-1)).toBe('No issues found: 13 checks ok.')
    expect(lines[0]).toMatch(/^ok\s+cluster\.reachable\s+https:\/\/127\.0\.0\.1:\d+ \(context standin\) answers; namespace healthy exists$/)
    expect(secretLeaks(human.stdout + human.stderr)).toEqual([])
  })

  test('a broken namespace: duplicate, wrong image, image not found vs unauthorized with candidates, OOMKilled, stuck sidecar, failed job, missing secret and key', async () => {
    const ns = newNamespace(s, 'broken')
    const objs = manifestsFor(ns)
    const cj = (name: string) => objs.find((o) => o.kind === 'CronJob' && o.metadata.name === name)!
    const pod = (name: string) => cj(name).spec.jobTemplate.spec.template.spec
    // The predecessor's second CronJob for compute-kpis, same command under another name.
    const dup = structuredClone(cj('compute-kpis'))
    dup.metadata.name = 'kpi-daily-legacy'
    delete dup.metadata.labels!['seedops.io/stage']
    dup.spec.schedule = '30 2 * * *'
    // Someone pinned a tag that was never pushed.
    pod('aggregate-features').containers[0].image = 'ghcr.io/seedtest/seedops:0.0.9-typo'
    // A proxy as a plain second container: the job never completes.
    pod('detect-inactivity').containers.push({ name: 'cloud-sql-proxy', image: 'gcr.io/cloud-sql-connectors/cloud-sql-proxy:2.14.1' })
    seedAll(s, [...objs, dup])
    seedSecrets(s, ns, { omit: ['r-irt-credentials'], omitKeys: { 'seedtest-db-credentials': ['DATABASE_URL'] } })
    s.seed({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'seedtest-db-credentials', namespace: 'broken-unused' }, data: {} })

    SCRIPTS[`${ns}/aggregate-features`] = { outcome: { kind: 'image-pull', reason: 'not-found' }, startDelayMs: 10 }
    SCRIPTS[`${ns}/generate-report`] = { outcome: { kind: 'image-pull', reason: 'unauthorized' }, startDelayMs: 10 }
    SCRIPTS[`${ns}/calibrate-irt`] = { outcome: { kind: 'oom' }, logs: ['calibrating 2PL on 1,204,331 responses'], startDelayMs: 10 }
    SCRIPTS[`${ns}/detect-inactivity`] = { outcome: { kind: 'sidecar-never-exits' }, logs: ['detect-inactivity: 12 users inactive'], startDelayMs: 10 }
    SCRIPTS[`${ns}/compute-kpis`] = { outcome: { kind: 'fail', exitCode: 3 }, logs: ['compute-kpis: as of 2026-11-21', 'reading attempts', 'Error (DB_UNREACHABLE): cannot reach the database'], startDelayMs: 10, lineDelayMs: 5 }
    await Promise.all([
      runJob(s, ns, 'aggregate-features', waitingReason('ImagePullBackOff')),
      runJob(s, ns, 'generate-report', waitingReason('ImagePullBackOff')),
      runJob(s, ns, 'calibrate-irt', finished('Failed')),
      runJob(s, ns, 'detect-inactivity', (_j, ps) => ps.some((p) => p.status.containerStatuses.some((c: any) => c.name === 'seedops' && c.state.terminated))),
      runJob(s, ns, 'compute-kpis', finished('Failed')),
    ])

    const { findings, code } = await doctorJson(ns)
    expect(code).toBe(1)
    // Failures first, then warnings, then ok (skipped last).
    const rank = { fail: 0, warn: 1, ok: 2, skip: 3 }
    expect(findings.map((f) => rank[f.status])).toEqual([...findings.map((f) => rank[f.status])].sort())

    const dupF = of(findings, 'cronjobs.present')
    expect(dupF).toHaveLength(1)
    expect(dupF[0]).toMatchObject({ status: 'fail', subject: 'kpi-daily-legacy', fix: [`kubectl -n ${ns} delete cronjob kpi-daily-legacy`], safeFix: { kind: 'delete-cronjob', name: 'kpi-daily-legacy', duplicateOf: 'compute-kpis' } })
    expect(dupF[0].message).toBe('stage compute-kpis is scheduled twice: CronJob kpi-daily-legacy (30 2 * * *) duplicates compute-kpis (10 2 * * *), same command')

    const spec = of(findings, 'cronjobs.spec')
    expect(spec).toHaveLength(1)
    expect(spec[0].message).toBe('CronJob aggregate-features runs image ghcr.io/seedtest/seedops:0.0.9-typo, expected ghcr.io/seedtest/seedops:0.1.0 (the image seedops deploy put there)')
    expect(spec[0].fix![0]).toBe(`kubectl -n ${ns} set image cronjob/aggregate-features seedops=ghcr.io/seedtest/seedops:0.1.0`)

    const pulls = of(findings, 'pods.image-pull')
    expect(pulls).toHaveLength(2)
    const notFound = pulls.find((f) => f.message.includes('cronjob aggregate-features'))!
    expect(notFound.message).toMatch(/^pod aggregate-features-manual-\w+-\w+ \(cronjob aggregate-features\) cannot pull ghcr\.io\/seedtest\/seedops:0\.0\.9-typo: the image does not exist \(not found\) \[ImagePullBackOff\]$/)
    expect(notFound.fix![0]).toBe(`kubectl -n ${ns} set image cronjob/aggregate-features seedops=ghcr.io/seedtest/seedops:0.1.0`)
    // The images that did run here, as candidates (the failing one is not among them).
    expect(notFound.details).toContain(`images running in ${ns}: gcr.io/cloud-sql-connectors/cloud-sql-proxy:2.14.1, ghcr.io/seedtest/seedops:0.1.0`)
    expect(notFound.details!.join('\n')).toMatch(/kubelet: Failed to pull image "ghcr\.io\/seedtest\/seedops:0\.0\.9-typo": .*not found/)
    // "pull access denied, repository does not exist or may require authorization": either, so both fixes.
    const unauth = pulls.find((f) => f.message.includes('cronjob generate-report'))!
    expect(unauth.message).toContain('cannot pull ghcr.io/seedtest/seedops:0.1.0-report: not found or unauthorized: ghcr.io says the same for a repository that does not exist and one that needs credentials')
    expect(unauth.fix![0]).toBe(`if the image name is wrong: kubectl -n ${ns} set image cronjob/generate-report seedops=ghcr.io/seedtest/seedops:0.1.0`)
    expect(unauth.fix![1]).toBe(`if the repository is private: kubectl -n ${ns} create secret docker-registry regcred --docker-server=ghcr.io --docker-username=<user> --docker-password=<token>`)
    expect(unauth.fix![2]).toBe(`  and: kubectl -n ${ns} patch serviceaccount seedops-runner -p '{"imagePullSecrets":[{"name":"regcred"}]}'`)
    expect(unauth.safeFix).toBeUndefined()

    const oom = of(findings, 'pods.oomkilled')
    expect(oom).toHaveLength(1)
    expect(oom[0].message).toBe('container seedops of cronjob calibrate-irt was OOMKilled (exit 137); memory limit 2Gi, suggest 4Gi')
    expect(oom[0].fix![0]).toBe(`kubectl -n ${ns} patch cronjob calibrate-irt --type=json -p '[{"op":"replace","path":"/spec/jobTemplate/spec/template/spec/containers/0/resources/limits/memory","value":"4Gi"}]'`)

    const side = of(findings, 'jobs.sidecar')
    expect(side).toHaveLength(1)
    expect(side[0].message).toMatch(/^job detect-inactivity-manual-\w+ \(cronjob detect-inactivity\) never completes: seedops exited 0 but cloud-sql-proxy is still running \(sidecar image gcr\.io\/cloud-sql-connectors\/cloud-sql-proxy:2\.14\.1\)$/)
    expect(side[0].fix![0]).toContain('initContainers with restartPolicy: Always')
    expect(side[0].fix![1]).toMatch(new RegExp(`^then delete the stuck job: kubectl -n ${ns} delete job detect-inactivity-manual-\\w+$`))

    const failed = of(findings, 'jobs.failed')
    const kpi = failed.find((f) => f.message.includes('cronjob compute-kpis'))!
    expect(kpi.message).toMatch(/^job compute-kpis-manual-\w+ \(cronjob compute-kpis\) failed \(BackoffLimitExceeded\): seedops exited 3$/)
    expect(kpi.details).toEqual(['| compute-kpis: as of 2026-11-21', '| reading attempts', '| Error (DB_UNREACHABLE): cannot reach the database'])
    expect(kpi.fix).toEqual([expect.stringMatching(new RegExp(`^seedops jobs logs compute-kpis-manual-\\w+ -n ${ns}$`)), `after fixing the cause: seedops jobs trigger compute-kpis -n ${ns} --wait`])
    const irtJob = failed.find((f) => f.message.includes('cronjob calibrate-irt'))!
    expect(irtJob.message).toContain('seedops was OOMKilled')
    expect(irtJob.details).toEqual(['| calibrating 2PL on 1,204,331 responses'])

    const refs = of(findings, 'config.refs')
    const db = refs.find((f) => f.subject === 'seedtest-db-credentials')!
    expect(db).toMatchObject({ status: 'fail', message: 'secret seedtest-db-credentials lacks key DATABASE_URL; read by aggregate-features, compute-kpis, calibrate-irt, generate-report, detect-inactivity' })
    expect(db.fix![0]).toBe(`seedops secrets ensure --only db --update -n ${ns}   # with DATABASE_URL set`)
    const irt = refs.find((f) => f.subject === 'r-irt-credentials')!
    expect(irt).toMatchObject({ status: 'warn', fix: [`seedops secrets ensure --only irt -n ${ns}`], safeFix: { kind: 'ensure-secret', only: 'irt' } })
    expect(irt.message).toMatch(/^secret r-irt-credentials is missing; read by calibrate-irt \(optional\)/)

    // The IRT Deployment needs the token secret: a failure, not a warning as for the optional CronJob reference.
    expect(of(findings, 'deployments.irt').map((f) => `${f.status}: ${f.message}`)).toEqual([
      'fail: Deployment seedops-irt reads key DATABASE_URL of secret seedtest-db-credentials, which lacks it',
      'fail: Deployment seedops-irt reads secret r-irt-credentials, which is missing: its pods cannot start',
    ])

    // The CLI: --json document with status 1; the human form: failures first, a fix under each, the summary last.
    const json = await doctor(['-n', ns, '--only', 'cluster', '--json'])
    expect(json.code).toBe(1)
    expect(secretLeaks(json.stdout + json.stderr)).toEqual([])
    const doc = JSON.parse(json.stdout)
    expect(doc.status).toBe(1)
    expect(doc.result.checks.filter((f: Finding) => f.status !== 'skip').map((f: Finding) => `${f.id}:${f.status}:${f.subject}`)).toEqual(findings.map((f) => `${f.id}:${f.status}:${f.subject}`))
    const human = await doctor(['-n', ns, '--only', 'cluster'])
    expect(human.code).toBe(1)
    const lines = human.stdout.trim().split('\n')
    expect(lines[0]).toMatch(/^FAIL\s+cronjobs\.present\s+stage compute-kpis is scheduled twice/)
    expect(lines[1]).toMatch(/^\s+fix: kubectl -n broken delete cronjob kpi-daily-legacy$/)
    expect(lines.at(-1)).toMatch(/^Found issues in 8 checks: \d+ failures, 1 warning, 5 ok\.$/)
    expect(secretLeaks(human.stdout + human.stderr)).toEqual([])
  })

  test('--fix --yes deletes the duplicate, resets the image and creates the missing secrets; a second run is clean', async () => {
    const ns = newNamespace(s, 'fixme')
    const objs = manifestsFor(ns)
    const dup = structuredClone(objs.find((o) => o.metadata.name === 'aggregate-features')!)
    dup.metadata.name = 'aggregate-features-v2'
    const cj = objs.find((o) => o.metadata.name === 'compute-kpis')!
    cj.spec.jobTemplate.spec.template.spec.containers[0].image = 'ghcr.io/seedtest/seedops:latest'
    seedAll(s, [...objs, dup])
    seedSecrets(s, ns, { omit: ['seedtest-db-credentials', 'r-irt-credentials'] })
    const env = { DATABASE_URL: SECRET_VALUES.DATABASE_URL, R_IRT_INTERNAL_TOKEN: SECRET_VALUES.token }

    const before = await doctorJson(ns)
    expect(before.code).toBe(1)
    expect(before.findings.filter((f) => f.status !== 'ok').map((f) => `${f.id} ${f.subject}`).sort()).toEqual([
      'config.refs r-irt-credentials',
      'config.refs seedtest-db-credentials',
      'cronjobs.present aggregate-features-v2',
      'cronjobs.spec compute-kpis',
      // The IRT Deployment reads both missing secrets too.
      'deployments.irt seedops-irt',
      'deployments.irt seedops-irt',
    ])

    const fixed = await doctor(['-n', ns, '--only', 'cluster', '--fix', '--yes'], env)
    expect(secretLeaks(fixed.stdout + fixed.stderr)).toEqual([])
    expect(fixed.stderr).toContain('fixed: CronJob aggregate-features-v2 deleted (duplicate of aggregate-features)')
    expect(fixed.stderr).toContain('fixed: CronJob compute-kpis: seedops image set to ghcr.io/seedtest/seedops:0.1.0')
    expect(fixed.stderr).toContain('fixed: Secret seedtest-db-credentials: created (keys DATABASE_URL)')
    expect(fixed.stderr).toContain('fixed: Secret r-irt-credentials: created (keys token)')
    expect(fixed.code).toBe(0)
    expect(fixed.stdout.trim().split('\n').at(-1)).toBe('No issues found: 13 checks ok.')

    expect(s.api.store.get(CRONJOBS(), ns, 'aggregate-features-v2')).toBeUndefined()
    expect(s.api.store.get(CRONJOBS(), ns, 'compute-kpis').spec.jobTemplate.spec.template.spec.containers[0].image).toBe('ghcr.io/seedtest/seedops:0.1.0')
    expect(Buffer.from(s.api.store.get(SECRETS(), ns, 'seedtest-db-credentials').data.DATABASE_URL, 'base64').toString()).toBe(SECRET_VALUES.DATABASE_URL)

    const again = await doctorJson(ns)
    expect(again.code).toBe(0)
    expect(again.report.summary).toMatchObject({ fail: 0, warn: 0 })
  })

  test('--fix without a terminal and without --yes refuses (exit 2, names --yes) and changes nothing', async () => {
    const ns = newNamespace(s, 'notty')
    const objs = manifestsFor(ns)
    const dup = structuredClone(objs.find((o) => o.metadata.name === 'detect-inactivity')!)
    dup.metadata.name = 'inactivity-old'
    seedAll(s, [...objs, dup])
    seedSecrets(s, ns)
    const writesBefore = s.api.requests.filter((x) => x.method !== 'GET').length
    const r = await doctor(['-n', ns, '--fix'])
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('Error (USAGE): --fix changes the cluster and asks first, but there is no terminal to ask on')
    expect(r.stderr).toContain('Re-run with --fix --yes')
    expect(s.api.requests.filter((x) => x.method !== 'GET').length).toBe(writesBefore)
    expect(s.api.store.get(CRONJOBS(), ns, 'inactivity-old')).toBeDefined()
  })

  test('--list-checks, --only with an unknown id, a missing namespace, an unreachable cluster', async () => {
    expect(listChecks().map((c) => c.id)).toEqual([...CLUSTER_IDS, 'db.reachable', 'db.schema', 'db.freshness', 'storage.s3', 'irt.health'])
    await expect(doctorJson('x', { only: ['pods.imagepull'] })).rejects.toMatchObject({ code: 'USAGE', message: '--only: unknown check pods.imagepull' })

    const gone = await doctorJson('no-such-ns', { only: ['cluster.reachable,cronjobs.present'] })
    expect(gone.code).toBe(1)
    expect(gone.findings[0]).toMatchObject({ id: 'cluster.reachable', status: 'fail', message: expect.stringContaining('namespace no-such-ns does not exist') })
    expect(gone.report.checks.filter((c) => c.status === 'skip').map((c) => ({ check: c.id, reason: c.message }))).toEqual([{ check: 'cronjobs.present', reason: 'cluster.reachable failed' }])

    // A kubeconfig pointing at a port nobody listens on.
    const dead = s.kubeconfigFor('admin-token', 'dead')
    writeFileSync(dead, readFileSync(dead, 'utf8').replace(/server: https:\/\/127\.0\.0\.1:\d+/, 'server: https://127.0.0.1:1'))
    const down = await doctorJson('healthy', { kubeconfig: dead, only: ['cluster'] })
    expect(down.findings[0]).toMatchObject({ id: 'cluster.reachable', status: 'fail', message: 'cannot reach the cluster at https://127.0.0.1:1 (ECONNREFUSED) (KUBE_UNREACHABLE)' })
    expect(down.findings[0].fix![0]).toContain('kubectl config current-context')
    expect(down.report.checks.filter((x) => x.status === 'skip').map((x) => x.id)).toEqual(CLUSTER_IDS.slice(1))
  })
})
