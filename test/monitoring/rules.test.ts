import { execFile } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { CronExpressionParser } from 'cron-parser'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { parse as parseYaml, stringify } from 'yaml'
import { buildKustomization } from '../../src/lib/kube/manifests.js'
import { ROOT } from '../support/cli.js'
import { findTool } from '../support/prometheus.js'

/**
 * The PrometheusRule of k8s/overlays/monitoring, checked by Debian's promtool: the rules parse,
 * each alert fires on series written to make it fire, and none fires on healthy series.
 */
const promtool = findTool('promtool', 'prometheus')
const RULE_FILE = join(ROOT, 'k8s', 'overlays', 'monitoring', 'prometheusrule.yaml')
const HOUR = 3600
/** Staleness threshold per schedule period: a daily stage may be 2h late, a weekly one a day. */
const THRESHOLD: Record<number, number> = { [24 * HOUR]: 26 * HOUR, [7 * 24 * HOUR]: 8 * 24 * HOUR }

const rule = parseYaml(readFileSync(RULE_FILE, 'utf8'))
type Rule = { alert: string; expr: string; for?: string; labels?: Record<string, string>; annotations?: Record<string, string> }
const rules: Rule[] = rule.spec.groups.flatMap((g: { rules: Rule[] }) => g.rules)
const run = promisify(execFile)

async function promtoolRun(args: string[], cwd: string): Promise<{ code: number; out: string }> {
  try {
    const r = await run(promtool!, args, { cwd })
    return { code: 0, out: r.stdout + r.stderr }
  } catch (e: any) {
    return { code: e.code ?? 1, out: `${e.stdout ?? ''}${e.stderr ?? ''}` }
  }
}

const NS = { namespace: 'seedtest' }
const SVC = { namespace: 'seedtest', service: 'seedops-irt' }
const sel = (name: string, labels: Record<string, string>) => `${name}{${Object.entries(labels).map(([k, v]) => `${k}="${v}"`).join(',')}}`
const STAGES = ['aggregate-features', 'compute-kpis', 'calibrate-irt', 'generate-report', 'detect-inactivity']

/** Request counter, latency histogram and calibrations of a healthy service, per minute. */
function healthyService(minutes: number) {
  const n = minutes + 5
  const bucket = (route: string, le: string, perMin: number) => ({ series: sel('seedops_irt_http_request_duration_seconds_bucket', { ...SVC, method: 'POST', route, status: '200', le }), values: `0+${perMin}x${n}` })
  return [
    { series: sel('up', { ...SVC, job: 'seedops-irt', pod: 'seedops-irt-1', instance: '10.0.0.7:9464', endpoint: 'metrics' }), values: `1x${n}` },
    { series: sel('seedops_irt_http_requests_total', { ...SVC, method: 'POST', route: '/irt/score', status: '200' }), values: `0+1000x${n}` },
    { series: sel('seedops_irt_http_requests_total', { ...SVC, method: 'POST', route: '/irt/score', status: '500' }), values: `0+2x${n}` }, // 0.2 %
    // Scoring answers in 50 ms; calibrations take 10 s, which the p99 alert leaves aside.
    ...['0.05', '1', '2', '5', '+Inf'].map((le) => bucket('/irt/score', le, 1000)),
    ...['0.05', '1', '2', '5'].map((le) => bucket('/irt/calibrate', le, 0)),
    ...['30', '+Inf'].map((le) => bucket('/irt/calibrate', le, 1)),
    { series: sel('seedops_irt_calibrations_total', { ...SVC, outcome: 'converged' }), values: `0+1x${n}` },
    { series: sel('seedops_irt_calibrations_total', { ...SVC, outcome: 'not_converged' }), values: `0x${n}` },
  ]
}

