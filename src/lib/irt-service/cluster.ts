import cluster, { type Worker } from 'node:cluster'
import { fileURLToPath } from 'node:url'
import { SeedopsError, type ExitCode } from '../errors/index.js'
import type { Logger } from '../output/index.js'
import type { MetricsSource } from '../metrics/service.js'
import { DRAIN_MS, describeStart, drain, listen, type ServiceConfig } from './run.js'

/**
 * `irt serve --workers N` (N > 1): a node:cluster primary that owns no API code. It forks N worker
 * processes (worker.ts) that share the API port (the primary accepts and hands connections out
 * round-robin), serves /metrics as the sum over the workers, replaces a worker that dies, and on
 * SIGTERM/SIGINT lets every worker finish its in-flight requests before it exits 0.
 */

/** What the primary hands a worker in SEEDOPS_IRT_WORKER (the token stays in the environment it inherits). */
export interface WorkerConfig {
  host: string
  port: number
  auth: boolean
  withDb: boolean
  maxBodyBytes?: number
  headersTimeoutMs?: number
  requestTimeoutMs?: number
  quiet: boolean
  verbose: boolean
}

export const WORKER_ENV = 'SEEDOPS_IRT_WORKER'

export type WorkerMessage =
  | { type: 'seedops:error'; message: string; code: string; exitCode: number; suggestions: string[] }
  | { type: 'seedops:metrics'; id: number; metrics: unknown[] }
export type PrimaryMessage = { type: 'seedops:shutdown' } | { type: 'seedops:metrics'; id: number }

/** More deaths than this within CRASH_WINDOW_MS means something is wrong with every worker, not one: stop rather than loop. */
const CRASH_WINDOW_MS = 30_000
const SCRAPE_TIMEOUT_MS = 3_000

