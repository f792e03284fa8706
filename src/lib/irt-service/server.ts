import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { timingSafeEqual, createHash } from 'node:crypto'
import type { Db } from '../db/index.js'
import { SeedopsError, translateError } from '../errors/index.js'
import type { Logger } from '../output/index.js'
import { seedopsVersion } from '../paths.js'
import { updateThetaStage } from '../irt-stage/update-theta.js'
import { resolveDate } from '../config/index.js'
import { silentLogger } from '../output/index.js'
import { runStage } from '../stages/runner.js'
import { createServiceMetrics, type ServiceMetrics } from '../metrics/service.js'
import { handleCalibrate, handleScore, parseBody, UpdateThetaRequest } from './handlers.js'

export interface ServeOptions {
  /** Bearer token the callers must send; null only with an explicit --no-auth. */
  token: string | null
  db?: Db
  logger: Logger
  maxBodyBytes?: number
  /** Where the request metrics go (served by createMetricsServer); default: a registry of this server's own. */
  metrics?: ServiceMetrics
}

const sha = (s: string) => createHash('sha256').update(s).digest()

function send(res: ServerResponse, status: number, body: unknown) {
  const text = JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
  res.end(text)
}

function readJson(req: IncomingMessage, limit: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    let size = 0
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => {
      size += c.length
      if (size > limit) {
        reject(new SeedopsError(`request body larger than ${limit} bytes`, { code: 'PAYLOAD_TOO_LARGE' }))
        req.destroy()
      } else chunks.push(c)
    })
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8')
      if (!text.trim()) return resolve({})
      try {
        resolve(JSON.parse(text))
      } catch {
        reject(new SeedopsError('request body is not valid JSON', { code: 'BAD_REQUEST' }))
      }
    })
    req.on('error', reject)
  })
}

const STATUS_OF: Record<string, number> = { BAD_REQUEST: 400, USAGE: 400, NOT_FOUND: 404, NO_ITEM_PARAMS: 409, PAYLOAD_TOO_LARGE: 413, STAGE_LOCKED: 409 }

/**
 * `seedops irt serve`: the Plumber contract over node:http. Every route but /healthz requires
 * `Authorization: Bearer <token>` (compared in constant time; the predecessor never checked it).
 * Errors are JSON `{status: "error", error: {code, message}}` with a fitting HTTP status.
 */
export function createIrtServer(opts: ServeOptions): Server {
  const limit = opts.maxBodyBytes ?? 64 * 1024 * 1024
  const expected = opts.token ? sha(opts.token) : null
  const metrics = opts.metrics ?? createServiceMetrics()
  return createServer(async (req, res) => {
    const started = Date.now()
    const url = new URL(req.url ?? '/', 'http://localhost')
    const finished = metrics.startRequest(req.method, url.pathname)
    let status = 500
    try {
      if (url.pathname === '/healthz' || url.pathname === '/health') {
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
        return send(res, status, { status: status === 200 ? 'ok' : 'degraded', engine: 'native', version: seedopsVersion(), database: db })
      }
      if (expected) {
        const h = req.headers.authorization ?? ''
        const m = /^Bearer\s+(.+)$/i.exec(h)
        if (!m) {
          status = 401
          res.setHeader('www-authenticate', 'Bearer')
          return send(res, 401, { status: 'error', error: { code: 'UNAUTHENTICATED', message: 'missing bearer token' } })
        }
        if (!timingSafeEqual(sha(m[1]!.trim()), expected)) {
          status = 403
          return send(res, 403, { status: 'error', error: { code: 'FORBIDDEN', message: 'invalid token' } })
        }
      }
      const route = `${req.method} ${url.pathname}`
      let out: unknown
      if (route === 'POST /irt/calibrate') {
        out = await handleCalibrate(await readJson(req, limit), { batch: (p, i) => metrics.batch('/irt/calibrate', p, i), calibration: metrics.calibration })
      } else if (route === 'POST /irt/score') out = handleScore(await readJson(req, limit), { batch: (p, i) => metrics.batch('/irt/score', p, i) })
      else if (route === 'POST /analysis/irt/update-theta') {
        try {
          if (!opts.db) throw new SeedopsError('update-theta needs a database: start the service with DATABASE_URL', { code: 'NO_DATABASE' })
          const body = parseBody(UpdateThetaRequest, await readJson(req, limit))
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
      } else if (['/irt/calibrate', '/irt/score', '/analysis/irt/update-theta'].includes(url.pathname)) {
        status = 405
        return send(res, 405, { status: 'error', error: { code: 'METHOD_NOT_ALLOWED', message: `${req.method} is not allowed on ${url.pathname}; use POST` } })
      } else {
        status = 404
        return send(res, 404, { status: 'error', error: { code: 'NOT_FOUND', message: `no route ${url.pathname}` } })
      }
      status = 200
      send(res, 200, out)
    } catch (e) {
      const err = translateError(e)
      status = STATUS_OF[err.code] ?? 500
      send(res, status, { status: 'error', error: { code: err.code, message: err.message, ...(err.data ? { details: err.data } : {}) } })
    } finally {
      finished(status)
      opts.logger.info(`${req.method} ${url.pathname} ${status} ${Date.now() - started} ms`)
    }
  })
}
