import { once } from 'node:events'
import http from 'node:http'
import type { Server } from 'node:http'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import IrtServe from '../../src/commands/irt/serve.js'
import { BaseCommand } from '../../src/cli/base-command.js'
import { FAST_FLAGS, parseServeArgv } from '../../src/lib/irt-service/cli.js'
import { eapBatch, itemTable } from '../../src/lib/irt-service/eap-batch.js'
import { parseScoreBody, scanScoreBody } from '../../src/lib/irt-service/score-body.js'
import { parseScoreRequest, type ScoreBatch } from '../../src/lib/irt-service/score-request.js'
import { createIrtServer } from '../../src/lib/irt-service/server.js'
import { logNormalWeights, makeGrid } from '../../src/lib/irt/grid.js'
import { eapScores } from '../../src/lib/irt/score.js'
import { silentLogger } from '../../src/lib/output/index.js'
import { runCli } from '../support/cli.js'

const TOKEN = 'irt-token-body-93c2aa'

function batch(persons: number, items: number, seed: number, missing = 0.1, guessing = 0) {
  let s = seed
  const r = () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 4294967296
  const item_params = Array.from({ length: items }, (_, j) => ({ a: 0.4 + r() * 2, b: r() * 5 - 2.5, c: j % 2 ? guessing : 0 }))
  const responses: (number | null)[][] = Array.from({ length: persons }, () => Array.from({ length: items }, () => (r() < missing ? null : r() < 0.55 ? 1 : 0)))
  return { item_params, responses }
}

function request(url: string, body: string | Buffer[], headers: Record<string, string> = {}): Promise<{ status: number; json: any }> {
  return new Promise((resolve, reject) => {
    const u = new URL(url)
    const req = http.request({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST', agent: false, headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}`, ...headers } }, (res) => {
      let text = ''
      res.on('data', (c) => (text += c))
      res.on('end', () => resolve({ status: res.statusCode!, json: JSON.parse(text) }))
    })
    req.on('error', reject)
    if (typeof body === 'string') req.end(body)
    else {
      // Chunked, no content-length: the limit is enforced while reading.
      for (const b of body) req.write(b)
      req.end()
    }
  })
}

describe('POST /irt/score bodies', () => {
  let server: Server
  let url: string
  beforeAll(async () => {
    server = createIrtServer({ token: TOKEN, logger: silentLogger, maxBodyBytes: 200_000 })
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    url = `http://127.0.0.1:${(server.address() as { port: number }).port}/irt/score`
  })
  afterAll(() => server.close())

  it('a 1000 × 40 body with one bad element: 400 naming it', async () => {
    const cases: [(b: ReturnType<typeof batch>) => void, string][] = [
      [(b) => (b.responses[777]![31] = 2), 'responses[777][31] = 2 is not 0, 1 or null'],
      [(b) => ((b.responses[12]![0] as unknown) = '1'), 'responses[12][0] = "1" is not 0, 1 or null'],
      [(b) => b.responses[998]!.pop(), 'responses[998] has 39 entries, item_params has 40'],
      [(b) => ((b.responses[5] as unknown) = { 0: 1 }), 'invalid request: responses[5]: expected an array'],
      [(b) => (b.item_params[12]!.a = -1), 'invalid request: item_params[12].a: expected a number > 0, got -1'],
      [(b) => ((b.item_params[3]!.b as unknown) = null), 'invalid request: item_params[3].b: expected a number, got null'],
      [(b) => (b.item_params[39]!.c = 1), 'invalid request: item_params[39].c: expected a number in [0, 0.99], got 1'],
      [(b) => ((b as Record<string, unknown>).method = 'wle'), 'invalid request: method: expected one of eap, map, ml, got "wle"'],
      [(b) => (b.item_params = []), 'invalid request: item_params: expected a non-empty array'],
    ]
    for (const [spoil, message] of cases) {
      const b = batch(1000, 40, 11)
      spoil(b)
      const res = await request(url, JSON.stringify(b))
      expect(res.status, message).toBe(400)
      expect(res.json.error.code).toBe('BAD_REQUEST')
      expect(res.json.error.message).toContain(message)
    }
    const ok = await request(url, JSON.stringify(batch(1000, 40, 11)))
    expect(ok.status).toBe(200)
    expect(ok.json.abilities).toHaveLength(1000)
    expect((await request(url, '{"item_params": [')).json.error.message).toBe('request body is not valid JSON')
  })

  it('an oversized body is a 413, declared or chunked, and the server keeps serving', async () => {
    const big = JSON.stringify(batch(3000, 40, 12))
    expect(big.length).toBeGreaterThan(200_000)
    const declared = await request(url, big)
    expect(declared.status).toBe(413)
    expect(declared.json.error).toMatchObject({ code: 'PAYLOAD_TOO_LARGE', message: 'request body larger than 200000 bytes' })
    const chunks = Array.from({ length: Math.ceil(big.length / 16_384) }, (_, k) => Buffer.from(big.slice(k * 16_384, (k + 1) * 16_384)))
    const chunked = await request(url, chunks)
    expect(chunked.status).toBe(413)
    expect((await request(url, JSON.stringify(batch(5, 40, 13)))).status).toBe(200)
  })
})