/** Stage metrics as the Pushgateway holds them: every stage succeeds once per period (daily, the report weekly). */
function healthyStages(samples: number, stepSeconds: number) {
  return STAGES.flatMap((job) => {
    const period = (job === 'generate-report' ? 168 : 24) * HOUR
    // Value at sample k: the end of the last run, at the start of each period.
    const values = Array.from({ length: samples + 1 }, (_, k) => Math.floor((k * stepSeconds) / period) * period).join(' ')
    return [
      { series: sel('seedops_stage_last_success_timestamp_seconds', { ...NS, job }), values },
      { series: sel('seedops_stage_last_run_outcome', { ...NS, job, outcome: 'succeeded' }), values: `1x${samples}` },
      { series: sel('seedops_stage_last_run_outcome', { ...NS, job, outcome: 'failed' }), values: `0x${samples}` },
    ]
  })
}

const ALERTS = ['SeedopsStageFailed', 'SeedopsStageStale', 'SeedopsIrtServiceDown', 'SeedopsIrtErrorRate', 'SeedopsIrtLatencyP99', 'SeedopsIrtCalibrationNotConverged']

/**
 * promtool unit tests: one case per alert (it fires, and not before its `for`), healthy cases where
 * none fires. Two files: minutes (evaluated every minute) and days (every hour; evaluating a week
 * minute by minute takes promtool minutes).
 */
function unitTests(): { minutes: object[]; hours: object[] } {
  const all = unitCases()
  return { minutes: all.filter((t) => t.interval === '1m'), hours: all.filter((t) => t.interval === '1h') }
}

