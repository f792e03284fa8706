import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import type { Server } from 'node:http'
import { join } from 'node:path'
import type { ChildProcess } from 'node:child_process'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { createIrtServer } from '../../src/lib/irt-service/server.js'
import { createMetricsServer, createServiceMetrics } from '../../src/lib/metrics/service.js'
import { silentLogger } from '../../src/lib/output/index.js'
import { spawnCli } from '../support/cli.js'
import { findTool, startPrometheus, type RunningTool } from '../support/prometheus.js'

/**
 * `seedops irt serve`'s metrics as an operator sees them: the real CLI on loopback, scraped every
 * second by a real Prometheus (Debian's), read back through the Prometheus query API.
 */
const TOKEN = 'irt-token-metrics-7c41e9'
const prometheusBin = findTool('prometheus', 'prometheus')

const LSAT7 = join(import.meta.dirname, '..', 'fixtures', 'irt', 'lsat7', 'responses.csv')
function lsat7Observations() {
  const [, ...rows] = readFileSync(LSAT7, 'utf8').trim().split('\n')
  return rows.map((r) => {
    const [user_id, item_id, is_correct] = r.split(',')
    return { user_id: user_id!, item_id: item_id!, is_correct: Number(is_correct) }
  })
}
const ITEMS = [
  { a: 0.99, b: -1.88 },
  { a: 1.08, b: -0.75 },
  { a: 1.71, b: -1.05 },
  { a: 0.77, b: -0.63 },
]

const post = (url: string, body: unknown, token: string | null = TOKEN) =>
  fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) }, body: JSON.stringify(body) })

