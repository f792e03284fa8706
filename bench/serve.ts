/**
 * bench:serve — `seedops irt serve` under load on loopback, against a bare node:http server in
 * the same run: req/s, p50 and p99 for POST /irt/score with 1 × 30, 100 × 30 and 1000 × 40
 * (learners × items), one request per new connection and over keep-alive connections, and the
 * cold start (spawn → first 200 from /healthz).
 *
 * The reference is the ceiling: a node:cluster of as many bare node:http workers as ours, that
 * reads the body and answers a canned copy of our response to the same payload (same bytes), so
 * the ratio (ours / reference) is what parsing, validation, auth, metrics, the access log and
 * scoring cost. For the cold start the reference is a bare node:http server's spawn → first 200.
 *
 * The load client is a separate process (raw sockets, no HTTP library: it should cost less than
 * the servers) on the same 2 cores: it competes with the servers for CPU, so absolute figures are
 * below what a client on another machine would see; both sides pay the same, the ratio holds.
 * Every load phase is bounded in time and requests. Ours logs to a file, as in a container.
 *
 *   npm run bench:serve -- [--quick] [--seconds 5] [--connections 32] [--workers N]
 */
import { spawn, type ChildProcess } from 'node:child_process'
import cluster from 'node:cluster'
import { once } from 'node:events'
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import { availableParallelism, tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { arg, median } from './common.js'
import type { BenchOptions, BenchRow } from './types.js'

const THIS = fileURLToPath(import.meta.url)
const ROOT = resolve(dirname(THIS), '..', '..')
const TOKEN = 'bench-serve-token-not-a-secret'

export interface Payload {
  key: string
  persons: number
  items: number
  /** Targets from issue 10, for the new-connection and keep-alive rows (req/s). */
  target?: { newConn?: number; keepAlive?: number }
}
export const PAYLOADS: Payload[] = [
  { key: '1x30', persons: 1, items: 30, target: { newConn: 6000, keepAlive: 15000 } },
  { key: '100x30', persons: 100, items: 30 },
  { key: '1000x40', persons: 1000, items: 40, target: { newConn: 320 } },
]

/** Deterministic 2PL bank and responses (10% not presented). */
export function payloadBody(p: Payload): string {
  let s = 20261130 + p.persons * 7 + p.items
  const r = () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 4294967296
  const item_params = Array.from({ length: p.items }, () => ({ a: Number((0.6 + r() * 1.6).toFixed(3)), b: Number((r() * 4 - 2).toFixed(3)), c: 0 }))
  const responses = Array.from({ length: p.persons }, () => Array.from({ length: p.items }, () => (r() < 0.1 ? null : r() < 0.55 ? 1 : 0)))
  return JSON.stringify({ item_params, responses })
}

function rawRequest(path: string, body: string, keepAlive: boolean): Buffer {
  const head = `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: ${keepAlive ? 'keep-alive' : 'close'}\r\n\r\n`
  return Buffer.concat([Buffer.from(head), Buffer.from(body)])
}

// ---------------------------------------------------------------------------------------------
// The load client (its own process): N loops, each sends a request and waits for the whole
// response; 'new' opens a connection per request, 'keepalive' reuses one per loop.
// ---------------------------------------------------------------------------------------------
interface ClientJob {
  port: number
  requestFile: string
  mode: 'new' | 'keepalive'
  connections: number
  seconds: number
  maxRequests: number
}
interface ClientResult {
  requests: number
  seconds: number
  p50: number
  p99: number
  errors: number
  non200: number
}

async function clientMain(job: ClientJob): Promise<ClientResult> {
  const request = readFileSync(job.requestFile)
  const lat = new Float64Array(job.maxRequests)
  let n = 0
  let errors = 0
  let non200 = 0
  const deadline = performance.now() + job.seconds * 1000
  const more = () => n < job.maxRequests && performance.now() < deadline

  /** Reads one response from `sock`; resolves with its status (0 on error). */
  function exchange(sock: net.Socket): Promise<number> {
    return new Promise((resolveStatus) => {
      let buf: Buffer | null = null
      let need = -1
      let status = 0
      const timer = setTimeout(() => finish(0), 10_000)
      const onData = (chunk: Buffer) => {
        buf = buf ? Buffer.concat([buf, chunk]) : chunk
        if (need < 0) {
          const end = buf.indexOf('\r\n\r\n')
          if (end < 0) return
          const head = buf.subarray(0, end).toString('latin1')
          status = Number(head.slice(9, 12))
          const m = /\r\ncontent-length:\s*(\d+)/i.exec(head)
          need = end + 4 + (m ? Number(m[1]) : 0)
        }
        if (buf.length >= need) finish(status)
      }
      const onError = () => finish(0)
      const finish = (s: number) => {
        clearTimeout(timer)
        sock.off('data', onData)
        sock.off('error', onError)
        sock.off('close', onError)
        resolveStatus(s)
      }
      sock.on('data', onData)
      sock.on('error', onError)
      sock.on('close', onError)
      sock.write(request)
    })
  }
  const connect = () =>
    new Promise<net.Socket | null>((ok) => {
      const sock = net.connect({ port: job.port, host: '127.0.0.1', noDelay: true })
      sock.once('connect', () => ok(sock))
      sock.once('error', () => ok(null))
    })
  const record = (t0: number, status: number) => {
    if (status === 0) errors++
    else {
      if (status !== 200) non200++
      lat[n++] = performance.now() - t0
    }
  }
  const t0 = performance.now()
  await Promise.all(
    Array.from({ length: job.connections }, async () => {
      if (job.mode === 'new') {
        while (more()) {
          const t = performance.now()
          const sock = await connect()
          if (!sock) {
            errors++
            continue
          }
          record(t, await exchange(sock))
          sock.destroy()
        }
      } else {
        let sock: net.Socket | null = null
        while (more()) {
          sock ??= await connect()
          if (!sock) {
            errors++
            continue
          }
          const t = performance.now()
          const s = await exchange(sock)
          record(t, s)
          if (s === 0) {
            sock.destroy()
            sock = null
          }
        }
        sock?.destroy()
      }
    }),
  )
  const seconds = (performance.now() - t0) / 1000
  const sorted = lat.subarray(0, n).sort()
  const pct = (p: number) => (n ? sorted[Math.min(n - 1, Math.ceil(p * n) - 1)]! : NaN)
  return { requests: n, seconds, p50: pct(0.5), p99: pct(0.99), errors, non200 }
}

async function runClient(job: ClientJob, dir: string): Promise<ClientResult> {
  const file = join(dir, 'job.json')
  writeFileSync(file, JSON.stringify(job))
  const child = spawn(process.execPath, [THIS, '--client', file], { stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  child.stdout!.on('data', (d) => (out += d))
  const [code] = (await once(child, 'exit')) as [number | null]
  if (code !== 0) throw new Error(`load client exited ${code}`)
  return JSON.parse(out) as ClientResult
}

// ---------------------------------------------------------------------------------------------
// The reference: a cluster of bare node:http workers answering canned bytes.
// ---------------------------------------------------------------------------------------------
interface ReferenceJob {
  workers: number
  /** query `case` → response body file. */
  canned: Record<string, string>
}

function referenceMain(job: ReferenceJob) {
  if (cluster.isPrimary) {
    // As ours (irt-service/cluster.ts): workers accept on the shared socket.
    cluster.schedulingPolicy = cluster.SCHED_NONE
    for (let i = 0; i < job.workers; i++) cluster.fork()
    let up = 0
    cluster.on('listening', (_w, addr) => {
      if (++up === job.workers) process.stdout.write(`${addr.port}\n`)
    })
    process.on('SIGTERM', () => {
      for (const w of Object.values(cluster.workers ?? {})) w?.kill()
      process.exit(0)
    })
    return
  }
  const canned = new Map(Object.entries(job.canned).map(([k, f]) => [k, readFileSync(f)]))
  const healthy = Buffer.from('{"status":"ok"}')
  http
    .createServer((req, res) => {
      const q = (req.url ?? '').indexOf('case=')
      const body = q < 0 ? healthy : canned.get((req.url ?? '').slice(q + 5)) ?? healthy
      req.on('data', () => {})
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length })
        res.end(body)
      })
    })
    .listen(0, '127.0.0.1')
}