function unitCases() {
  const n = 40
  return [
    {
      name: 'stage failed',
      interval: '1m',
      input_series: [
        { series: sel('seedops_stage_last_run_outcome', { ...NS, job: 'compute-kpis', outcome: 'failed' }), values: `1x${n}` },
        { series: sel('seedops_stage_last_run_outcome', { ...NS, job: 'compute-kpis', outcome: 'succeeded' }), values: `0x${n}` },
        { series: sel('seedops_stage_last_run_outcome', { ...NS, job: 'aggregate-features', outcome: 'failed' }), values: `0x${n}` },
        { series: sel('seedops_stage_last_run_outcome', { ...NS, job: 'aggregate-features', outcome: 'succeeded' }), values: `1x${n}` },
        // A failed shard of the report is reported with its shard.
        { series: sel('seedops_stage_last_run_outcome', { ...NS, job: 'generate-report', shard: '1-of-4', outcome: 'failed' }), values: `1x${n}` },
      ],
      alert_rule_test: [{ eval_time: '2m', alertname: 'SeedopsStageFailed', exp_alerts: [{ exp_labels: { ...NS, job: 'compute-kpis', severity: 'critical' } }, { exp_labels: { ...NS, job: 'generate-report', shard: '1-of-4', severity: 'critical' } }] }],
    },
    {
      // Every stage last succeeded at t=0: the daily ones are stale after 26h, the weekly one after 8d.
      name: 'stage stale',
      interval: '1h',
      input_series: STAGES.map((job) => ({ series: sel('seedops_stage_last_success_timestamp_seconds', { ...NS, job }), values: '0x200' })),
      alert_rule_test: [
        { eval_time: '25h', alertname: 'SeedopsStageStale', exp_alerts: [] },
        { eval_time: '27h', alertname: 'SeedopsStageStale', exp_alerts: STAGES.filter((j) => j !== 'generate-report').map((job) => ({ exp_labels: { ...NS, job, stage: job, severity: 'warning', cadence: 'daily' } })) },
        { eval_time: '191h', alertname: 'SeedopsStageStale', exp_alerts: STAGES.filter((j) => j !== 'generate-report').map((job) => ({ exp_labels: { ...NS, job, stage: job, severity: 'warning', cadence: 'daily' } })) },
        { eval_time: '193h', alertname: 'SeedopsStageStale', exp_alerts: STAGES.map((job) => ({ exp_labels: { ...NS, job, stage: job, severity: 'warning', cadence: job === 'generate-report' ? 'weekly' : 'daily' } })) },
      ],
    },
    {
      name: 'irt service down',
      interval: '1m',
      input_series: [{ series: sel('up', { ...SVC, job: 'seedops-irt', pod: 'seedops-irt-1', instance: '10.0.0.7:9464', endpoint: 'metrics' }), values: `0x${n}` }],
      alert_rule_test: [
        { eval_time: '4m', alertname: 'SeedopsIrtServiceDown', exp_alerts: [] },
        { eval_time: '6m', alertname: 'SeedopsIrtServiceDown', exp_alerts: [{ exp_labels: { ...SVC, job: 'seedops-irt', pod: 'seedops-irt-1', instance: '10.0.0.7:9464', endpoint: 'metrics', severity: 'critical' } }] },
      ],
    },
    {
      // 10 % of requests answered 500, from t=0.
      name: 'irt error rate',
      interval: '1m',
      input_series: [
        { series: sel('seedops_irt_http_requests_total', { ...SVC, method: 'POST', route: '/irt/score', status: '200' }), values: `0+90x${n}` },
        { series: sel('seedops_irt_http_requests_total', { ...SVC, method: 'POST', route: '/irt/score', status: '500' }), values: `0+10x${n}` },
      ],
      alert_rule_test: [
        { eval_time: '8m', alertname: 'SeedopsIrtErrorRate', exp_alerts: [] },
        { eval_time: '15m', alertname: 'SeedopsIrtErrorRate', exp_alerts: [{ exp_labels: { ...SVC, severity: 'critical' } }] },
      ],
    },
    {
      // Every /irt/score request takes between 2 and 5 s.
      name: 'irt p99 latency',
      interval: '1m',
      input_series: [
        ...['0.05', '1', '2'].map((le) => ({ series: sel('seedops_irt_http_request_duration_seconds_bucket', { ...SVC, method: 'POST', route: '/irt/score', status: '200', le }), values: `0x${n}` })),
        ...['5', '+Inf'].map((le) => ({ series: sel('seedops_irt_http_request_duration_seconds_bucket', { ...SVC, method: 'POST', route: '/irt/score', status: '200', le }), values: `0+20x${n}` })),
      ],
      alert_rule_test: [
        { eval_time: '8m', alertname: 'SeedopsIrtLatencyP99', exp_alerts: [] },
        { eval_time: '15m', alertname: 'SeedopsIrtLatencyP99', exp_alerts: [{ exp_labels: { ...SVC, route: '/irt/score', severity: 'warning' } }] },
      ],
    },
    {
      name: 'calibration not converged',
      interval: '1m',
      input_series: [
        { series: sel('seedops_irt_calibrations_total', { ...SVC, outcome: 'converged' }), values: `0x${n}` },
        { series: sel('seedops_irt_calibrations_total', { ...SVC, outcome: 'not_converged' }), values: `0 0 0 0 0 1x${n}` },
      ],
      alert_rule_test: [
        { eval_time: '3m', alertname: 'SeedopsIrtCalibrationNotConverged', exp_alerts: [] },
        { eval_time: '10m', alertname: 'SeedopsIrtCalibrationNotConverged', exp_alerts: [{ exp_labels: { ...SVC, severity: 'warning' } }] },
      ],
    },
    {
      name: 'healthy: no alert',
      interval: '1m',
      input_series: [...healthyService(60), ...healthyStages(60, 60)],
      alert_rule_test: ALERTS.map((alertname) => ({ eval_time: '30m', alertname, exp_alerts: [] })),
    },
    {
      // Three weeks of daily/weekly successes, sampled hourly: never stale.
      name: 'healthy stages over three weeks',
      interval: '1h',
      input_series: healthyStages(24 * 21, HOUR),
      alert_rule_test: ['SeedopsStageStale', 'SeedopsStageFailed'].flatMap((alertname) => ['23h', '25h', '169h', '200h', '480h'].map((eval_time) => ({ eval_time, alertname, exp_alerts: [] }))),
    },
  ]
}

