import { CronExpressionParser } from 'cron-parser'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { loadManifests } from '../../src/lib/kube/manifests.js'
import { findResource, startStandin, type Standin } from '../support/kube-standin/index.js'
import { runCli } from '../support/cli.js'
import { clientsFor } from '../kube/helpers.js'
import { namespaceVersions, PREDECESSOR_SECRET_VALUES, seedPredecessorNamespace, type Planted } from '../support/predecessor-namespace.js'
import type { CheckFinding } from '../../src/lib/doctor/types.js'

/**
 * Issue 8, end to end on the stand-in, through the CLI as a user runs it and as the identities
 * k8s/ grants (the operator ServiceAccount, never admin): doctor names every planted problem of
 * the predecessor's namespace with its cause and fix → adopt (plan) → adopt --yes → doctor no
 * longer fails on any of them → each stage runs (jobs trigger --wait) → adopt --rollback gives the
 * legacy CronJobs back their schedules and suspension exactly.
 */
const NS = 'seedtest'
const IMAGE = 'registry.example/seedops:1.4.0'
const STAGES = ['aggregate-features', 'compute-kpis', 'calibrate-irt', 'generate-report', 'detect-inactivity']
const LEGACY = ['aggregate-features-daily', 'aggregate-features-daily-r', 'calibrate-irt-weekly', 'compute-daily-kpis', 'detect-inactivity', 'fit-bayesian-growth', 'generate-weekly-report', 'mirt-calibrate']
const CRONJOBS = () => findResource('batch', 'v1', 'cronjobs')!

/** Findings as `doctor --json` prints them. */
type F = CheckFinding
interface Report {
  checks: F[]
  summary: { fail: number; warn: number; failedChecks: string[]; warnedChecks: string[] }
}

let s: Standin
let planted: Planted[]

beforeAll(async () => {
  s = await startStandin()
  s.controller.script = (job) => ({ outcome: { kind: 'succeed' }, logs: [`${job.metadata.name}: done`], startDelayMs: 20, lineDelayMs: 5 })
  planted = seedPredecessorNamespace(s, NS)
  // What an admin applies once: seedops' ServiceAccounts, Roles and RoleBindings (k8s/base/rbac-*.yaml).
  for (const o of loadManifests({ namespace: NS }).filter((x) => ['ServiceAccount', 'Role', 'RoleBinding'].includes(x.kind))) s.seed(o)
  s.api.addToken('operator-token', `system:serviceaccount:${NS}:seedops-operator`)
  s.api.addToken('doctor-token', `system:serviceaccount:${NS}:seedops-doctor`)
})
afterAll(() => s?.stop())

const as = (token: 'operator-token' | 'doctor-token') => ({ KUBECONFIG: s.kubeconfigFor(token, token), SEEDOPS_KUBE_POLL_MS: '100' })
const cli = (args: string[], who: 'operator-token' | 'doctor-token' = 'operator-token') => runCli([...args, '-n', NS], { env: as(who) })
/** doctor's cluster checks (this namespace has no database or object store to look at), human and --json. */
async function doctor(who: 'operator-token' | 'doctor-token' = 'operator-token') {
  const [json, human] = await Promise.all([cli(['doctor', '--only', 'cluster', '--json'], who), cli(['doctor', '--only', 'cluster'], who)])
  expect(json.stderr).not.toContain('Error')
  expect(leaks(json.stdout + human.stdout + human.stderr)).toEqual([])
  return { code: json.code, report: JSON.parse(json.stdout).result as Report, text: human.stdout, humanCode: human.code }
}
function leaks(text: string): string[] {
  const values = Object.values(PREDECESSOR_SECRET_VALUES)
  return [...values, ...values.map((v) => Buffer.from(v).toString('base64'))].filter((v) => text.includes(v))
}
/** The line doctor prints for a finding, and its first fix line, as they appear in the human report. */
function printed(text: string, f: F): string {
  const lines = text.split('\n')
  const i = lines.findIndex((l) => l.includes(f.message) && l.includes(f.id))
  expect(i, `doctor's text has no line for ${f.id}: ${f.message}`).toBeGreaterThanOrEqual(0)
  const fixLine = lines.slice(i + 1).find((l) => /^\s+fix: /.test(l))
  return `${lines[i].replace(/\s+/g, ' ')}\n    ${fixLine?.trim() ?? '(no fix line)'}`
}
const legacySchedules = () => Object.fromEntries(LEGACY.map((n) => [n, (({ schedule, suspend, timeZone }) => ({ schedule, suspend, timeZone }))(s.api.store.get(CRONJOBS(), NS, n).spec)]))
const podOf = (p: Planted) => /pod (\S+):/.exec(p.detail)![1]

