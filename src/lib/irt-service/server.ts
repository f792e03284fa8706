import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { timingSafeEqual, createHash } from 'node:crypto'
import type { Db } from '../db/index.js'
import { SeedopsError, translateError } from '../errors/index.js'
import type { Logger } from '../output/index.js'
import { seedopsVersion } from '../paths.js'
import { createServiceMetrics, type ServiceMetrics } from '../metrics/service.js'
import { DEFAULT_HEADERS_TIMEOUT_MS, DEFAULT_MAX_BODY_BYTES, DEFAULT_REQUEST_TIMEOUT_MS } from './limits.js'
import { parseScoreBody } from './score-body.js'
import { scoreBatch } from './score-request.js'

export interface ServeOptions {
  /** Bearer token the callers must send; null only with an explicit --no-auth. */
  token: string | null
  db?: Db
  logger: Logger
  maxBodyBytes?: number
  /** node:http's headersTimeout / requestTimeout (see ServiceConfig); defaults in limits.ts. */
  headersTimeoutMs?: number
  requestTimeoutMs?: number
  /** Where the request metrics go (served by createMetricsServer); default: a registry of this server's own. */
  metrics?: ServiceMetrics
}

const sha = (s: string) => createHash('sha256').update(s).digest()

/**
 * Whether the bearer token a caller sent is the expected one, in time independent of where they
 * differ: both sides are SHA-256 digests (equal lengths whatever was sent, which timingSafeEqual
 * requires) compared by timingSafeEqual, so neither the length nor a matching prefix shows in the timing.
 */
export function tokenMatches(given: string, expectedDigest: Buffer): boolean {
  const d = sha(given)
  return d.length === expectedDigest.length && timingSafeEqual(d, expectedDigest)
}

function sendText(res: ServerResponse, status: number, text: string, extra?: Record<string, string>) {
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...extra })
  res.end(text)
}
const send = (res: ServerResponse, status: number, body: unknown, extra?: Record<string, string>) => sendText(res, status, JSON.stringify(body), extra)

function tooLarge(limit: number) {
  return new SeedopsError(`request body larger than ${limit} bytes`, { code: 'PAYLOAD_TOO_LARGE' })
}

/** The body's bytes; a declared length over the limit is refused before a byte is read. */
function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length'])
  if (declared > limit) return Promise.reject(tooLarge(limit))
  return new Promise((resolve, reject) => {
    let size = 0
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => {
      size += c.length
      if (size > limit) {
        reject(tooLarge(limit))
        req.removeAllListeners('data')
        req.resume()
      } else chunks.push(c)
    })
    req.on('end', () => {
      if (size <= limit) resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks))
    })
    req.on('error', reject)
  })
}

/** The body as JSON (an empty body is {}). */
async function readJson(req: IncomingMessage, limit: number): Promise<unknown> {
  const text = (await readBody(req, limit)).toString('utf8')
  if (!text.trim()) return {}
  try {
    return JSON.parse(text)
  } catch {
    throw new SeedopsError('request body is not valid JSON', { code: 'BAD_REQUEST' })
  }
}

/** The request path without the query; anything a URL parser would rewrite (dot segments, escapes, absolute form) goes through one. */
function pathOf(raw: string): string {
  const q = raw.indexOf('?')
  const p = q < 0 ? raw : raw.slice(0, q)
  if (p.charCodeAt(0) !== 47 || p.startsWith('//') || p.includes('%') || p.includes('/.') || p.includes('\\')) return new URL(raw, 'http://localhost').pathname
  return p
}

const STATUS_OF: Record<string, number> = { BAD_REQUEST: 400, USAGE: 400, NOT_FOUND: 404, NO_ITEM_PARAMS: 409, PAYLOAD_TOO_LARGE: 413, STAGE_LOCKED: 409 }
const POST_ROUTES = new Set(['/irt/calibrate', '/irt/score', '/analysis/irt/update-theta'])

// Loaded on the first request that needs them, so a start (and a worker's start) stays light:
// calibration pulls in zod and the EM, update-theta the stage runner and its SQL.
let handlersModule: Promise<typeof import('./handlers.js')> | undefined
const handlers = () => (handlersModule ??= import('./handlers.js'))
let thetaModules: Promise<[typeof import('../irt-stage/update-theta.js'), typeof import('../stages/runner.js'), typeof import('../config/index.js'), typeof import('../output/index.js')]> | undefined
const thetaDeps = () => (thetaModules ??= Promise.all([import('../irt-stage/update-theta.js'), import('../stages/runner.js'), import('../config/index.js'), import('../output/index.js')]))

/**
 * `seedops irt serve`: the Plumber contract over node:http. Every route but /healthz requires
 * `Authorization: Bearer <token>` (compared in constant time; the predecessor never checked it).
 * Errors are JSON `{status: "error", error: {code, message}}` with a fitting HTTP status.
 */
