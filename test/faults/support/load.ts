import type { ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { Pool } from 'undici'
import { spawnCli } from '../../support/cli.js'

/**
 * Load against the built `seedops irt serve` on loopback: start it as an operator does, and drive
 * it with N keep-alive clients (an undici Pool of N connections, N request loops), bounded in
 * request count and time, keeping every latency.
 */

export interface Serve {
  child: ChildProcess
  api: string
  log: () => string
  stop(): Promise<void>
}

/** `seedops irt serve --host 127.0.0.1 --port 0 …` with `env`; resolves once it says where it listens. */
export async function startServe(args: string[], env: Record<string, string | undefined>): Promise<Serve> {
  const child = spawnCli(['irt', 'serve', '--host', '127.0.0.1', '--port', '0', '--metrics-port', '0', ...args], env)
  let log = ''
  child.stdout!.on('data', (d) => (log += d))
  child.stderr!.on('data', (d) => (log += d))
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return
    const exited = once(child, 'exit')
    child.kill('SIGTERM')
    const t = setTimeout(() => child.kill('SIGKILL'), 30_000)
    await exited
    clearTimeout(t)
  }
  const deadline = Date.now() + 30_000
  for (;;) {
    const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(log)
    if (m) return { child, api: m[1]!, log: () => log, stop }
    if (child.exitCode !== null || Date.now() > deadline) {
      await stop()
      throw new Error(`irt serve did not start:\n${log}`)
    }
    await new Promise((r) => setTimeout(r, 50))
  }
}

/** The bench's payload shapes (bench/serve.ts PAYLOADS): learners × items of POST /irt/score. */
export const SCORE_PAYLOADS = [
  { key: '1x30', persons: 1, items: 30 },
  { key: '100x30', persons: 100, items: 30 },
  { key: '1000x40', persons: 1000, items: 40 },
] as const

/** A deterministic 2PL bank and responses (10% not presented), as bench/serve.ts's payloadBody. */
export function scoreBody(persons: number, items: number, seed = 20261130): string {
  let s = seed + persons * 7 + items
  const r = () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 4294967296
  const item_params = Array.from({ length: items }, () => ({ a: Number((0.6 + r() * 1.6).toFixed(3)), b: Number((r() * 4 - 2).toFixed(3)), c: 0 }))
  const responses = Array.from({ length: persons }, () => Array.from({ length: items }, () => (r() < 0.1 ? null : r() < 0.55 ? 1 : 0)))
  return JSON.stringify({ item_params, responses })
}

export interface LoadResult {
  requests: number
  /** Answers other than 200 with the expected body (transport errors included). */
  errors: number
  /** First few error descriptions, for the assertion message. */
  errorSamples: string[]
  seconds: number
  p50: number
  p99: number
  max: number
  rps: number
}

export function percentile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return NaN
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!
}

/**
 * `clients` loops over one keep-alive Pool of `clients` connections, each sending POST `path` with
 * `body` until `maxRequests` were sent or `maxMs` passed. A request counts as good only when it is
 * 200 and `check(text)` holds (e.g. the bytes equal a reference answer: no answer got another's).
 */
export async function load(o: { url: string; path: string; body: string; token: string; clients: number; maxRequests: number; maxMs: number; check: (text: string) => boolean }): Promise<LoadResult> {
  const pool = new Pool(o.url, { connections: o.clients, pipelining: 1, keepAliveTimeout: 60_000, headersTimeout: 30_000, bodyTimeout: 30_000 })
  const headers = { 'content-type': 'application/json', authorization: `Bearer ${o.token}` }
  const lat: number[] = []
  const errorSamples: string[] = []
  let sent = 0
  let errors = 0
  const t0 = performance.now()
  const deadline = t0 + o.maxMs
  const loop = async () => {
    while (sent < o.maxRequests && performance.now() < deadline) {
      sent++
      const t = performance.now()
      try {
        const res = await pool.request({ path: o.path, method: 'POST', headers, body: o.body })
        const text = await res.body.text()
        if (res.statusCode !== 200 || !o.check(text)) {
          errors++
          if (errorSamples.length < 5) errorSamples.push(`HTTP ${res.statusCode}: ${text.slice(0, 200)}`)
        }
      } catch (e) {
        errors++
        if (errorSamples.length < 5) errorSamples.push(String(e))
      }
      lat.push(performance.now() - t)
    }
  }
  await Promise.all(Array.from({ length: o.clients }, loop))
  const seconds = (performance.now() - t0) / 1000
  await pool.close()
  const sorted = Float64Array.from(lat).sort()
  return { requests: lat.length, errors, errorSamples, seconds, p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99), max: sorted[sorted.length - 1] ?? NaN, rps: lat.length / seconds }
}

/** "p50 1.2 ms, p99 8.4 ms, 2100 req/s" */
export const describeLoad = (r: LoadResult) => `p50 ${r.p50.toFixed(1)} ms, p99 ${r.p99.toFixed(1)} ms, ${r.rps.toFixed(0)} req/s`
