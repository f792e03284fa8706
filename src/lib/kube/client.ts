import http, { type IncomingHttpHeaders, type IncomingMessage } from 'node:http'
import https from 'node:https'
import { AppsV1Api, BatchV1Api, CoreV1Api, createConfiguration, KubeConfig, NetworkingV1Api, ServerConfiguration, type RequestContext, type ResponseContext } from '@kubernetes/client-node'
import { usageError } from '../errors/index.js'

/**
 * Retries of Kubernetes API calls. An apiserver sheds load with 429 (API Priority and Fairness,
 * with Retry-After), answers 503 while restarting or behind a busy load balancer, 500
 * InternalError when etcd times out, and may not answer at all: every call seedops makes is tried
 * again after such an answer, up to `maxAttempts` times, waiting Retry-After when the server
 * names a wait and a doubling backoff otherwise, and never starting a retry after `budgetMs`.
 * What is not retried: other 4xx (the answer will not change), a 500 that is not InternalError
 * (a typed-patch error is deterministic), a refused connection or a TLS/DNS failure (a wrong
 * kubeconfig fails at once), and, after an answer that may mean it was carried out (500, 504, no
 * answer), a request that would change more when done twice (`repeatChanges`).
 */
export interface RetryPolicy {
  maxAttempts: number
  budgetMs: number
  /** First backoff wait; doubled per retry, capped at maxDelayMs, each with up to half its length of jitter. */
  baseMs: number
  maxDelayMs: number
}

export const RETRY_DEFAULTS: RetryPolicy = { maxAttempts: 5, budgetMs: 30_000, baseMs: 100, maxDelayMs: 10_000 }

function intKnob(env: NodeJS.ProcessEnv, name: string, def: number, min: number, max: number): number {
  const raw = env[name]
  if (raw === undefined || raw === '') return def
  const n = Number(raw)
  if (!Number.isInteger(n) || n < min || n > max) throw usageError(`${name}=${JSON.stringify(raw)} is not a whole number from ${min} to ${max}`, [`Unset it for the default (${def}), or set e.g. ${name}=${def}`])
  return n
}

/** SEEDOPS_KUBE_MAX_ATTEMPTS (1 = no retries) and SEEDOPS_KUBE_RETRY_BUDGET_MS; bad values are usage errors naming the variable. */
export function retryPolicyFromEnv(env: NodeJS.ProcessEnv = process.env): RetryPolicy {
  return {
    ...RETRY_DEFAULTS,
    maxAttempts: intKnob(env, 'SEEDOPS_KUBE_MAX_ATTEMPTS', RETRY_DEFAULTS.maxAttempts, 1, 20),
    budgetMs: intKnob(env, 'SEEDOPS_KUBE_RETRY_BUDGET_MS', RETRY_DEFAULTS.budgetMs, 0, 3_600_000),
  }
}

/** `Retry-After` as seconds or an HTTP date, in milliseconds from `now`. */
export function retryAfterMs(value: string | string[] | undefined, now = Date.now()): number | undefined {
  const v = Array.isArray(value) ? value[0] : value
  if (!v) return undefined
  if (/^\d+$/.test(v.trim())) return Number(v.trim()) * 1000
  const t = Date.parse(v)
  return Number.isNaN(t) ? undefined : Math.max(0, t - now)
}

const RESET = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED', 'UND_ERR_SOCKET', 'ERR_STREAM_PREMATURE_CLOSE'])

/** Why a failed attempt may be tried again: 'status' (the server answered), 'lost' (no answer: timeout or reset), or undefined. */
function transient(e: unknown): { kind: 'status' | 'lost'; code?: number; retryAfter?: number; ambiguous: boolean } | undefined {
  const x = e as { code?: unknown; body?: unknown; headers?: Record<string, string> } | undefined
  if (x && typeof x.code === 'number' && 'body' in x) {
    const code = x.code
    let reason: string | undefined
    try {
      const b = typeof x.body === 'string' ? JSON.parse(x.body) : x.body
      reason = (b as { reason?: string } | undefined)?.reason
    } catch {
      reason = undefined
    }
    const retryAfter = retryAfterMs(x.headers?.['retry-after'] ?? x.headers?.['Retry-After'])
    if (code === 429) return { kind: 'status', code, retryAfter, ambiguous: false }
    // 503: the request was not served (restart, overloaded aggregator). 500/504: it may have been carried out.
    if (code === 503) return { kind: 'status', code, retryAfter, ambiguous: false }
    if (code === 504 || (code === 500 && (reason === 'InternalError' || retryAfter !== undefined))) return { kind: 'status', code, retryAfter, ambiguous: true }
    return undefined
  }
  let cur: any = e
  for (let i = 0; cur && i < 5; i++) {
    if (cur.name === 'TimeoutError' || cur.name === 'AbortError' || cur.type === 'aborted') return { kind: 'lost', ambiguous: true }
    if (typeof cur.code === 'string' && RESET.has(cur.code)) return { kind: 'lost', ambiguous: true }
    if (typeof cur.message === 'string' && /socket hang up|premature close/i.test(cur.message)) return { kind: 'lost', ambiguous: true }
    cur = cur.cause
  }
  return undefined
}

