import type { ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { existsSync, readFileSync } from 'node:fs'
import http from 'node:http'
import type { Server } from 'node:http'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createIrtServer } from '../../src/lib/irt-service/server.js'
import { score } from '../../src/lib/irt/score.js'
import { silentLogger } from '../../src/lib/output/index.js'
import { spawnCli } from '../support/cli.js'

/**
 * `seedops irt serve --workers 2` as an operator runs it: the real CLI (a cluster primary and two
 * worker processes) on loopback. Requests go out on new connections, which the primary deals to
 * the workers in turn; LOG_FORMAT=json access lines carry the worker's pid, so the tests can see
 * that both served.
 */
const TOKEN = 'irt-token-cluster-41ad0e'

/** A 3PL/2PL bank with missing responses, deterministic. */
function batch(persons: number, items: number, seed: number) {
  let s = seed
  const r = () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 4294967296
  const item_params = Array.from({ length: items }, (_, j) => ({ a: 0.5 + r() * 1.8, b: r() * 4 - 2, c: j % 3 === 0 ? 0.15 : 0 }))
  const responses = Array.from({ length: persons }, () => Array.from({ length: items }, () => (r() < 0.15 ? null : r() < 0.55 ? 1 : 0)))
  return { item_params, responses }
}

/** POST on a new connection (agent: false), so successive requests reach successive workers. */
function post(url: string, path: string, body: unknown, token: string | null = TOKEN): Promise<{ status: number; json: any }> {
  return new Promise((resolve, reject) => {
    const u = new URL(path, url)
    const req = http.request(
      { host: u.hostname, port: u.port, path: u.pathname, method: 'POST', agent: false, headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) } },
      (res) => {
        let text = ''
        res.setEncoding('utf8')
        res.on('data', (c) => (text += c))
        res.on('end', () => resolve({ status: res.statusCode!, json: JSON.parse(text) }))
      },
    )
    req.on('error', reject)
    req.end(typeof body === 'string' ? body : JSON.stringify(body))
  })
}

interface Serve {
  child: ChildProcess
  api: string
  metrics: string
  log: () => string
  lines: () => Record<string, unknown>[]
}

async function startServe(workers: number): Promise<Serve> {
  const child = spawnCli(['irt', 'serve', '--host', '127.0.0.1', '--port', '0', '--metrics-port', '0', '--workers', String(workers), '--no-with-db'], { R_IRT_INTERNAL_TOKEN: TOKEN, LOG_FORMAT: 'json' })
  let log = ''
  child.stdout!.on('data', (d) => (log += d))
  child.stderr!.on('data', (d) => (log += d))
  const lines = () =>
    log
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
  const deadline = Date.now() + 30_000
  for (;;) {
    const m = /listening on (http:\/\/127\.0\.0\.1:\d+).*metrics on (http:\/\/127\.0\.0\.1:\d+\/metrics)/.exec(log)
    if (m) return { child, api: m[1]!, metrics: m[2]!, log: () => log, lines }
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`irt serve did not start:\n${log}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

/** The worker processes of a primary (Linux: /proc/<pid>/task/<pid>/children). */
function children(pid: number): number[] {
  const f = `/proc/${pid}/task/${pid}/children`
  return existsSync(f) ? readFileSync(f, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number) : []
}

async function until<T>(what: string, fn: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await fn()
    if (v) return v
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

const metricValue = (text: string, series: string) => {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `))
  return line === undefined ? undefined : Number(line.slice(series.length + 1))
}

