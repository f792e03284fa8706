import { createServer, type Server } from 'node:http'
import { createRequire } from 'node:module'
import type { Registry } from 'prom-client'
import { redact } from '../errors/index.js'

// prom-client costs ~50 ms of CPU to load: required on first use, so a service process can be
// listening before it (see deferredServiceMetrics) and a primary that only sums never waits for it.
let promClient: typeof import('prom-client') | undefined
export const prom = (): typeof import('prom-client') => (promClient ??= createRequire(import.meta.url)('prom-client') as typeof import('prom-client'))
/** prom-client's Registry.PROMETHEUS_CONTENT_TYPE, without loading it. */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8'

/**
 * The IRT service's metrics (`seedops irt serve`), in a registry of their own per server so that
 * several servers in one process (the tests) never share or double-register a metric.
 *
 * Labels stay bounded: `route` is the route template (unknown paths are "other", never the raw
 * URL), `method` one of the known verbs or "other", `status` the HTTP status code.
 */

/** The service's routes; anything else is counted as "other". */
export const ROUTES = ['/healthz', '/health', '/irt/calibrate', '/irt/score', '/analysis/irt/update-theta'] as const
const METHODS = new Set(['GET', 'POST', 'HEAD', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'])

export type CalibrationOutcome = 'converged' | 'not_converged' | 'error'

export interface ServiceMetrics {
  registry: Registry
  /** Call when a request arrives; the returned function records it when the response is sent. */
  startRequest(method: string | undefined, path: string): (status: number) => void
  /** Persons and items of one /irt/score or /irt/calibrate batch. */
  batch(route: '/irt/score' | '/irt/calibrate', persons: number, items: number): void
  calibration(outcome: CalibrationOutcome): void
  updateTheta(outcome: 'ok' | 'error'): void
  /** A request answered earlier (deferredServiceMetrics replays those it saw before loading). */
  record(method: string | undefined, path: string, status: number, seconds: number): void
  /** Moves the in-flight gauge (deferredServiceMetrics: requests that began before it loaded). */
  inFlight(delta: number): void
}

export function routeLabel(path: string): string {
  return (ROUTES as readonly string[]).includes(path) ? path : 'other'
}

/**
 * @param processMetrics also collect prom-client's default process/Node.js metrics (CPU, memory,
 *   event loop lag, GC, handles) into this registry; `seedops irt serve` does, library users may not.
 */
export function createServiceMetrics(opts: { processMetrics?: boolean } = {}): ServiceMetrics {
  const { collectDefaultMetrics, Counter, exponentialBuckets, Gauge, Histogram, Registry } = prom()
  const registry = new Registry()
  const registers = [registry]
  if (opts.processMetrics) collectDefaultMetrics({ register: registry })
  const labelNames = ['method', 'route', 'status'] as const
  const requests = new Counter({ name: 'seedops_irt_http_requests_total', help: 'HTTP requests answered, by method, route template and status code.', labelNames, registers })
  const duration = new Histogram({
    name: 'seedops_irt_http_request_duration_seconds',
    help: 'Time from request to response, by method, route template and status code.',
    labelNames,
    // 2 s is a bucket edge: the p99 alert's threshold.
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120],
    registers,
  })
  const inFlight = new Gauge({ name: 'seedops_irt_http_requests_in_flight', help: 'Requests being handled now.', registers })
  const sizes = exponentialBuckets(1, 4, 10) // 1 … 262144
  const persons = new Histogram({ name: 'seedops_irt_batch_persons', help: 'Persons (response patterns) per /irt/score or /irt/calibrate request.', labelNames: ['route'], buckets: sizes, registers })
  const items = new Histogram({ name: 'seedops_irt_batch_items', help: 'Items per /irt/score or /irt/calibrate request.', labelNames: ['route'], buckets: sizes, registers })
  const calibrations = new Counter({ name: 'seedops_irt_calibrations_total', help: 'Calibrations run by /irt/calibrate, by outcome (converged, not_converged, error).', labelNames: ['outcome'], registers })
  const updates = new Counter({ name: 'seedops_irt_update_theta_total', help: 'update-theta calls, by outcome (ok, error).', labelNames: ['outcome'], registers })
  // Zero series from the start, so rate() and the alerts see 0 rather than nothing.
  for (const o of ['converged', 'not_converged', 'error']) calibrations.inc({ outcome: o }, 0)
  for (const o of ['ok', 'error']) updates.inc({ outcome: o }, 0)

  return {
    registry,
    startRequest(method, path) {
      inFlight.inc()
      const end = duration.startTimer()
      const m = method && METHODS.has(method) ? method : 'other'
      const route = routeLabel(path)
      let done = false
      return (status) => {
        if (done) return
        done = true
        inFlight.dec()
        const labels = { method: m, route, status: String(status) }
        end(labels)
        requests.inc(labels)
      }
    },
    inFlight: (delta) => inFlight.inc(delta),
    record(method, path, status, seconds) {
      const labels = { method: method && METHODS.has(method) ? method : 'other', route: routeLabel(path), status: String(status) }
      duration.observe(labels, seconds)
      requests.inc(labels)
    },
    batch(route, p, i) {
      persons.observe({ route }, p)
      items.observe({ route }, i)
    },
    calibration: (outcome) => calibrations.inc({ outcome }),
    updateTheta: (outcome) => updates.inc({ outcome }),
  }
}

/**
 * ServiceMetrics that start counting before prom-client is loaded: until `load()` (or the first
 * read of `registry`) they note what happens and replay it into the real metrics then. `irt
 * serve` listens first and loads right after, off the path to its first answer.
 */
export function deferredServiceMetrics(opts: { processMetrics?: boolean } = {}): { metrics: ServiceMetrics; load(): ServiceMetrics } {
  let real: ServiceMetrics | undefined
  const pending: ((m: ServiceMetrics) => void)[] = []
  const later = (f: (m: ServiceMetrics) => void) => (real ? f(real) : pending.push(f))
  // Requests begun before loading and not answered yet: in flight once the gauge exists.
  let open = 0
  const load = () => {
    if (!real) {
      real = createServiceMetrics(opts)
      for (const f of pending.splice(0)) f(real)
      real.inFlight(open)
    }
    return real
  }
  const metrics: ServiceMetrics = {
    get registry() {
      return load().registry
    },
    startRequest(method, path) {
      if (real) return real.startRequest(method, path)
      const t0 = performance.now()
      open++
      let done = false
      return (status) => {
        if (done) return
        done = true
        open--
        const seconds = (performance.now() - t0) / 1000
        if (real) real.inFlight(-1)
        later((m) => m.record(method, path, status, seconds))
      }
    },
    batch: (route, p, i) => later((m) => m.batch(route, p, i)),
    calibration: (outcome) => later((m) => m.calibration(outcome)),
    updateTheta: (outcome) => later((m) => m.updateTheta(outcome)),
    record: (method, path, status, seconds) => later((m) => m.record(method, path, status, seconds)),
    inFlight: (delta) => later((m) => m.inFlight(delta)),
  }
  return { metrics, load }
}

/** What /metrics serves: a Registry, or the sum over cluster workers (irt-service/cluster.ts). */
export interface MetricsSource {
  metrics(): Promise<string>
  readonly contentType: string
}

/**
 * GET /metrics for one registry, on a listener of its own (`irt serve --metrics-port`): no token,
 * because the API port stays token-only and this one can be kept to the monitoring network.
 */
export function createMetricsServer(registry: MetricsSource): Server {
  return createServer(async (req, res) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname
    if (path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' })
      return res.end('not found: metrics are at /metrics\n')
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' })
      return res.end('use GET\n')
    }
    try {
      const body = await registry.metrics()
      res.writeHead(200, { 'content-type': registry.contentType, 'content-length': Buffer.byteLength(body) })
      res.end(req.method === 'HEAD' ? undefined : body)
    } catch (e) {
      res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' })
      res.end(`collecting metrics failed: ${redact((e as Error).message)}\n`)
    }
  })
}