// ---------------------------------------------------------------------------------------------
// Driver
// ---------------------------------------------------------------------------------------------
interface Server {
  child: ChildProcess
  port: number
  stop(): Promise<number | null>
}

async function startOurs(workers: number, logFile: string): Promise<Server> {
  const fd = openSync(logFile, 'w')
  const child = spawn(process.execPath, [join(ROOT, 'bin', 'run.js'), 'irt', 'serve', '--host', '127.0.0.1', '--port', '0', '--metrics-port', '0', '--workers', String(workers)], {
    cwd: ROOT,
    env: { ...process.env, R_IRT_INTERNAL_TOKEN: TOKEN, DATABASE_URL: '', NO_COLOR: '1' },
    stdio: ['ignore', 'ignore', fd],
  })
  closeSync(fd)
  const deadline = Date.now() + 30_000
  for (;;) {
    const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(readFileSync(logFile, 'utf8'))
    if (m) return { child, port: Number(m[1]), stop: () => stop(child) }
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`irt serve did not start:\n${readFileSync(logFile, 'utf8')}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

async function startReference(job: ReferenceJob, dir: string): Promise<Server> {
  const file = join(dir, 'reference.json')
  writeFileSync(file, JSON.stringify(job))
  const child = spawn(process.execPath, [THIS, '--reference', file], { stdio: ['ignore', 'pipe', 'inherit'] })
  const [line] = (await once(child.stdout!, 'data')) as [Buffer]
  return { child, port: Number(line.toString().trim()), stop: () => stop(child) }
}

async function stop(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return child.exitCode
  child.kill('SIGTERM')
  const [code] = (await once(child, 'exit')) as [number | null]
  return code
}

/** CPU seconds (user + system) used so far by a process and its children (the cluster's workers). */
function treeCpuSeconds(pid: number): number {
  try {
    const kids = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number)
    let ticks = 0
    for (const p of [pid, ...kids]) {
      const f = readFileSync(`/proc/${p}/stat`, 'utf8')
      const rest = f.slice(f.lastIndexOf(')') + 2).split(' ')
      ticks += Number(rest[11]) + Number(rest[12]) // utime, stime (fields 14, 15)
    }
    return ticks / 100 // USER_HZ
  } catch {
    return NaN
  }
}

/** Sum of peak RSS (VmHWM) over a process and its children, MB. */
function treeRssMB(pid: number): number | null {
  try {
    const kids = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number)
    let kb = 0
    for (const p of [pid, ...kids]) kb += Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${p}/status`, 'utf8'))?.[1] ?? 0)
    return kb / 1024
  } catch {
    return null
  }
}