export function createIrtServer(opts: ServeOptions): Server {
  const limit = opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES
  const expected = opts.token ? sha(opts.token) : null
  const metrics = opts.metrics ?? createServiceMetrics()
  let version: string | undefined
  const headersTimeout = opts.headersTimeoutMs ?? DEFAULT_HEADERS_TIMEOUT_MS
  const requestTimeout = Math.max(opts.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS, headersTimeout)
  // node:http answers 408 and closes a connection whose headers (or whole request) are late, but
  // only looks every connectionsCheckingInterval (default 30 s): check often enough that a slow
  // client is cut within ~1.25 × its timeout. Idle keep-alive connections close after keepAliveTimeout (5 s).
  const serverOptions = { headersTimeout, requestTimeout, connectionsCheckingInterval: Math.min(30_000, Math.max(100, Math.floor(headersTimeout / 4))) }
  return createServer(serverOptions, async (req, res) => {
    const started = Date.now()
    const path = pathOf(req.url ?? '/')
    const finished = metrics.startRequest(req.method, path)
    let status = 500
    try {
      if (path === '/healthz' || path === '/health') {
        let db: string = 'not configured'
        if (opts.db) {
          try {
            await opts.db.pool.query('SELECT 1')
            db = 'ok'
          } catch (e) {
            db = `unreachable: ${translateError(e).message}`
          }
        }
        status = db.startsWith('unreachable') ? 503 : 200
        return send(res, status, { status: status === 200 ? 'ok' : 'degraded', engine: 'native', version: (version ??= seedopsVersion()), database: db })
      }
      if (expected) {
        const h = req.headers.authorization ?? ''
        const m = /^Bearer\s+(.+)$/i.exec(h)
        if (!m) {
          status = 401
          return send(res, 401, { status: 'error', error: { code: 'UNAUTHENTICATED', message: 'missing bearer token' } }, { 'www-authenticate': 'Bearer' })
        }
        if (!tokenMatches(m[1]!.trim(), expected)) {
          // RFC 6750: a wrong token is 401 invalid_token (403 is for a valid token lacking scope).
          status = 401
          return send(res, 401, { status: 'error', error: { code: 'INVALID_TOKEN', message: 'invalid token' } }, { 'www-authenticate': 'Bearer error="invalid_token"' })
        }
      }
      if (req.method !== 'POST' || !POST_ROUTES.has(path)) {
        status = POST_ROUTES.has(path) ? 405 : 404
        return status === 405
          ? send(res, 405, { status: 'error', error: { code: 'METHOD_NOT_ALLOWED', message: `${req.method} is not allowed on ${path}; use POST` } })
          : send(res, 404, { status: 'error', error: { code: 'NOT_FOUND', message: `no route ${path}` } })
      }
      if (path === '/irt/score') {
        const batch = parseScoreBody(await readBody(req, limit))
        metrics.batch('/irt/score', batch.nPersons, batch.nItems)
        const text = scoreBatch(batch)
        status = 200
        return sendText(res, 200, text)
      }
      let out: unknown
      if (path === '/irt/calibrate') {
        const body = await readJson(req, limit)
        out = await (await handlers()).handleCalibrate(body, { batch: (p, i) => metrics.batch('/irt/calibrate', p, i), calibration: metrics.calibration })
      } else {
        try {
          // The request is judged (400, 413) before the service's own state (no database: 500).
          const { parseBody, UpdateThetaRequest } = await handlers()
          const body = parseBody(UpdateThetaRequest, await readJson(req, limit))
          if (!opts.db) throw new SeedopsError('update-theta needs a database: start the service with DATABASE_URL', { code: 'NO_DATABASE' })
          const [{ updateThetaStage }, { runStage }, { resolveDate }, { silentLogger }] = await thetaDeps()
          // The same stage runner as `seedops run update-theta`: a run-log row, the per-user lock (a
          // second call for the same learner waits its turn), one transaction.
          const report = await runStage(opts.db, updateThetaStage, { user: body.user_id, session: body.session_id, lookbackDays: body.lookback_days ?? 30 }, { asOf: resolveDate(undefined), dryRun: false, logger: silentLogger, handleSignals: false, pushMetrics: false })
          const r = report.summary!
          out = { user_id: r.user_id, session_id: r.session_id, theta: r.theta, se: r.se, model: r.model, version: r.version, updated_at: r.updated_at }
        } catch (e) {
          metrics.updateTheta('error')
          throw e
        }
        metrics.updateTheta('ok')
      }
      status = 200
      send(res, 200, out)
    } catch (e) {
      const err = translateError(e)
      status = STATUS_OF[err.code] ?? 500
      // A refused body may still be arriving: close the connection rather than read it.
      send(res, status, { status: 'error', error: { code: err.code, message: err.message, ...(err.data ? { details: err.data } : {}) } }, status === 413 ? { connection: 'close' } : undefined)
    } finally {
      finished(status)
      opts.logger.info(`${req.method} ${path} ${status} ${Date.now() - started} ms`)
    }
  })
}
