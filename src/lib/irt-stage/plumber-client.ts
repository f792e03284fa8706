import { request } from 'undici'
import { registerSecret, SeedopsError } from '../errors/index.js'
import type { Logger } from '../output/index.js'

export interface PlumberOptions {
  baseUrl: string
  token: string | null
  timeoutMs: number
  retries: number
  logger?: Logger
}

export interface PlumberCalibrateResponse {
  status: string
  item_params: { item_id: string | number; params: { a: number; b: number; c?: number } }[]
  abilities: { user_id: string | number; theta: number; se: number }[]
  fit_meta?: { run_id?: string; model_spec?: Record<string, unknown>; linking_constants?: unknown; [k: string]: unknown }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/**
 * POSTs to the R IRT (Plumber) service with the bearer token, a per-attempt timeout, and retries
 * with exponential backoff on network errors and 5xx (never on 4xx: a bad request or a wrong
 * token does not improve by repetition).
 */
export async function plumberPost<T>(path: string, body: unknown, o: PlumberOptions): Promise<T> {
  registerSecret(o.token)
  const url = new URL(path, o.baseUrl.endsWith('/') ? o.baseUrl : `${o.baseUrl}/`).toString()
  let lastErr: unknown
  for (let attempt = 0; attempt <= o.retries; attempt++) {
    if (attempt > 0) {
      const wait = Math.min(250 * 2 ** (attempt - 1), 8000) * (0.75 + Math.random() * 0.5)
      o.logger?.warn(`R IRT service: attempt ${attempt} failed (${(lastErr as Error)?.message ?? lastErr}); retrying in ${Math.round(wait)} ms`)
      await sleep(wait)
    }
    try {
      const res = await request(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(o.token ? { authorization: `Bearer ${o.token}` } : {}) },
        body: JSON.stringify(body),
        headersTimeout: o.timeoutMs,
        bodyTimeout: o.timeoutMs,
        signal: AbortSignal.timeout(o.timeoutMs),
      })
      const text = await res.body.text()
      if (res.statusCode === 401 || res.statusCode === 403) {
        throw new SeedopsError(`the R IRT service at ${o.baseUrl} rejected the token (HTTP ${res.statusCode})`, {
          code: 'IRT_SERVICE_AUTH',
          suggestions: ['Check R_IRT_INTERNAL_TOKEN against the service (secret r-irt-credentials, key token)', 'seedops secrets ensure --only irt'],
        })
      }
      if (res.statusCode >= 400 && res.statusCode < 500) {
        throw new SeedopsError(`the R IRT service refused the request (HTTP ${res.statusCode}): ${text.slice(0, 500)}`, { code: 'IRT_SERVICE_REJECTED' })
      }
      if (res.statusCode >= 500) {
        lastErr = new Error(`HTTP ${res.statusCode}: ${text.slice(0, 200)}`)
        continue
      }
      try {
        return JSON.parse(text) as T
      } catch {
        throw new SeedopsError(`the R IRT service answered with something that is not JSON: ${text.slice(0, 200)}`, { code: 'IRT_SERVICE_BAD_RESPONSE' })
      }
    } catch (e) {
      if (e instanceof SeedopsError) throw e
      lastErr = e
    }
  }
  throw new SeedopsError(`the R IRT service at ${o.baseUrl} did not answer after ${o.retries + 1} attempt(s): ${(lastErr as Error)?.message ?? lastErr}`, {
    code: 'IRT_SERVICE_UNREACHABLE',
    suggestions: ['Check R_IRT_BASE_URL and that the service is up: seedops doctor', 'Or calibrate natively: --engine native (the default)'],
  })
}