describe('the byte scanner (score-body.ts) reads what JSON.parse + the validator read', () => {
  const plain = (x: ScoreBatch) => ({ ...x, items: { a: [...x.items.a], d: [...x.items.d], c: [...x.items.c] }, csr: { rowPtr: [...x.csr.rowPtr], items: [...x.csr.items], resp: [...x.csr.resp] } })
  it('on the bodies callers send, in any layout, with the same doubles', () => {
    const b = batch(60, 12, 21, 0.2, 0.1)
    // Awkward numbers: long fractions, exponents, negative zero, integers.
    b.item_params[0] = { a: 1.2345678901234567, b: -0, c: 0 }
    b.item_params[1] = { a: 3e-1, b: 12.5e2, c: 0.1 } as never
    const bodies = [
      JSON.stringify(b),
      JSON.stringify(b, null, 2),
      JSON.stringify(b, null, '\t').replace(/\n/g, '\r\n'),
      JSON.stringify({ method: 'map', responses: b.responses, item_params: b.item_params.map((p, j) => ({ item_id: j % 2 ? `item-${j}` : j, ...p })) }),
      ` {"responses":[],"item_params":[{"b":1,"a":2}]} `,
      '{"item_params":[{"a":1.5e0,"b":-2.25E+1,"c":0.20}],"responses":[[1],[0],[null],[ 1 ]],"method":"ml"}',
    ]
    bodies[0] = bodies[0]!.replace('"a":0.3,', '"a":3e-1,').replace('"b":1250,', '"b":12.5e2,')
    for (const text of bodies) {
      const fast = scanScoreBody(Buffer.from(text))
      expect(fast, text.slice(0, 80)).not.toBeNull()
      expect(plain(fast!)).toEqual(plain(parseScoreRequest(JSON.parse(text))))
    }
    const f = scanScoreBody(Buffer.from(bodies[0]!))!
    expect(f.items.a[0]).toBe(1.2345678901234567)
    expect(Object.is(f.items.d[0], -0)).toBe(true)
  })

  it('leaves everything else to the general path: same answers, same errors', () => {
    const good = JSON.stringify(batch(3, 4, 5))
    const cases = [
      good.replace('[[', '[[1.0,').replace(/\[\[1\.0,([^\]]*?),[^,\]]*\]/, '[[1.0,$1]'), // 1.0 is 1
      good.replace('"responses"', '"extra":{"x":[1,2]},"responses"'), // another key
      good.replace('"a"', '"\\u0061"'), // an escaped key
      good.replace('[[', '[[-0,').replace(/\[\[-0,([^\]]*?),[^,\]]*\]/, '[[-0,$1]'),
      good.replace('[[', '[[2,'),
      good.replace(/"c":0/, '"c":null'),
      good.replace('}', ',"a":5}'), // duplicate key
      good + 'x',
      good.slice(0, -1),
      '',
      '[]',
      '{}',
    ]
    for (const text of cases) {
      expect(scanScoreBody(Buffer.from(text)), text.slice(0, 60)).toBeNull()
      let general: unknown
      try {
        general = plain(parseScoreRequest(text.trim() ? JSON.parse(text) : {}))
      } catch (e) {
        general = e instanceof SyntaxError ? 'request body is not valid JSON' : (e as Error).message
      }
      let got: unknown
      try {
        got = plain(parseScoreBody(Buffer.from(text)))
      } catch (e) {
        got = (e as Error).message
      }
      expect(got, text.slice(0, 60)).toEqual(general)
    }
  })
})