/** How a call went: attached to the error seedops reports once it gives up, so the message can say so. */
export interface RetryTrace {
  attempts: number
  elapsedMs: number
  /** Set when a retry was not started because the server's Retry-After or the backoff would pass the budget. */
  budgetExhausted?: boolean
}

export const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(done, ms)
    function done() {
      clearTimeout(t)
      signal?.removeEventListener('abort', done)
      resolve()
    }
    signal?.addEventListener('abort', done, { once: true })
  })

/**
 * Runs `attempt` until it succeeds, fails for good, or the policy is spent. `mayDuplicate`: the
 * request would change more when done twice (`repeatChanges`), so it is not retried after an
 * answer that may mean it was done.
 */
export async function withRetries<T>(policy: RetryPolicy, attempt: () => Promise<T>, opts: { mayDuplicate?: boolean; signal?: AbortSignal; onRetry?: (waitMs: number, why: string) => void } = {}): Promise<T> {
  const start = Date.now()
  for (let n = 1; ; n++) {
    try {
      return await attempt()
    } catch (e) {
      const t = opts.signal?.aborted ? undefined : transient(e)
      const give = (budgetExhausted?: boolean) => {
        if (t && e && typeof e === 'object') Object.assign(e, { retryTrace: { attempts: n, elapsedMs: Date.now() - start, budgetExhausted } satisfies RetryTrace })
        return e
      }
      if (!t || (t.ambiguous && opts.mayDuplicate) || n >= policy.maxAttempts) throw give()
      const backoff = Math.min(policy.maxDelayMs, policy.baseMs * 2 ** (n - 1))
      const wait = t.retryAfter ?? Math.round(backoff / 2 + (Math.random() * backoff) / 2)
      if (Date.now() - start + wait > policy.budgetMs) throw give(true)
      opts.onRetry?.(wait, t.kind === 'status' ? `HTTP ${t.code}` : 'no answer')
      await sleep(wait, opts.signal)
      if (opts.signal?.aborted) throw give()
    }
  }
}

/** HTTP method of a typed client's method, from its name (`createNamespacedJob` → POST). */
function methodOf(name: string): string {
  if (name.startsWith('create')) return 'POST'
  if (name.startsWith('delete')) return 'DELETE'
  if (name.startsWith('patch')) return 'PATCH'
  if (name.startsWith('replace')) return 'PUT'
  return 'GET'
}

/**
 * Whether carrying a request out twice differs from once: a create whose name the server generates
 * (a second object), and a JSON patch that adds, removes, moves or copies without a `test` guard
 * (a second `remove` fails, a second `add` to a list appends again). Merge patches, replaces,
 * named creates (409) and deletes (404) are not.
 */
export function repeatChanges(method: string, body: unknown): boolean {
  if (method === 'POST') {
    const m = (body as { metadata?: { name?: string; generateName?: string } } | undefined)?.metadata
    return Boolean(m?.generateName) && !m?.name
  }
  if (method === 'PATCH' && Array.isArray(body)) {
    const ops = body.map((o) => (o as { op?: string })?.op)
    return !ops.includes('test') && ops.some((o) => o === 'add' || o === 'remove' || o === 'move' || o === 'copy')
  }
  return false
}

/** A typed API whose every call goes through `withRetries` (each retry builds a new request, with a fresh timeout). */
function retrying<T extends object>(api: T, policy: RetryPolicy): T {
  return new Proxy(api, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver)
      if (typeof v !== 'function' || typeof prop !== 'string') return v
      return (...args: unknown[]) => {
        const body = (args[0] as { body?: unknown } | undefined)?.body
        return withRetries(policy, () => v.apply(target, args), { mayDuplicate: repeatChanges(methodOf(prop), body) })
      }
    },
  })
}

export interface KubeClients {
  kc: KubeConfig
  core: CoreV1Api
  batch: BatchV1Api
  apps: AppsV1Api
  networking: NetworkingV1Api
  namespace: string
  /** Where the cluster is, for messages ("https://…" and the context name). */
  server: string
  context: string
  timeoutMs?: number
  retry: RetryPolicy
}

function timeoutMiddleware(timeoutMs: number | undefined) {
  return {
    pre: async (ctx: RequestContext) => {
      if (timeoutMs && timeoutMs > 0) ctx.setSignal(AbortSignal.timeout(timeoutMs))
      return ctx
    },
    post: async (ctx: ResponseContext) => ctx,
  }
}