/** Starts `seedops irt serve` on free loopback ports; resolves with the API and metrics URLs from its log line. */
async function startServe(): Promise<{ child: ChildProcess; api: string; metrics: string; log: () => string }> {
  const child = spawnCli(['irt', 'serve', '--host', '127.0.0.1', '--port', '0', '--metrics-port', '0', '--no-with-db'], { R_IRT_INTERNAL_TOKEN: TOKEN })
  let log = ''
  child.stdout!.on('data', (d) => (log += d))
  child.stderr!.on('data', (d) => (log += d))
  const deadline = Date.now() + 30_000
  for (;;) {
    const api = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(log)?.[1]
    const metrics = /metrics on (http:\/\/127\.0\.0\.1:\d+)\/metrics/.exec(log)?.[1]
    if (api && metrics) return { child, api, metrics: `${metrics}/metrics`, log: () => log }
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`irt serve did not start:\n${log}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

type Sample = { metric: Record<string, string>; value: [number, string] }
async function query(prom: RunningTool, q: string): Promise<Sample[]> {
  const res = await fetch(`${prom.url}/api/v1/query?query=${encodeURIComponent(q)}`)
  const body = (await res.json()) as { status: string; data: { result: Sample[] }; error?: string }
  if (body.status !== 'success') throw new Error(`${q}: ${body.error}`)
  return body.data.result
}

/** Polls until the query returns something `ok` accepts (Prometheus scrapes every second). */
async function eventually(prom: RunningTool, q: string, ok: (r: Sample[]) => boolean, timeoutMs = 20_000): Promise<Sample[]> {
  const deadline = Date.now() + timeoutMs
  let last: Sample[] = []
  while (Date.now() < deadline) {
    last = await query(prom, q)
    if (ok(last)) return last
    await new Promise((r) => setTimeout(r, 250))
  }
  return last
}
const value = (r: Sample[]) => (r.length === 1 ? Number(r[0]!.value[1]) : NaN)

describe.skipIf(!prometheusBin)('irt serve metrics, scraped by a real Prometheus', () => {
  let serve: Awaited<ReturnType<typeof startServe>>
  let prom: RunningTool
  beforeAll(async () => {
    serve = await startServe()
    const target = new URL(serve.metrics).host
    prom = await startPrometheus(prometheusBin!, `global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: seedops-irt\n    static_configs:\n      - targets: ['${target}']\n`)
  })
  afterAll(async () => {
    await prom?.stop()
    if (serve && serve.child.exitCode === null) {
      serve.child.kill('SIGTERM')
      await once(serve.child, 'exit')
    }
  })

  test('the request counter and latency histogram reach Prometheus per route template and status', async () => {
    expect((await fetch(`${serve.api}/healthz`)).status).toBe(200)
    const scored = await post(`${serve.api}/irt/score`, { item_params: ITEMS, responses: [[1, 0, 1, 1], [0, 0, 1, null], [1, 1, 1, 1]] })
    expect(scored.status).toBe(200)
    expect((await post(`${serve.api}/irt/score`, { item_params: ITEMS, responses: [] }, null)).status).toBe(401)
    expect((await post(`${serve.api}/irt/score`, {}, 'not-the-token')).status).toBe(401)
    expect((await post(`${serve.api}/irt/score`, { item_params: ITEMS, responses: [[2, 0, 1, 1]] })).status).toBe(400)
    // Raw paths never become labels: these count as route="other".
    expect((await post(`${serve.api}/nope/12345?token=${TOKEN}`, {})).status).toBe(404)
    expect((await post(`${serve.api}/irt/score/extra`, {})).status).toBe(404)
    expect((await post(`${serve.api}/irt/calibrate`, { observations: lsat7Observations(), model: '2PL' })).status).toBe(200)
    // No database: update-theta answers 500, counted as an error.
    expect((await post(`${serve.api}/analysis/irt/update-theta`, { user_id: 'u1' })).status).toBe(500)

    // Read what a scrape that started after the last request saw.
    const after = Date.now() / 1000
    expect(value(await eventually(prom, 'timestamp(up{job="seedops-irt"})', (r) => value(r) > after))).toBeGreaterThan(after)
    const c = (labels: string) => query(prom, `seedops_irt_http_requests_total{job="seedops-irt",${labels}}`)
    expect(value(await c('method="GET",route="/healthz",status="200"'))).toBeGreaterThanOrEqual(1)
    expect(value(await c('method="POST",route="/irt/score",status="200"'))).toBe(1)
    expect(value(await c('method="POST",route="/irt/score",status="401"'))).toBe(2) // no token, wrong token
    expect(value(await c('method="POST",route="/irt/score",status="400"'))).toBe(1)
    expect(value(await c('method="POST",route="other",status="404"'))).toBe(2)
    expect(value(await c('method="POST",route="/irt/calibrate",status="200"'))).toBe(1)
    expect(value(await c('method="POST",route="/analysis/irt/update-theta",status="500"'))).toBe(1)
    const routes = (await query(prom, 'count by (route) (seedops_irt_http_requests_total)')).map((s) => s.metric.route).sort()
    expect(routes).toEqual(['/analysis/irt/update-theta', '/healthz', '/irt/calibrate', '/irt/score', 'other'])

    // The histogram: the calibration's one observation is in the +Inf bucket and in _count, with a positive _sum.
    const buckets = await query(prom, 'seedops_irt_http_request_duration_seconds_bucket{route="/irt/calibrate",status="200"}')
    expect(buckets.map((b) => b.metric.le)).toContain('2')
    expect(Number(buckets.find((b) => b.metric.le === '+Inf')!.value[1])).toBe(1)
    expect(value(await query(prom, 'seedops_irt_http_request_duration_seconds_count{route="/irt/calibrate",status="200"}'))).toBe(1)
    expect(value(await query(prom, 'seedops_irt_http_request_duration_seconds_sum{route="/irt/calibrate",status="200"}'))).toBeGreaterThan(0)
    const p99 = await query(prom, 'histogram_quantile(0.99, sum by (le) (seedops_irt_http_request_duration_seconds_bucket{route="/irt/score"}))')
    expect(value(p99)).toBeGreaterThan(0)

    // Batch sizes, calibrations by outcome, update-theta calls, in flight, process metrics.
    expect(value(await query(prom, 'seedops_irt_batch_persons_sum{route="/irt/score"}'))).toBe(3)
    expect(value(await query(prom, 'seedops_irt_batch_items_sum{route="/irt/score"}'))).toBe(4)
    expect(value(await query(prom, 'seedops_irt_batch_persons_sum{route="/irt/calibrate"}'))).toBe(1000)
    expect(value(await query(prom, 'seedops_irt_batch_items_sum{route="/irt/calibrate"}'))).toBe(5)
    expect(value(await query(prom, 'seedops_irt_calibrations_total{outcome="converged"}'))).toBe(1)
    expect(value(await query(prom, 'seedops_irt_calibrations_total{outcome="not_converged"}'))).toBe(0)
    expect(value(await query(prom, 'seedops_irt_update_theta_total{outcome="error"}'))).toBe(1)
    expect(value(await query(prom, 'seedops_irt_http_requests_in_flight'))).toBe(0)
    expect(value(await query(prom, 'up{job="seedops-irt"}'))).toBe(1)
    expect((await query(prom, 'process_cpu_seconds_total{job="seedops-irt"}')).length).toBe(1)
    expect((await query(prom, 'nodejs_eventloop_lag_p99_seconds{job="seedops-irt"}')).length).toBe(1)
  })

  test('/metrics: Prometheus text format, no token needed on its port, no secret in it; the API port keeps its token', async () => {
    const res = await fetch(serve.metrics)
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8')
    const text = await res.text()
    expect(text).toMatch(/^# HELP seedops_irt_http_requests_total /m)
    expect(text).toMatch(/^# TYPE seedops_irt_http_request_duration_seconds histogram$/m)
    expect(text).not.toContain(TOKEN)
    expect(text).not.toContain('not-the-token')
    expect(text).not.toContain('/nope')
    expect(serve.log()).not.toContain(TOKEN)
    // Not an open exception on the API port.
    expect((await fetch(`${serve.api}/metrics`)).status).toBe(401)
    expect((await fetch(serve.metrics.replace('/metrics', '/irt/score'))).status).toBe(404)
    expect((await fetch(serve.metrics, { method: 'POST' })).status).toBe(405)
  })
})

describe('one registry per server', () => {
  const servers: Server[] = []
  afterAll(() => servers.forEach((s) => s.close()))
  const listen = async (s: Server) => {
    servers.push(s)
    s.listen(0, '127.0.0.1')
    await once(s, 'listening')
    return `http://127.0.0.1:${(s.address() as { port: number }).port}`
  }

  test('two servers in one process count their own requests (and both collect process metrics)', async () => {
    const m1 = createServiceMetrics({ processMetrics: true })
    const m2 = createServiceMetrics({ processMetrics: true })
    const a = await listen(createIrtServer({ token: TOKEN, logger: silentLogger, metrics: m1 }))
    const b = await listen(createIrtServer({ token: TOKEN, logger: silentLogger, metrics: m2 }))
    const ma = await listen(createMetricsServer(m1.registry))
    for (let i = 0; i < 3; i++) await fetch(`${a}/healthz`)
    await fetch(`${b}/healthz`)
    await post(`${b}/irt/score`, {}, null)
    const count = async (m: typeof m1, labels: Record<string, string>) => {
      const metric = (await m.registry.getSingleMetric('seedops_irt_http_requests_total')!.get()).values
      return metric.find((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x))?.value ?? 0
    }
    expect(await count(m1, { route: '/healthz', status: '200' })).toBe(3)
    expect(await count(m2, { route: '/healthz', status: '200' })).toBe(1)
    expect(await count(m1, { route: '/irt/score', status: '401' })).toBe(0)
    expect(await count(m2, { route: '/irt/score', status: '401' })).toBe(1)
    const text = await (await fetch(`${ma}/metrics`)).text()
    expect(text).toContain('seedops_irt_http_requests_total{method="GET",route="/healthz",status="200"} 3')
    expect(text).toMatch(/^process_resident_memory_bytes \d+/m)
  })
})