describe('eapBatch (the service\'s EAP) equals eapScores', () => {
  it('on 2PL and 3PL, dense and sparse patterns, to 1e-12', () => {
    const grid = makeGrid()
    const logW = logNormalWeights(grid, 0, 1)
    for (const [persons, items, missing, guessing] of [
      [400, 40, 0.1, 0],
      [300, 30, 0.1, 0.2],
      [200, 50, 0.8, 0],
      [200, 20, 0.5, 0.15],
      [50, 1, 0, 0],
    ] as const) {
      const parsed = parseScoreRequest(batch(persons, items, persons + items, missing, guessing))
      const { a, d, c } = parsed.items
      const want = { theta: new Float64Array(persons), se: new Float64Array(persons) }
      eapScores(grid, a, d, c, parsed.csr.rowPtr, parsed.csr.items, parsed.csr.resp, { mean: 0, variance: 1 }, want.theta, want.se)
      const got = { theta: new Float64Array(persons), se: new Float64Array(persons) }
      eapBatch(itemTable(grid.nodes, parsed.items), grid.nodes, logW, parsed.csr, got.theta, got.se)
      for (let i = 0; i < persons; i++) {
        expect(Math.abs(got.theta[i]! - want.theta[i]!)).toBeLessThan(1e-12)
        expect(Math.abs(got.se[i]! - want.se[i]!)).toBeLessThan(1e-12)
      }
    }
  })
})

describe('bin/run.js fast path for irt serve', () => {
  it('takes exactly the command\'s flags, and leaves anything else to oclif', () => {
    const oclif = Object.entries({ ...BaseCommand.baseFlags, ...IrtServe.flags }).flatMap(([name, f]) => ((f as { allowNo?: boolean }).allowNo ? [name, `no-${name}`] : [name]))
    expect(Object.keys(FAST_FLAGS).sort()).toEqual(oclif.sort())
    expect(parseServeArgv(['--port', '8080', '--metrics-port=9464', '--workers', '3', '--no-with-db', '-q'])).toEqual({
      flags: { port: 8080, host: undefined, metricsPort: 9464, workers: 3, noAuth: false, withDb: false },
      json: false,
      quiet: true,
      verbose: false,
    })
    for (const argv of [['--help'], ['-h'], ['--port', 'x'], ['--workers', '0'], ['--port'], ['--port', '1', '--port', '2'], ['--no-auth=yes'], ['extra'], ['--with-db', '--no-with-db']]) {
      expect(parseServeArgv(argv), argv.join(' ')).toBeNull()
    }
  })

  it('--help and bad values reach oclif (help, exit 2)', async () => {
    const help = await runCli(['irt', 'serve', '--help'])
    expect(help.code).toBe(0)
    expect(help.stdout).toContain('--workers=<value>')
    const bad = await runCli(['irt', 'serve', '--workers', '0', '--no-auth'])
    expect(bad.code).toBe(2)
    expect(bad.stderr).toMatch(/workers/)
  })
})
