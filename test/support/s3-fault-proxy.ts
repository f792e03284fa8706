import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'

/**
 * What the proxy does to a request it matched:
 * - `status`: answers with an S3 XML error body (500 InternalError, 503 SlowDown…), after reading the upload;
 * - `delay`: waits, then passes the request through (skipped when the client gave up meanwhile);
 * - `hang`: never answers (the client's timeout has to end it);
 * - `reset`: destroys the connection on the request head; nothing reaches S3;
 * - `drop-request`: destroys the connection after the first chunk of the upload (cut mid-body); nothing reaches S3;
 * - `drop-response`: passes the request through (S3 stores it), then sends the response head and half its body
 *   and destroys the connection — or, when S3's answer has no body (a PUT), destroys it before the head.
 */
export type Fault =
  | { kind: 'status'; status: number; code: string; message?: string }
  | { kind: 'delay'; ms: number }
  | { kind: 'hang' }
  | { kind: 'reset' }
  | { kind: 'drop-request' }
  | { kind: 'drop-response' }

export const INTERNAL_ERROR: Fault = { kind: 'status', status: 500, code: 'InternalError', message: 'We encountered an internal error. Please try again.' }
export const SLOW_DOWN: Fault = { kind: 'status', status: 503, code: 'SlowDown', message: 'Please reduce your request rate.' }

export interface SeenRequest {
  method: string
  /** Path as sent (path-style: /bucket/key…), query included. */
  url: string
  bucket: string
  /** Object key, decoded ('' for bucket-level requests). */
  key: string
  /** The fault applied, or 'pass'. */
  outcome: Fault['kind'] | 'pass'
}

export interface FaultRule {
  /** Which requests the rule is for (default: all). */
  match?: (r: { method: string; bucket: string; key: string }) => boolean
  /** Only the first `first` requests per method+URL it matches (default: every one). */
  first?: number
  /** The fault, or one chosen by the (0-based) number of this request among those of its method+URL the rule matched, and the request. */
  fault: Fault | ((n: number, r: { method: string; bucket: string; key: string }) => Fault)
}

export interface S3FaultProxy {
  /** Point the CLI here (AWS_ENDPOINT_URL). */
  endpoint: string
  /** Replaces the rules (first matching rule wins; none: pass through). Resets the rules' per-URL counters. */
  set(rules: FaultRule[]): void
  /** No faults: everything passes through (and the port listens again after down()). */
  pass(): Promise<void>
  /** Closes the port and every open connection: clients get ECONNREFUSED until up()/pass(). */
  down(): Promise<void>
  up(): Promise<void>
  /** Every request the proxy read since start or the last clear(), in arrival order. */
  seen: SeenRequest[]
  clear(): void
  /** How many requests matched: method (e.g. 'PUT') and, when given, a key substring. */
  count(method: string, keyPart?: string): number
  close(): Promise<void>
}

function errorXml(f: Extract<Fault, { kind: 'status' }>, resource: string): string {
  const id = Math.random().toString(16).slice(2, 18).toUpperCase()
  return `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${f.code}</Code><Message>${f.message ?? f.code}</Message><Resource>${resource}</Resource><RequestId>${id}</RequestId><HostId>fault-proxy</HostId></Error>`
}

function parseTarget(url: string): { bucket: string; key: string } {
  const path = url.split('?')[0]!
  const [, bucket = '', ...rest] = path.split('/')
  return { bucket: decodeURIComponent(bucket), key: decodeURIComponent(rest.join('/')) }
}

/**
 * A node:http proxy in front of an S3-compatible server (s3rver), path-style addressing. It forwards
 * requests unchanged (the Host header too, so SigV4 signatures still verify) unless a rule says otherwise.
 */
