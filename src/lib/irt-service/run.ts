import { once } from 'node:events'
import type { Server } from 'node:http'
import { availableParallelism } from 'node:os'
import { envFirst } from '../config/index.js'
import type { Db } from '../db/index.js'
import { registerSecret, usageError } from '../errors/index.js'
import type { Logger } from '../output/index.js'
import { DEFAULT_HEADERS_TIMEOUT_MS, DEFAULT_REQUEST_TIMEOUT_MS } from './limits.js'

/**
 * `seedops irt serve` as a library: resolve flags and environment, then serve in this process
 * (--workers 1) or as a node:cluster primary with one worker process per core (cluster.ts).
 * Shared by the oclif command and bin/run.js's fast path, which skips oclif at start.
 */
export interface ServeOptions {
  port?: number
  host?: string
  metricsPort?: number
  noAuth?: boolean
  withDb?: boolean
  workers?: number
}

export interface ServiceConfig {
  host: string
  port: number
  metricsPort: number
  /** Checked by every route but /healthz; null only with --no-auth. */
  token: string | null
  withDb: boolean
  workers: number
  /** IRT_MAX_BODY_BYTES: larger bodies are answered 413. */
  maxBodyBytes?: number
  /** IRT_HEADERS_TIMEOUT_MS / IRT_REQUEST_TIMEOUT_MS: a client slower than these gets 408 and its connection closed (server.ts). */
  headersTimeoutMs?: number
  requestTimeoutMs?: number
}

export const TOKEN_ENV = ['R_IRT_INTERNAL_TOKEN', 'IRT_SERVICE_TOKEN']
export const WORKERS_ENV = 'IRT_WORKERS'
export const MAX_BODY_ENV = 'IRT_MAX_BODY_BYTES'
export const HEADERS_TIMEOUT_ENV = 'IRT_HEADERS_TIMEOUT_MS'
export const REQUEST_TIMEOUT_ENV = 'IRT_REQUEST_TIMEOUT_MS'
/** How long in-flight requests may take to finish after SIGTERM before their connections are cut (Kubernetes' grace period is 30 s). */
export const DRAIN_MS = 25_000
/**
 * prom-client (~50 ms of CPU) loads this long after the API listens, so the first requests (a
 * readiness probe) are not queued behind it; a scrape before then loads it at once.
 */
export const METRICS_LOAD_DELAY_MS = 250

function envInt(name: string, env: NodeJS.ProcessEnv, min: number, max: number): number | undefined {
  const v = env[name]
  if (v === undefined || v.trim() === '') return undefined
  const n = Number(v)
  if (!Number.isInteger(n) || n < min || n > max) throw usageError(`${name}=${JSON.stringify(v)} is not an integer in [${min}, ${max}]`)
  return n
}

export function resolveServiceConfig(opts: ServeOptions, env: NodeJS.ProcessEnv = process.env, logger?: Pick<Logger, 'info'>): ServiceConfig {
  const token = envFirst(TOKEN_ENV, env)?.value ?? null
  if (!token && !opts.noAuth) {
    throw usageError('no token: set R_IRT_INTERNAL_TOKEN (secret r-irt-credentials, key token), or pass --no-auth for local use', ['In the cluster: seedops secrets ensure --only irt'])
  }
  registerSecret(token)
  const withDb = opts.withDb ?? Boolean(env.DATABASE_URL)
  let workers = opts.workers ?? envInt(WORKERS_ENV, env, 1, 256) ?? availableParallelism()
  if (workers < 1) throw usageError(`--workers must be at least 1, got ${workers}`)
  if (workers > 1 && withDb && !env.DATABASE_URL) {
    // The embedded PostgreSQL is one process's: its workers could not share it.
    logger?.info(`the embedded database serves one process: --workers ${workers} becomes 1 (set DATABASE_URL for more)`)
    workers = 1
  }
  const headersTimeoutMs = envInt(HEADERS_TIMEOUT_ENV, env, 100, 3_600_000)
  const requestTimeoutMs = envInt(REQUEST_TIMEOUT_ENV, env, 100, 3_600_000)
  // node:http refuses a header deadline later than the whole request's.
  if ((headersTimeoutMs ?? DEFAULT_HEADERS_TIMEOUT_MS) > (requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS)) {
    throw usageError(`${HEADERS_TIMEOUT_ENV} (${headersTimeoutMs ?? DEFAULT_HEADERS_TIMEOUT_MS}) must not exceed ${REQUEST_TIMEOUT_ENV} (${requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS})`)
  }
  return {
    host: opts.host ?? '0.0.0.0',
    port: opts.port ?? envInt('PORT', env, 0, 65535) ?? 8000,
    metricsPort: opts.metricsPort ?? envInt('METRICS_PORT', env, 0, 65535) ?? 9464,
    token: opts.noAuth ? null : token,
    withDb,
    workers,
    maxBodyBytes: envInt(MAX_BODY_ENV, env, 1024, 2 ** 31 - 1),
    headersTimeoutMs,
    requestTimeoutMs,
  }
}