function post(port: number, path: string, body: string): Promise<{ status: number; body: Buffer }> {
  return new Promise((ok, fail) => {
    const req = http.request({ host: '127.0.0.1', port, path, method: 'POST', agent: false, headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' } }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => ok({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }))
    })
    req.on('error', fail)
    req.end(body)
  })
}

/** Spawn → first 200 from GET /healthz (a new connection every 2 ms), then SIGTERM. */
async function coldStart(cmd: string[], port: number, env: NodeJS.ProcessEnv): Promise<{ seconds: number; exitCode: number | null }> {
  const t0 = performance.now()
  const child = spawn(process.execPath, cmd, { cwd: ROOT, env, stdio: 'ignore' })
  const deadline = t0 + 30_000
  for (;;) {
    const ok = await new Promise<boolean>((r) => {
      const q = http.get({ host: '127.0.0.1', port, path: '/healthz', agent: false }, (res) => {
        res.resume()
        r(res.statusCode === 200)
      })
      q.on('error', () => r(false))
    })
    if (ok) break
    if (performance.now() > deadline || child.exitCode !== null) throw new Error(`${cmd.join(' ')} did not become healthy`)
    await new Promise((r) => setTimeout(r, 2))
  }
  const seconds = (performance.now() - t0) / 1000
  return { seconds, exitCode: await stop(child) }
}