/** `logger` may still be loading: the workers are forked first, so they boot while it does. */
export async function runPrimary(cfg: ServiceConfig, loggerOrPromise: Logger | Promise<Logger>): Promise<{ url: string; metricsUrl: string }> {
  let logger: Logger | undefined
  const workerCfg: WorkerConfig = {
    host: cfg.host,
    port: cfg.port,
    auth: cfg.token !== null,
    withDb: cfg.withDb,
    maxBodyBytes: cfg.maxBodyBytes,
    headersTimeoutMs: cfg.headersTimeoutMs,
    requestTimeoutMs: cfg.requestTimeoutMs,
    quiet: process.argv.includes('--quiet') || process.argv.includes('-q'),
    verbose: process.argv.includes('--verbose'),
  }
  // The workers accept on the shared socket themselves (the kernel picks one), rather than the
  // primary accepting every connection and passing it over IPC (Node's default on Linux): with a
  // new connection per request that hand-off costs as much CPU as the request. Busy workers take
  // fewer connections, so the load still spreads.
  if (process.env.NODE_CLUSTER_SCHED_POLICY === undefined) cluster.schedulingPolicy = cluster.SCHED_NONE
  cluster.setupPrimary({ exec: fileURLToPath(new URL('./worker.js', import.meta.url)), execArgv: workerExecArgv(process.execArgv), args: [], silent: false })
  const env = { [WORKER_ENV]: JSON.stringify(workerCfg) }

  // From the start: a SIGTERM while the workers boot still stops them all cleanly.
  const signal = new Promise<void>((resolve) => {
    process.once('SIGTERM', () => resolve())
    process.once('SIGINT', () => resolve())
  })
  const listening = new Set<Worker>()
  const deaths: number[] = []
  let stopping = false
  let url: string | undefined
  let fatal: ((e: Error) => void) | undefined
  const failed = new Promise<never>((_, reject) => (fatal = reject))
  failed.catch(() => {})
  const errors = new Map<number, Extract<WorkerMessage, { type: 'seedops:error' }>>()

  const fork = () => {
    const w = cluster.fork(env)
    w.on('message', (m: WorkerMessage) => {
      if (m?.type === 'seedops:error') errors.set(w.id, m)
    })
    w.on('listening', (addr) => {
      listening.add(w)
      url ??= `http://${cfg.host}:${addr.port}`
    })
    return w
  }
  cluster.on('exit', (w, code, signal) => {
    const wasListening = listening.delete(w)
    if (stopping) return
    const err = errors.get(w.id)
    if (!wasListening) {
      // It never served: a start-up failure (port taken, database URL wrong) that every worker will hit.
      return fatal!(err ? new SeedopsError(err.message, { code: err.code, exitCode: err.exitCode as ExitCode, suggestions: err.suggestions }) : new SeedopsError(`irt serve worker ${w.process.pid} exited before it listened (${signal ?? `code ${code}`})`, { code: 'WORKER_FAILED' }))
    }
    const now = Date.now()
    deaths.push(now)
    while (deaths[0]! < now - CRASH_WINDOW_MS) deaths.shift()
    if (deaths.length > 2 * cfg.workers) {
      return fatal!(new SeedopsError(`irt serve workers died ${deaths.length} times in ${CRASH_WINDOW_MS / 1000} s; stopping`, { code: 'WORKER_FAILED' }))
    }
    const next = fork()
    logger?.warn(`irt serve worker ${w.process.pid} died (${signal ?? `exit code ${code}`}); started worker ${next.process.pid} in its place`)
  })

  for (let i = 0; i < cfg.workers; i++) fork()
  logger = await loggerOrPromise
  const { createMetricsServer, prom: loadProm, PROMETHEUS_CONTENT_TYPE } = await import('../metrics/service.js')
  // prom-client loads after the workers have started listening (below), off the path to the first answer.
  let own: import('prom-client').Registry | undefined
  const ownRegistry = () => {
    if (!own) {
      own = new (loadProm().Registry)()
      loadProm().collectDefaultMetrics({ register: own })
    }
    return own
  }
  let seq = 0
  const ask = (w: Worker) =>
    new Promise<unknown[] | undefined>((resolve) => {
      const id = ++seq
      const timer = setTimeout(() => done(undefined), SCRAPE_TIMEOUT_MS)
      const onMessage = (m: WorkerMessage) => {
        if (m?.type === 'seedops:metrics' && m.id === id) done(m.metrics)
      }
      const done = (v: unknown[] | undefined) => {
        clearTimeout(timer)
        w.off('message', onMessage)
        w.off('exit', gone)
        resolve(v)
      }
      const gone = () => done(undefined)
      w.on('message', onMessage)
      w.once('exit', gone)
      w.send({ type: 'seedops:metrics', id } satisfies PrimaryMessage)
    })
  const source: MetricsSource = {
    contentType: PROMETHEUS_CONTENT_TYPE,
    async metrics() {
      // A worker that does not answer in time (busy with a long calibration) is left out of this scrape.
      const parts = (await Promise.all([...listening].map(ask))).filter((p) => p !== undefined)
      parts.push(await ownRegistry().getMetricsAsJSON())
      const { AggregatorRegistry } = loadProm()
      return AggregatorRegistry.aggregate(parts as Parameters<typeof AggregatorRegistry.aggregate>[0]).metrics()
    },
  }
  const metricsServer = createMetricsServer(source)

  const stopAll = async () => {
    stopping = true
    const alive = Object.values(cluster.workers ?? {}).filter((w): w is Worker => Boolean(w && !w.isDead()))
    const exited = Promise.all(alive.map((w) => (w.isDead() ? undefined : new Promise((r) => w.once('exit', r)))))
    for (const w of alive) if (w.isConnected()) w.send({ type: 'seedops:shutdown' } satisfies PrimaryMessage)
    const killer = setTimeout(() => alive.forEach((w) => w.isDead() || w.process.kill('SIGKILL')), DRAIN_MS + 5_000)
    if (metricsServer.listening) await Promise.all([exited, drain(metricsServer, 0)])
    else {
      metricsServer.once('listening', () => metricsServer.close())
      await exited
    }
    clearTimeout(killer)
  }

  try {
    const stopped = signal.then(() => Promise.reject(new StartAborted()))
    stopped.catch(() => {})
    const metricsUrl = `${await Promise.race([listen(metricsServer, cfg.metricsPort, cfg.host), failed, stopped])}/metrics`
    while (listening.size < cfg.workers) await Promise.race([once(cluster, 'listening'), failed, stopped])
    ownRegistry()
    const dbUrl = cfg.withDb ? process.env.DATABASE_URL : undefined
    logger.info(describeStart(url!, metricsUrl, cfg, dbUrl ? (await import('../db/index.js')).redactUrl(dbUrl) : undefined))
    await Promise.race([signal, failed])
    await stopAll()
    return { url: url!, metricsUrl }
  } catch (e) {
    await stopAll()
    if (e instanceof StartAborted) return { url: url ?? '', metricsUrl: '' }
    throw e
  }
}

/** SIGTERM/SIGINT before every worker listened: a clean stop, not a failure. */
class StartAborted extends Error {}

function once(emitter: typeof cluster, event: 'listening'): Promise<void> {
  return new Promise((resolve) => emitter.once(event, () => resolve()))
}

/** The primary's node flags for the workers, less a script given inline (`node -e …`), which would run instead of worker.js. */
export function workerExecArgv(argv: string[]): string[] {
  const out: string[] = []
  for (let k = 0; k < argv.length; k++) {
    const a = argv[k]!
    if (a === '-e' || a === '--eval' || a === '-p' || a === '--print') k++
    else if (!/^(--eval=|--print=|--input-type)/.test(a)) out.push(a)
  }
  return out
}