export async function listen(server: Server, port: number, host: string): Promise<string> {
  server.listen(port, host)
  await once(server, 'listening')
  const addr = server.address()
  return `http://${host}:${typeof addr === 'object' && addr ? addr.port : port}`
}

/** Closes a server once its in-flight requests are answered (idle keep-alive connections are closed at once), cutting the rest after DRAIN_MS. */
export async function drain(server: Server, ms = DRAIN_MS): Promise<void> {
  if (!server.listening) return
  const closed = once(server, 'close')
  server.close()
  server.closeIdleConnections()
  const timer = setTimeout(() => server.closeAllConnections(), ms)
  timer.unref()
  await closed
  clearTimeout(timer)
}

export function describeStart(url: string, metricsUrl: string, cfg: ServiceConfig, db: string | undefined): string {
  return `seedops irt serve listening on ${url}${cfg.workers > 1 ? ` (${cfg.workers} workers)` : ''}${db ? ` (database ${db})` : ''}${cfg.token === null ? ' WITHOUT authentication' : ''}; metrics on ${metricsUrl}`
}

/** Runs the service until SIGTERM or SIGINT, then drains and resolves with where it listened. */
export async function runService(cfg: ServiceConfig, logger: Logger): Promise<{ url: string; metricsUrl: string }> {
  if (cfg.workers > 1) return (await import('./cluster.js')).runPrimary(cfg, logger)
  const [{ createIrtServer }, { createMetricsServer, deferredServiceMetrics, PROMETHEUS_CONTENT_TYPE }] = await Promise.all([import('./server.js'), import('../metrics/service.js')])
  let db: Db | undefined
  if (cfg.withDb) db = await (await import('../db/index.js')).openDb()
  const metrics = deferredServiceMetrics({ processMetrics: true })
  const server = createIrtServer({ token: cfg.token, db, logger, metrics: metrics.metrics, maxBodyBytes: cfg.maxBodyBytes, headersTimeoutMs: cfg.headersTimeoutMs, requestTimeoutMs: cfg.requestTimeoutMs })
  const metricsServer = createMetricsServer({ contentType: PROMETHEUS_CONTENT_TYPE, metrics: () => metrics.load().registry.metrics() })
  const url = await listen(server, cfg.port, cfg.host)
  // Answering already; prom-client loads shortly, off the path to the first answers.
  setTimeout(metrics.load, METRICS_LOAD_DELAY_MS)
  const metricsUrl = `${await listen(metricsServer, cfg.metricsPort, cfg.host)}/metrics`
  logger.info(describeStart(url, metricsUrl, cfg, db?.target))
  await new Promise<void>((resolve) => {
    const stop = () => {
      process.off('SIGTERM', stop)
      process.off('SIGINT', stop)
      resolve()
    }
    process.on('SIGTERM', stop)
    process.on('SIGINT', stop)
  })
  await Promise.all([drain(metricsServer, 0), drain(server)])
  await db?.close()
  return { url, metricsUrl }
}