/** Per planted problem: the finding that must name it (check, status, subject), its cause and its fix. */
function expectation(p: Planted): { check: string; status: 'fail' | 'warn'; subject: string; message: RegExp; fix: RegExp } {
  switch (`${p.problem} ${p.object}`) {
    case 'duplicate-cronjob CronJob/mirt-calibrate':
      return { check: 'cronjobs.present', status: 'fail', subject: 'calibrate-irt-weekly,mirt-calibrate', message: /^stage calibrate-irt is scheduled 2 times by legacy CronJobs: calibrate-irt-weekly \("0 3 \* \* \*"\) and mirt-calibrate \("0 3 \* \* \*"\)$/, fix: /^seedops adopt -n seedtest {3}# shows the plan$/ }
    case 'duplicate-cronjob CronJob/aggregate-features-daily-r':
      return { check: 'cronjobs.present', status: 'warn', subject: 'aggregate-features-daily,aggregate-features-daily-r', message: /^stage aggregate-features is scheduled 2 times by legacy CronJobs: aggregate-features-daily \("25 2 \* \* \*"\) and aggregate-features-daily-r \("30 2 \* \* \*", suspended\); only one is active, the other would run it twice if resumed$/, fix: /^seedops adopt -n seedtest/ }
    case 'wrong-module CronJob/detect-inactivity':
      return { check: 'jobs.module-path', status: 'fail', subject: 'detect-inactivity', message: /^CronJob detect-inactivity: module path mismatch: portal_front\.apps\.seedtest_api\.jobs\.detect_inactivity is not in image \S+seedtest-api:f830ff9c2-with-env \(No module named 'portal_front', exit 1\)$/, fix: /^seedops adopt -n seedtest/ }
    case 'missing-secret Secret/r-irt-credentials':
      return { check: 'config.refs', status: 'warn', subject: 'r-irt-credentials', message: /^secret r-irt-credentials is missing; read by calibrate-irt \(optional\).*; the predecessor keeps it as secret seedtest-irt-credentials and secret calibrate-irt-credentials$/, fix: /^seedops adopt -n seedtest --yes {3}# copies into r-irt-credentials\[token\] from seedtest-irt-credentials\[R_IRT_INTERNAL_TOKEN\] or calibrate-irt-credentials\[R_IRT_INTERNAL_TOKEN\] \(values not shown\)$/ }
    case 'secret-wrong-name Secret/seedtest-irt-credentials':
      return { check: 'config.refs', status: 'warn', subject: 'seedtest-irt-credentials', message: /^secret seedtest-irt-credentials holds what seedops reads from r-irt-credentials under another name and key \(R_IRT_INTERNAL_TOKEN for token\)/, fix: /^seedops adopt -n seedtest {3}# shows the copy into r-irt-credentials$/ }
    case 'wrong-image CronJob/generate-weekly-report':
      return { check: 'pods.image-pull', status: 'fail', subject: podOf(p), message: /\(cronjob generate-weekly-report\) cannot pull \S+\/seedtest-report-runner:latest: the image does not exist \(not found\) \[ImagePullBackOff\]$/, fix: /^kubectl -n seedtest set image cronjob\/generate-weekly-report generate-weekly-report=\S+seedtest-api:f830ff9c2-with-env$/ }
    case 'oom-killed CronJob/mirt-calibrate':
      return { check: 'pods.oomkilled', status: 'fail', subject: 'mirt-calibrate', message: /^container mirt-calibrate of cronjob mirt-calibrate was OOMKilled \(exit 137\); memory limit 2Gi, suggest 4Gi$/, fix: /patch cronjob mirt-calibrate .*"value":"4Gi"/ }
    case 'sidecar-never-exits CronJob/aggregate-features-daily':
      return { check: 'jobs.sidecar', status: 'fail', subject: podOf(p).replace(/-[a-z0-9]{5}$/, ''), message: /\(cronjob aggregate-features-daily\) never completes: aggregate-features-daily exited 0 but cloud-sql-proxy is still running/, fix: /^make cloud-sql-proxy a native sidecar/ }
    case 'networkpolicy-port-mismatch NetworkPolicy/allow-seedtest-api-to-r-irt-plumber':
      return { check: 'deployments.irt', status: 'fail', subject: 'r-irt-plumber', message: /^NetworkPolicy allow-seedtest-api-to-r-irt-plumber allows ingress to r-irt-plumber on port 80 only, but the pod listens on 8000/, fix: /patch networkpolicy allow-seedtest-api-to-r-irt-plumber .*"value":8000/ }
  }
  throw new Error(`no expectation for planted ${p.problem} ${p.object}: add one`)
}

describe('adopting the predecessor namespace end to end (operator identity)', { timeout: 300_000 }, () => {
  let before: ReturnType<typeof legacySchedules>

  test('1. doctor names every planted problem with its cause and fix', async () => {
    expect(planted).toHaveLength(9)
    const { code, report, text } = await doctor()
    expect(code).toBe(1)
    const quoted: string[] = []
    for (const p of planted) {
      const want = expectation(p)
      const f = report.checks.find((x) => x.id === want.check && x.subject === want.subject && want.message.test(x.message))
      expect(f, `${p.problem} ${p.object}: no ${want.check} finding for ${want.subject} matching ${want.message}; got ${JSON.stringify(report.checks.filter((x) => x.id === want.check).map((x) => [x.status, x.subject, x.message]))}`).toBeDefined()
      expect(f!.status).toBe(want.status)
      expect(f!.fix?.[0]).toMatch(want.fix)
      quoted.push(`[${p.problem}] ${p.object}\n  ${printed(text, f!)}`)
    }
    // Not deployed: one finding naming what the predecessor runs, not five "is missing".
    const present = report.checks.filter((f) => f.id === 'cronjobs.present')
    expect(present.filter((f) => / is missing/.test(f.message))).toEqual([])
    expect(present.find((f) => f.subject === NS)?.message).toBe(
      "seedops is not deployed in seedtest; the predecessor's CronJobs run aggregate-features (aggregate-features-daily, aggregate-features-daily-r), compute-kpis (compute-daily-kpis), calibrate-irt (calibrate-irt-weekly, mirt-calibrate), generate-report (generate-weekly-report), detect-inactivity (detect-inactivity): seedops adopt -n seedtest shows the plan",
    )
    // The missing module is reported once, by jobs.module-path; jobs.failed does not repeat it.
    expect(report.checks.filter((f) => f.id === 'jobs.failed' && f.status !== 'ok')).toEqual([])
    expect(report.checks.find((f) => f.id === 'jobs.failed')!.message).toContain('detect-inactivity-29374800 (module path mismatch, see jobs.module-path)')
    console.log(`doctor before adopt, one line per planted problem:\n${quoted.join('\n')}`)
  })

  test('2. adopt: the plan changes nothing; --yes applies it', async () => {
    before = legacySchedules()
    const versions = namespaceVersions(s, NS)
    const plan = await cli(['adopt'])
    expect(plan.stderr).not.toContain('Error')
    expect(plan.code).toBe(0)
    expect(namespaceVersions(s, NS)).toEqual(versions)
    const yes = await cli(['adopt', '--yes', '--image', IMAGE])
    expect(yes.stderr).not.toContain('Error')
    expect(yes.code).toBe(0)
    expect(leaks(plan.stdout + plan.stderr + yes.stdout + yes.stderr)).toEqual([])
    for (const n of ['aggregate-features-daily', 'calibrate-irt-weekly', 'compute-daily-kpis', 'generate-weekly-report', 'mirt-calibrate']) expect(s.api.store.get(CRONJOBS(), NS, n).spec.suspend).toBe(true)
  })

  test('3. doctor after adopt: none of the planted problems fails; what remains is named and explained', async () => {
    const k = clientsFor(s, NS)
    // The stand-in runs no Deployment controller: write the status it would once seedops-irt's pod is ready (status subresource).
    const dep = await k.apps.readNamespacedDeployment({ name: 'seedops-irt', namespace: NS })
    dep.status = { observedGeneration: 1, replicas: 1, updatedReplicas: 1, readyReplicas: 1, availableReplicas: 1, conditions: [{ type: 'Available', status: 'True', reason: 'MinimumReplicasAvailable', message: 'Deployment has minimum availability.' }] }
    await k.apps.replaceNamespacedDeploymentStatus({ name: 'seedops-irt', namespace: NS, body: dep })
    // Nor a CronJob controller: fit-bayesian-growth (not a seedops stage, left alone) fired when its schedule said, as the controller records it.
    const fit = await k.batch.readNamespacedCronJob({ name: 'fit-bayesian-growth', namespace: NS })
    const lastDue = CronExpressionParser.parse(fit.spec!.schedule, { currentDate: new Date(), tz: 'UTC' }).prev().toDate()
    fit.status = { ...fit.status, lastScheduleTime: lastDue, lastSuccessfulTime: new Date(lastDue.getTime() + 60_000) }
    await k.batch.replaceNamespacedCronJobStatus({ name: 'fit-bayesian-growth', namespace: NS, body: fit })

    const { code, report, text } = await doctor()
    const record = JSON.parse(s.api.store.get(findResource('', 'v1', 'configmaps')!, NS, 'seedops-adoption').data['record.json'])
    const on = String(record.adoptedAt).slice(0, 10)
    console.log(`doctor after adopt:\n${text}`)
    expect(report.summary.failedChecks).toEqual([])
    expect(code).toBe(0)
    for (const p of planted) {
      const name = p.object.split('/')[1]
      const podOrJob = /pod (\S+):/.exec(p.detail)?.[1]
      expect(report.checks.filter((f) => f.status === 'fail' && [name, podOrJob].some((n) => n && (f.subject?.includes(n) || f.message.includes(n)))), `${p.problem} ${p.object} still fails`).toEqual([])
    }
    const present = (n: string) => report.checks.find((f) => f.id === 'cronjobs.present' && f.subject === n)
    for (const [n, stage, sched] of [['aggregate-features-daily', 'aggregate-features', '25 2 * * *'], ['calibrate-irt-weekly', 'calibrate-irt', '0 3 * * *'], ['mirt-calibrate', 'calibrate-irt', '0 3 * * *'], ['compute-daily-kpis', 'compute-kpis', '10 2 * * *'], ['generate-weekly-report', 'generate-report', '0 4 * * 1']]) {
      expect(present(n)).toMatchObject({ status: 'ok', message: `legacy CronJob ${n} (stage ${stage}, "${sched}", suspended) is suspended by seedops adopt on ${on}; delete it with seedops adopt --prune-legacy -n seedtest once each stage has run` })
    }
    expect(present('aggregate-features-daily-r')).toMatchObject({ status: 'ok', message: `legacy CronJob aggregate-features-daily-r (stage aggregate-features, "30 2 * * *", suspended) is suspended before seedops adopt on ${on}, which recorded it; delete it with seedops adopt --prune-legacy -n seedtest once each stage has run` })
    // The old failures are history: not counted, and said so.
    expect(report.checks.find((f) => f.id === 'jobs.failed')).toMatchObject({ status: 'ok' })
    expect(report.checks.find((f) => f.id === 'pods.oomkilled')!.message).toMatch(/^no OOMKilled containers in the latest jobs \(not counted: mirt-calibrate-29374740-q9m4t \(legacy CronJob mirt-calibrate, suspended by seedops adopt on \d{4}-\d\d-\d\d\)\)$/)
    expect(report.checks.find((f) => f.id === 'jobs.module-path')).toMatchObject({ status: 'ok', message: 'no job failed for a missing command or module' })
    // What is still true: pods of the suspended CronJobs that still hold a node (adopt never deletes), and the old Plumber's
    // NetworkPolicy, now in front of a Deployment no Service sends to. Warnings, each with its fix.
    const warns = report.checks.filter((f) => f.status === 'warn')
    expect(warns.map((f) => `${f.id} ${f.subject}`).sort()).toEqual([
      'deployments.irt r-irt-plumber',
      'jobs.sidecar aggregate-features-daily-29374705',
      'jobs.sidecar mirt-calibrate-29374740',
      'pods.image-pull generate-weekly-report-29374560-v5r9d',
    ])
    for (const w of warns.filter((f) => f.id !== 'deployments.irt')) {
      expect(w.message).toMatch(/legacy CronJob \S+, suspended by seedops adopt on .*a leftover, nothing will run it again$/)
      expect(w.fix![0]).toMatch(/^kubectl -n seedtest delete job \S+$/)
      expect(w.fix![1]).toContain('seedops adopt --prune-legacy -n seedtest')
    }
    expect(warns.find((f) => f.id === 'deployments.irt')!.message).toContain('no Service sends to r-irt-plumber any more')

    // The doctor identity may not read the adoption record: the suspended CronJobs are then warnings, still no failure.
    const ro = await doctor('doctor-token')
    expect(ro.report.summary.failedChecks).toEqual([])
    expect(ro.report.checks.find((f) => f.id === 'cronjobs.present' && f.subject === 'mirt-calibrate')).toMatchObject({ status: 'warn', message: expect.stringContaining("is suspended; resuming it would run the stage beside seedops' calibrate-irt") })
  })

  test('4. jobs trigger --wait succeeds for each stage, as the operator; doctor still finds no failure', async () => {
    for (const name of STAGES) {
      const t = await cli(['jobs', 'trigger', name, '--wait', '--timeout', '60s'])
      expect(t.stderr).not.toContain('Error')
      expect(t.code).toBe(0)
    }
    // The replaced detect-inactivity's latest job is now seedops' own run: nothing failed, nothing missing.
    const after = await doctor()
    expect(after.report.summary.failedChecks).toEqual([])
    expect(after.report.checks.find((f) => f.id === 'jobs.failed')!.message).toMatch(/^no failed job among the latest \d+$/)
    expect(after.report.checks.find((f) => f.id === 'jobs.module-path')).toMatchObject({ status: 'ok', message: 'no job failed for a missing command or module' })
    // Nothing the operator did was forbidden (doctor's GET of the namespace itself is expected to be: a namespaced Role).
    expect(s.api.requests.filter((r) => r.user === `system:serviceaccount:${NS}:seedops-operator` && r.status === 403 && r.path !== `/api/v1/namespaces/${NS}`)).toEqual([])
  })

  test('5. adopt --rollback restores the legacy schedules and suspension exactly', async () => {
    const r = await cli(['adopt', '--rollback'])
    expect(r.stderr).not.toContain('Error')
    expect(r.code).toBe(0)
    expect(legacySchedules()).toEqual(before)
    expect(before['aggregate-features-daily-r'].suspend).toBe(true)
    expect(Boolean(before['mirt-calibrate'].suspend)).toBe(false)
  })
})
