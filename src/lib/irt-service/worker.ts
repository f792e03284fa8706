/**
 * Entry of one `irt serve` cluster worker (forked by cluster.ts, never imported): the API server
 * on the shared port, its own metrics registry (the primary sums them for /metrics), and a
 * graceful stop on the primary's word or on SIGTERM/SIGINT.
 */
import type { Server } from 'node:http'
import { envFirst } from '../config/index.js'
import type { Db } from '../db/index.js'
import { registerSecret, translateError } from '../errors/index.js'
import { deferredServiceMetrics } from '../metrics/service.js'
import { createLogger } from '../output/index.js'
import { WORKER_ENV, type PrimaryMessage, type WorkerConfig, type WorkerMessage } from './cluster.js'
import { drain, METRICS_LOAD_DELAY_MS, TOKEN_ENV } from './run.js'
import { createIrtServer } from './server.js'

const cfg = JSON.parse(process.env[WORKER_ENV] ?? '{}') as WorkerConfig
const send = (m: WorkerMessage) => process.send?.(m)
const base = createLogger({ quiet: cfg.quiet, verbose: cfg.verbose })
const logger = base.child?.({ worker: process.pid }) ?? base

let server: Server | undefined
let db: Db | undefined
let stopping: Promise<void> | undefined

function stop(): Promise<void> {
  return (stopping ??= (async () => {
    if (server) await drain(server)
    await db?.close().catch(() => {})
    process.exit(0)
  })())
}

try {
  const token = cfg.auth ? (envFirst(TOKEN_ENV)?.value ?? null) : null
  registerSecret(token)
  const metrics = deferredServiceMetrics({ processMetrics: true })
  process.on('message', (m: PrimaryMessage) => {
    if (m?.type === 'seedops:shutdown') void stop()
    else if (m?.type === 'seedops:metrics') void metrics.load().registry.getMetricsAsJSON().then((json) => send({ type: 'seedops:metrics', id: m.id, metrics: json }))
  })
  // Ctrl-C reaches the whole process group and `kill` may reach a worker alone: either way it drains first.
  process.on('SIGTERM', () => void stop())
  process.on('SIGINT', () => void stop())
  if (cfg.withDb) db = await (await import('../db/index.js')).openDb()
  server = createIrtServer({ token, db, logger, metrics: metrics.metrics, maxBodyBytes: cfg.maxBodyBytes, headersTimeoutMs: cfg.headersTimeoutMs, requestTimeoutMs: cfg.requestTimeoutMs })
  await new Promise<void>((resolve, reject) => {
    server!.once('error', reject)
    server!.listen(cfg.port, cfg.host, () => {
      server!.off('error', reject)
      resolve()
    })
  })
  setTimeout(metrics.load, METRICS_LOAD_DELAY_MS)
} catch (e) {
  const err = translateError(e)
  // Wait for the message to leave before exiting, so the primary can report it.
  await new Promise<void>((resolve) => (process.send ? process.send({ type: 'seedops:error', message: err.message, code: err.code, exitCode: err.exitCode, suggestions: err.suggestions } satisfies WorkerMessage, undefined, {}, () => resolve()) : resolve()))
  await db?.close().catch(() => {})
  process.exit(err.exitCode || 1)
}