describe.skipIf(!promtool)('k8s/overlays/monitoring PrometheusRule', () => {
  let dir: string
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'seedops-rules-'))
    writeFileSync(join(dir, 'rules.yml'), stringify({ groups: rule.spec.groups }))
    // The unit tests check which alerts fire with which labels; promtool would also compare the
    // rendered annotations, so its copy leaves them out (check rules still parses their templates).
    writeFileSync(join(dir, 'rules-bare.yml'), stringify({ groups: rule.spec.groups.map((g: any) => ({ ...g, rules: g.rules.map(({ annotations: _a, ...r }: Rule) => r) })) }))
  })
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  test('promtool check rules passes on the rule groups', async () => {
    const r = await promtoolRun(['check', 'rules', 'rules.yml'], dir)
    expect(r.out).toContain(`SUCCESS: ${rules.length} rules found`)
    expect(r.code).toBe(0)
    expect(rules.map((x) => x.alert).filter((a, i, all) => all.indexOf(a) === i)).toEqual(ALERTS)
  })

  test('promtool test rules: each alert fires on its series (not before its `for`), none on healthy series', async () => {
    const { minutes, hours } = unitTests()
    writeFileSync(join(dir, 'tests.yml'), stringify({ rule_files: ['rules-bare.yml'], evaluation_interval: '1m', tests: minutes }))
    writeFileSync(join(dir, 'tests-hours.yml'), stringify({ rule_files: ['rules-bare.yml'], evaluation_interval: '1h', tests: hours }))
    for (const f of ['tests.yml', 'tests-hours.yml']) {
      const r = await promtoolRun(['test', 'rules', f], dir)
      expect(r.out, f).toContain('SUCCESS')
      expect(r.code, f).toBe(0)
    }
    // The unit tests can fail: with the error-rate threshold at 50 %, the 10 % case no longer fires.
    const broken = readFileSync(join(dir, 'rules-bare.yml'), 'utf8').replace('> 0.05', '> 0.5')
    expect(broken).not.toBe(readFileSync(join(dir, 'rules-bare.yml'), 'utf8'))
    writeFileSync(join(dir, 'rules-bare.yml'), broken)
    const b = await promtoolRun(['test', 'rules', 'tests.yml'], dir)
    expect(b.code).not.toBe(0)
    expect(b.out).toMatch(/alertname: SeedopsIrtErrorRate, time: 15m,[\s\S]*severity="critical"[\s\S]*got:\[\]/)
    expect(b.out.match(/alertname: /g)).toHaveLength(1)
  })

  test('every CronJob in k8s/base has a staleness rule whose threshold fits its schedule', () => {
    const cronjobs = buildKustomization(join(ROOT, 'k8s', 'base')).filter((o) => o.kind === 'CronJob')
    expect(cronjobs.length).toBeGreaterThan(0)
    const stale = rules.filter((r) => r.alert === 'SeedopsStageStale')
    expect(stale).toHaveLength(cronjobs.length)
    for (const cj of cronjobs) {
      const stage = cj.metadata.labels!['seedops.io/stage']!
      const it = CronExpressionParser.parse(cj.spec.schedule, { tz: cj.spec.timeZone ?? 'Etc/UTC', currentDate: new Date('2025-01-01T00:00:00Z') })
      const a = it.next().getTime()
      const b = it.next().getTime()
      const period = (b - a) / 1000
      expect(THRESHOLD[period], `${stage}: a cadence of ${period} s has no staleness rule`).toBeDefined()
      const mine = stale.filter((r) => r.expr.includes(`job="${stage}"`))
      expect(mine, stage).toHaveLength(1)
      const m = /\)\s*>\s*(\d+)\s*$/.exec(mine[0]!.expr)
      expect(Number(m?.[1]), `${stage} (${cj.spec.schedule})`).toBe(THRESHOLD[period])
      expect(mine[0]!.labels).toEqual({ severity: 'warning', stage, cadence: period === 24 * HOUR ? 'daily' : 'weekly' })
    }
  })
})