const BARE_HEALTH = `require('http').createServer((q, s) => { s.writeHead(200, {'content-type': 'application/json'}); s.end('{"status":"ok"}') }).listen(Number(process.argv[1]), '127.0.0.1')`

export interface ServeDetail {
  case: string
  mode: string
  ours_rps: number
  ours_p50_ms: number
  ours_p99_ms: number
  ref_rps: number
  ref_p50_ms: number
  ref_p99_ms: number
  ratio: number
  /** Server CPU (all its processes) per request: what the server costs, however busy the machine is. */
  ours_cpu_ms_per_req: number
  ref_cpu_ms_per_req: number
  errors: number
}

export async function run(opts: BenchOptions & { seconds?: number; connections?: number; workers?: number } = {}, details: ServeDetail[] = []): Promise<BenchRow[]> {
  const seconds = opts.seconds ?? (opts.quick ? 2 : 5)
  const connections = opts.connections ?? 32
  const workers = opts.workers ?? availableParallelism()
  const dir = mkdtempSync(join(tmpdir(), 'seedops-bench-serve-'))
  const rows: BenchRow[] = []
  const logFile = join(dir, 'serve.log')
  try {
    const ours = await startOurs(workers, logFile)
    const canned: Record<string, string> = {}
    const requests: Record<string, { new: string; keepalive: string }> = {}
    for (const p of PAYLOADS) {
      const body = payloadBody(p)
      const path = `/irt/score?case=${p.key}`
      const res = await post(ours.port, path, body)
      const abilities = (JSON.parse(res.body.toString()) as { abilities?: unknown[] }).abilities
      if (res.status !== 200 || abilities?.length !== p.persons) throw new Error(`irt serve answered ${p.key} with ${res.status}: ${res.body.toString().slice(0, 300)}`)
      canned[p.key] = join(dir, `${p.key}.response.json`)
      writeFileSync(canned[p.key]!, res.body)
      requests[p.key] = { new: join(dir, `${p.key}.new.http`), keepalive: join(dir, `${p.key}.ka.http`) }
      writeFileSync(requests[p.key]!.new, rawRequest(path, body, false))
      writeFileSync(requests[p.key]!.keepalive, rawRequest(path, body, true))
    }
    const reference = await startReference({ workers, canned }, dir)
    const maxRequests = 2_000_000
    try {
      for (const p of PAYLOADS) {
        for (const mode of ['new', 'keepalive'] as const) {
          const job = (port: number, s = seconds): ClientJob => ({ port, requestFile: requests[p.key]![mode], mode, connections: p.persons >= 1000 ? Math.min(connections, 8) : connections, seconds: s, maxRequests })
          // Warm-up (JIT, the log table cache), then ours and the reference back to back.
          await runClient(job(ours.port, 1), dir)
          await runClient(job(reference.port, 1), dir)
          const cpu0 = treeCpuSeconds(ours.child.pid!)
          const o = await runClient(job(ours.port), dir)
          const cpu1 = treeCpuSeconds(ours.child.pid!)
          const rcpu0 = treeCpuSeconds(reference.child.pid!)
          const r = await runClient(job(reference.port), dir)
          const rcpu1 = treeCpuSeconds(reference.child.pid!)
          const oRps = o.requests / o.seconds
          const rRps = r.requests / r.seconds
          const d: ServeDetail = {
            case: `${p.persons} × ${p.items}`,
            mode: mode === 'new' ? 'new connection each' : 'keep-alive',
            ours_rps: Math.round(oRps),
            ours_p50_ms: Number(o.p50.toFixed(2)),
            ours_p99_ms: Number(o.p99.toFixed(2)),
            ref_rps: Math.round(rRps),
            ref_p50_ms: Number(r.p50.toFixed(2)),
            ref_p99_ms: Number(r.p99.toFixed(2)),
            ratio: Number((oRps / rRps).toFixed(3)),
            ours_cpu_ms_per_req: Number((((cpu1 - cpu0) * 1000) / o.requests).toFixed(3)),
            ref_cpu_ms_per_req: Number((((rcpu1 - rcpu0) * 1000) / r.requests).toFixed(3)),
            errors: o.errors + o.non200,
          }
          details.push(d)
          const target = mode === 'new' ? p.target?.newConn : p.target?.keepAlive
          rows.push({
            scenario: `irt serve ${d.case}, ${d.mode}, ${connections} clients: ${d.ours_rps} req/s, p50 ${d.ours_p50_ms} ms, p99 ${d.ours_p99_ms} ms${d.errors ? `, ${d.errors} errors` : ''}`,
            wallSeconds: o.seconds,
            peakRssMB: treeRssMB(ours.child.pid!),
            reference: `bare node:http, canned response, ${workers} workers: ${d.ref_rps} req/s, p99 ${d.ref_p99_ms} ms; server CPU/request ours ${d.ours_cpu_ms_per_req} ms, reference ${d.ref_cpu_ms_per_req} ms (ratio = req/s ours / reference)`,
            ratio: d.ratio,
            target: target ? `≥ ${target.toLocaleString('en-US')} req/s` : undefined,
            met: target ? oRps >= target && d.errors === 0 : undefined,
          })
        }
      }
    } finally {
      await reference.stop()
      await ours.stop()
    }

    // Cold start: ours (default workers, and one process) against a bare node:http server.
    const port = 18_000 + Math.floor(Math.random() * 20_000)
    const env = { ...process.env, R_IRT_INTERNAL_TOKEN: TOKEN, DATABASE_URL: '', NO_COLOR: '1' }
    const runs = opts.quick ? 3 : 7
    const cold: Record<string, number[]> = { ours: [], one: [], bare: [] }
    const exits = new Set<number | null>()
    for (let i = 0; i < runs; i++) {
      const a = await coldStart([join(ROOT, 'bin', 'run.js'), 'irt', 'serve', '--host', '127.0.0.1', '--port', String(port), '--metrics-port', '0', '--workers', String(workers)], port, env)
      const b = await coldStart([join(ROOT, 'bin', 'run.js'), 'irt', 'serve', '--host', '127.0.0.1', '--port', String(port), '--metrics-port', '0', '--workers', '1'], port, env)
      const c = await coldStart(['-e', BARE_HEALTH, String(port)], port, env)
      cold.ours!.push(a.seconds)
      cold.one!.push(b.seconds)
      cold.bare!.push(c.seconds)
      exits.add(a.exitCode).add(b.exitCode)
    }
    const bare = median(cold.bare!)
    for (const [k, label] of [
      ['ours', `${workers} workers`],
      ['one', '--workers 1'],
    ] as const) {
      const s = median(cold[k]!)
      rows.push({
        scenario: `irt serve cold start, ${label} (spawn → first 200 /healthz, median of ${runs}; SIGTERM exit ${[...exits].join('/')})`,
        wallSeconds: s,
        peakRssMB: null,
        reference: `bare node:http spawn → first 200: ${bare.toFixed(3)} s (ratio = ours / bare)`,
        ratio: s / bare,
        target: '≤ 0.5 s',
        met: s <= 0.5,
      })
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
  return rows
}

const role = process.argv[2]
if (role === '--client') {
  const res = await clientMain(JSON.parse(readFileSync(process.argv[3]!, 'utf8')) as ClientJob)
  process.stdout.write(JSON.stringify(res))
} else if (role === '--reference') {
  // The primary and its forked workers alike (a fork runs this file with the same arguments).
  referenceMain(JSON.parse(readFileSync(process.argv[3]!, 'utf8')) as ReferenceJob)
} else if (process.argv[1] && resolve(process.argv[1]) === THIS) {
  const details: ServeDetail[] = []
  const rows = await run({ quick: process.argv.includes('--quick'), seconds: arg('seconds', NaN) || undefined, connections: arg('connections', NaN) || undefined, workers: arg('workers', NaN) || undefined }, details)
  console.log(`irt serve under load, POST /irt/score on loopback, ${availableParallelism()} cores; the load client shares them (a separate process)`)
  console.table(details)
  console.table(rows.map((r) => ({ scenario: r.scenario, s: Number(r.wallSeconds.toFixed(3)), rss_mb: r.peakRssMB && Math.round(r.peakRssMB), reference: r.reference, ratio: r.ratio && Number(r.ratio.toFixed(3)), target: r.target, met: r.met })))
}