describe('irt serve --workers 2 (node:cluster)', () => {
  let serve: Serve
  let single: { server: Server; url: string }
  beforeAll(async () => {
    serve = await startServe(2)
    const server = createIrtServer({ token: TOKEN, logger: silentLogger })
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    single = { server, url: `http://127.0.0.1:${(server.address() as { port: number }).port}` }
  })
  afterAll(async () => {
    single?.server.close()
    if (serve && serve.child.exitCode === null) {
      serve.child.kill('SIGTERM')
      await once(serve.child, 'exit')
    }
  })

  it('both workers answer, with the same scores as one process and as the library', async () => {
    const body = batch(120, 25, 7)
    const one = await post(single.url, '/irt/score', body)
    expect(one.status).toBe(200)
    const lib = score(body.item_params, body.responses)
    one.json.abilities.forEach((a: { theta: number; se: number }, i: number) => {
      expect(Math.abs(a.theta - lib.theta[i]!)).toBeLessThan(1e-12)
      expect(Math.abs(a.se - lib.se[i]!)).toBeLessThan(1e-12)
    })
    for (let k = 0; k < 6; k++) {
      const res = await post(serve.api, '/irt/score', body)
      expect(res.status).toBe(200)
      expect(res.json).toEqual(one.json)
    }
    for (const method of ['map', 'ml']) {
      const a = await post(serve.api, '/irt/score', { ...body, method })
      const b = await post(single.url, '/irt/score', { ...body, method })
      expect(a.json).toEqual(b.json)
    }
    const pids = new Set(serve.lines().filter((l) => String(l.message).startsWith('POST /irt/score 200')).map((l) => l.worker))
    expect(pids.size).toBe(2)
    expect([...pids].sort()).toEqual(children(serve.child.pid!).sort())
  })

  it('/metrics is the sum over the workers', async () => {
    const before = metricValue(await (await fetch(serve.metrics)).text(), 'seedops_irt_batch_persons_sum{route="/irt/score"}') ?? 0
    const logged = () => serve.lines().filter((l) => String(l.message).startsWith('POST /irt/score 200')).length
    const served0 = logged()
    for (let k = 0; k < 10; k++) expect((await post(serve.api, '/irt/score', batch(3, 4, 100 + k))).status).toBe(200)
    await until('the access lines', () => logged() === served0 + 10)
    const workersOfThese = new Set(serve.lines().filter((l) => String(l.message).startsWith('POST /irt/score 200')).slice(served0).map((l) => l.worker))
    expect(workersOfThese.size).toBe(2) // both counted some: one worker's registry alone would fall short
    const text = await (await fetch(serve.metrics)).text()
    expect(metricValue(text, 'seedops_irt_batch_persons_sum{route="/irt/score"}')).toBe(before + 30)
    const total = metricValue(text, 'seedops_irt_http_requests_total{method="POST",route="/irt/score",status="200"}')
    expect(total).toBe(logged())
    expect(metricValue(text, 'seedops_irt_http_requests_in_flight')).toBe(0)
    expect(text).toMatch(/^process_resident_memory_bytes \d+/m)
    expect(text).not.toContain(TOKEN)
  })

  it('a killed worker is replaced, logged, and the service keeps answering', async () => {
    const [victim, other] = children(serve.child.pid!)
    expect(other).toBeDefined()
    process.kill(victim!, 'SIGKILL')
    const line = await until('the replacement log line', () => serve.lines().find((l) => l.level === 'warn' && String(l.message).includes(`worker ${victim} died (SIGKILL)`)))
    const replacement = Number(/started worker (\d+)/.exec(String(line.message))![1])
    await until('two workers again', () => {
      const now = children(serve.child.pid!)
      return now.length === 2 && now.includes(replacement) && !now.includes(victim!)
    })
    // The replacement serves: new connections alternate, so a few requests reach it.
    await until('an answer from the replacement', async () => {
      expect((await post(serve.api, '/irt/score', batch(2, 3, 9))).status).toBe(200)
      return serve.lines().some((l) => l.worker === replacement && String(l.message).startsWith('POST /irt/score 200'))
    })
  })
})

describe('irt serve --workers 2: SIGTERM', () => {
  it('lets an in-flight request finish, then every process exits 0', async () => {
    const serve = await startServe(2)
    const workers = children(serve.child.pid!)
    expect(workers).toHaveLength(2)
    // A request held in flight: headers and half the body now, the rest after the signal.
    const body = JSON.stringify(batch(50, 10, 5))
    const u = new URL(serve.api)
    const req = http.request({ host: u.hostname, port: u.port, path: '/irt/score', method: 'POST', agent: false, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), authorization: `Bearer ${TOKEN}` } })
    const response = new Promise<{ status: number; json: any }>((resolve, reject) => {
      req.on('response', (res) => {
        let text = ''
        res.on('data', (c) => (text += c))
        res.on('end', () => resolve({ status: res.statusCode!, json: JSON.parse(text) }))
      })
      req.on('error', reject)
    })
    req.write(body.slice(0, body.length >> 1))
    await until('the request in flight', async () => metricValue(await (await fetch(serve.metrics)).text(), 'seedops_irt_http_requests_in_flight') === 1)
    serve.child.kill('SIGTERM')
    await new Promise((r) => setTimeout(r, 300))
    expect(serve.child.exitCode).toBeNull() // still draining
    req.end(body.slice(body.length >> 1))
    const res = await response
    expect(res.status).toBe(200)
    expect(res.json.abilities).toHaveLength(50)
    const [code] = (await once(serve.child, 'exit')) as [number | null]
    expect(code).toBe(0)
    for (const pid of workers) expect(existsSync(`/proc/${pid}`)).toBe(false)
    await expect(fetch(`${serve.api}/healthz`)).rejects.toThrow()
  })
})