export async function startS3FaultProxy(upstream: string): Promise<S3FaultProxy> {
  const up = new URL(upstream)
  let rules: FaultRule[] = []
  let counters = new Map<string, number>()
  const seen: SeenRequest[] = []
  const sockets = new Set<Socket>()

  const forward = (req: IncomingMessage, res: ServerResponse, body: Buffer, onResponse?: (u: IncomingMessage) => void) => {
    const out = httpRequest({ host: up.hostname, port: up.port, method: req.method, path: req.url, headers: req.headers }, (u) => {
      if (onResponse) return onResponse(u)
      res.writeHead(u.statusCode ?? 502, u.rawHeaders)
      u.pipe(res)
    })
    out.on('error', () => res.socket?.destroy())
    out.end(body)
  }

  const readBody = (req: IncomingMessage) =>
    new Promise<Buffer>((resolve, reject) => {
      const chunks: Buffer[] = []
      req.on('data', (c: Buffer) => chunks.push(c))
      req.on('end', () => resolve(Buffer.concat(chunks)))
      req.on('error', reject)
    })

  const pick = (method: string, url: string, target: { bucket: string; key: string }): Fault | null => {
    for (let i = 0; i < rules.length; i++) {
      const r = rules[i]!
      if (r.match && !r.match({ method, ...target })) continue
      const id = `${i} ${method} ${url}`
      const n = counters.get(id) ?? 0
      counters.set(id, n + 1)
      if (r.first !== undefined && n >= r.first) return null
      return typeof r.fault === 'function' ? r.fault(n, { method, ...target }) : r.fault
    }
    return null
  }

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const method = req.method ?? 'GET'
    const url = req.url ?? '/'
    const target = parseTarget(url)
    const fault = pick(method, url, target)
    seen.push({ method, url, ...target, outcome: fault?.kind ?? 'pass' })
    const socket = req.socket
    if (fault?.kind === 'reset') return void socket.destroy()
    if (fault?.kind === 'drop-request') {
      // Cut the upload after its first chunk (or at once when there is no body).
      if (Number(req.headers['content-length'] ?? 0) === 0) return void socket.destroy()
      req.once('data', () => socket.destroy())
      return
    }
    const body = await readBody(req).catch(() => null)
    if (body === null || socket.destroyed) return
    if (!fault) return forward(req, res, body)
    switch (fault.kind) {
      case 'status': {
        const xml = errorXml(fault, url)
        res.writeHead(fault.status, { 'content-type': 'application/xml', 'content-length': method === 'HEAD' ? 0 : Buffer.byteLength(xml), ...(fault.status === 503 ? { 'retry-after': '0' } : {}) })
        return void res.end(method === 'HEAD' ? undefined : xml)
      }
      case 'hang':
        return
      case 'delay':
        await new Promise((r) => setTimeout(r, fault.ms))
        if (!socket.destroyed) forward(req, res, body)
        return
      case 'drop-response':
        return forward(req, res, body, (u) => {
          const chunks: Buffer[] = []
          u.on('data', (c: Buffer) => chunks.push(c))
          u.on('end', () => {
            const all = Buffer.concat(chunks)
            if (all.length < 2) return void socket.destroy()
            res.writeHead(u.statusCode ?? 200, u.rawHeaders)
            res.write(all.subarray(0, all.length >> 1), () => socket.destroy())
          })
        })
    }
  }

  const server: Server = createServer((req, res) => void handle(req, res))
  server.on('connection', (s) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
  })
  const listen = (port: number) =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject)
        resolve()
      })
    })
  await listen(0)
  const port = (server.address() as AddressInfo).port
  let listening = true

  const down = async () => {
    if (!listening) return
    listening = false
    const closed = new Promise<void>((r) => server.close(() => r()))
    for (const s of sockets) s.destroy()
    await closed
  }
  const upAgain = async () => {
    if (listening) return
    await listen(port)
    listening = true
  }

  return {
    endpoint: `http://127.0.0.1:${port}`,
    set(r) {
      rules = r
      counters = new Map()
    },
    async pass() {
      rules = []
      counters = new Map()
      await upAgain()
    },
    down,
    up: upAgain,
    seen,
    clear() {
      seen.length = 0
    },
    count(method, keyPart) {
      return seen.filter((r) => r.method === method && (keyPart === undefined || r.key.includes(keyPart))).length
    },
    async close() {
      await down()
    },
  }
}