export function makeClients(kc: KubeConfig, namespace: string, opts: { timeoutMs?: number; retry?: RetryPolicy } = {}): KubeClients {
  const cluster = kc.getCurrentCluster()
  if (!cluster) throw new Error('no current cluster in the kubeconfig')
  const config = createConfiguration({
    baseServer: new ServerConfiguration(cluster.server, {}),
    authMethods: { default: kc },
    promiseMiddleware: [timeoutMiddleware(opts.timeoutMs)],
  })
  const retry = opts.retry ?? RETRY_DEFAULTS
  return {
    kc,
    core: retrying(new CoreV1Api(config), retry),
    batch: retrying(new BatchV1Api(config), retry),
    apps: retrying(new AppsV1Api(config), retry),
    networking: retrying(new NetworkingV1Api(config), retry),
    namespace,
    server: cluster.server,
    context: kc.getCurrentContext(),
    timeoutMs: opts.timeoutMs,
    retry,
  }
}

export interface RawResponse {
  status: number
  headers: IncomingHttpHeaders
  /** The body as a stream (for followed logs); `text()` reads it whole. */
  stream: IncomingMessage
  text(): Promise<string>
}

export interface RequestInit {
  method?: string
  headers?: Record<string, string>
  body?: string
  /** Ends the request (and, for a stream, the reading) when aborted; no retry follows. */
  signal?: AbortSignal
  /** A long-lived body (followed logs): the request timeout covers the wait for the answer's headers only. */
  streaming?: boolean
}

/**
 * A raw request with the kubeconfig's credentials (token, client certificate, CA), for what the
 * typed clients lack: streamed logs with errors we can see, and server-side apply. Retried as the
 * typed calls are; an answer that is not retried is handed back whatever its status.
 */
export async function kubeRequest(k: KubeClients, path: string, init: RequestInit = {}): Promise<RawResponse> {
  let body: unknown
  try {
    body = init.body ? JSON.parse(init.body) : undefined
  } catch {
    body = undefined // YAML (server-side apply): an apply is idempotent
  }
  const mayDuplicate = repeatChanges(init.method ?? 'GET', body)
  return withRetries(
    k.retry ?? RETRY_DEFAULTS,
    async () => {
      const res = await requestOnce(k, path, init)
      if (res.status === 429 || res.status >= 500) {
        // Read the Status to judge it; an answer that will not be retried keeps its body for the caller.
        const body = await res.text()
        const retryAfter = res.headers['retry-after']
        throw Object.assign(new Error(`HTTP ${res.status}`), { code: res.status, body, headers: retryAfter ? { 'retry-after': String(retryAfter) } : {}, response: { ...res, text: () => Promise.resolve(body) } })
      }
      return res
    },
    { mayDuplicate, signal: init.signal },
  ).catch((e) => {
    // Out of retries (or not retryable): the caller reads the answer as it would have without retries.
    if (e && typeof e === 'object' && 'response' in e) return (e as { response: RawResponse }).response
    throw e
  })
}

async function requestOnce(k: KubeClients, path: string, init: RequestInit): Promise<RawResponse> {
  const opts: https.RequestOptions = { headers: {} }
  await k.kc.applyToHTTPSOptions(opts)
  const url = new URL(k.server + path)
  const mod = url.protocol === 'http:' ? http : https
  const timeout = k.timeoutMs && k.timeoutMs > 0 ? AbortSignal.timeout(k.timeoutMs) : undefined
  // Each attempt has its own timeout; a streaming request drops it once the headers are in.
  const stopTimeout = new AbortController()
  const onTimeout = () => stopTimeout.abort(timeout?.reason)
  timeout?.addEventListener('abort', onTimeout, { once: true })
  const signals = [init.signal, timeout ? stopTimeout.signal : undefined].filter((s): s is AbortSignal => s !== undefined)
  const signal = signals.length > 1 ? AbortSignal.any(signals) : signals[0]
  return new Promise((resolve, reject) => {
    const req = mod.request(url, { ...opts, method: init.method ?? 'GET', headers: { Accept: 'application/json', ...(opts.headers as Record<string, string>), ...init.headers }, signal }, (res) => {
      if (init.streaming) timeout?.removeEventListener('abort', onTimeout)
      // A connection reset mid-body is seen by the reader as an incomplete body ('close' without
      // 'complete'); it must not also surface as an unhandled error.
      res.on('error', () => {})
      resolve({
        status: res.statusCode ?? 0,
        headers: res.headers,
        stream: res,
        text: () =>
          new Promise((ok, bad) => {
            let b = ''
            res.setEncoding('utf8')
            res.on('data', (d) => (b += d))
            res.on('end', () => ok(b))
            res.on('error', bad)
            res.on('close', () => (res.complete ? ok(b) : bad(Object.assign(new Error('the connection closed before the answer was complete'), { code: 'ECONNRESET' }))))
          }),
      })
    })
    req.on('error', reject)
    req.end(init.body)
  })
}
