import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Server } from 'node:http'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createHash } from 'node:crypto'
import { DEFAULT_HEADERS_TIMEOUT_MS, DEFAULT_MAX_BODY_BYTES, DEFAULT_REQUEST_TIMEOUT_MS } from '../../src/lib/irt-service/limits.js'
import { resolveServiceConfig } from '../../src/lib/irt-service/run.js'
import { createIrtServer, tokenMatches } from '../../src/lib/irt-service/server.js'
import { silentLogger } from '../../src/lib/output/index.js'
import { runCli } from '../support/cli.js'
import { DB_KINDS, freshDatabase } from '../support/db.js'
import { insertExams } from '../support/fixtures.js'

const TOKEN = 'irt-token-5b1d2c'
const FIX = join(import.meta.dirname, '..', 'fixtures', 'irt', 'lsat7')
const csv = (f: string) => {
  const [h, ...rows] = readFileSync(join(FIX, f), 'utf8').trim().split('\n')
  const cols = h!.split(',')
  return rows.map((r) => Object.fromEntries(r.split(',').map((v, i) => [cols[i], v])))
}

async function start(opts: Parameters<typeof createIrtServer>[0]): Promise<{ server: Server; url: string }> {
  const server = createIrtServer(opts)
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const a = server.address() as { port: number }
  return { server, url: `http://127.0.0.1:${a.port}` }
}

const post = (url: string, body: unknown, token: string | null = TOKEN) =>
  fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) }, body: JSON.stringify(body) })

describe('seedops irt serve (Plumber contract)', () => {
  let s: { server: Server; url: string }
  beforeAll(async () => {
    s = await start({ token: TOKEN, logger: silentLogger })
  })
  afterAll(() => s.server.close())

  it('healthz is open; every other route checks the bearer token', async () => {
    const h = await fetch(`${s.url}/healthz`)
    expect(h.status).toBe(200)
    expect(await h.json()).toMatchObject({ status: 'ok', engine: 'native' })
    expect((await post(`${s.url}/irt/score`, {}, null)).status).toBe(401)
    const wrong = await post(`${s.url}/irt/score`, {}, 'not-the-token')
    expect(wrong.status).toBe(401)
    expect(wrong.headers.get('www-authenticate')).toBe('Bearer error="invalid_token"')
    expect(JSON.stringify(await wrong.json())).not.toContain(TOKEN)
    expect((await fetch(`${s.url}/irt/score`, { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(405)
    expect((await post(`${s.url}/nope`, {})).status).toBe(404)
  })

  it('POST /irt/calibrate answers with mirt-equal 2PL parameters and EAP abilities on LSAT7', async () => {
    const observations = csv('responses.csv').map((r) => ({ user_id: r.user_id, item_id: r.item_id, is_correct: Number(r.is_correct) }))
    const res = await post(`${s.url}/irt/calibrate`, { observations, model: '2PL' })
    expect(res.status).toBe(200)
    const body = (await res.json()) as { status: string; item_params: { item_id: string; params: { a: number; b: number; c: number } }[]; abilities: { user_id: string; theta: number; se: number }[]; fit_meta: { run_id: string; model_spec: Record<string, unknown> } }
    expect(body.status).toBe('ok')
    expect(body.fit_meta.model_spec).toMatchObject({ model: '2PL', n_persons: 1000, n_items: 5 })
    const mirt = new Map(csv('mirt_items.csv').map((r) => [r.item_id, r]))
    for (const it of body.item_params) {
      expect(Math.abs(it.params.a - Number(mirt.get(it.item_id)!.a))).toBeLessThan(0.01)
      expect(Math.abs(it.params.b - Number(mirt.get(it.item_id)!.b))).toBeLessThan(0.01)
    }
    const scores = new Map(csv('mirt_scores.csv').map((r) => [r.user_id, r]))
    for (const a of body.abilities.slice(0, 200)) {
      expect(Math.abs(a.theta - Number(scores.get(a.user_id)!.theta_eap))).toBeLessThan(0.005)
      expect(Math.abs(a.se - Number(scores.get(a.user_id)!.se_eap))).toBeLessThan(0.005)
    }
  })

  it('POST /irt/score: EAP from given parameters equals mirt; bad values are a 400 naming the cell', async () => {
    const items = csv('mirt_items.csv').map((r) => ({ a: Number(r.a), b: Number(r.b), c: 0 }))
    const byUser = new Map<string, (number | null)[]>()
    for (const r of csv('responses.csv')) {
      const row = byUser.get(r.user_id!) ?? [null, null, null, null, null]
      row[Number(r.item_id!.slice(1)) - 1] = Number(r.is_correct)
      byUser.set(r.user_id!, row)
    }
    const users = [...byUser.keys()].slice(0, 50)
    const res = await post(`${s.url}/irt/score`, { item_params: items, responses: users.map((u) => byUser.get(u)) })
    const body = (await res.json()) as { abilities: { theta: number; se: number }[] }
    const scores = new Map(csv('mirt_scores.csv').map((r) => [r.user_id, r]))
    users.forEach((u, i) => expect(Math.abs(body.abilities[i]!.theta - Number(scores.get(u)!.theta_eap))).toBeLessThan(0.005))
    const bad = await post(`${s.url}/irt/score`, { item_params: items, responses: [[1, 0, 2, null, 1]] })
    expect(bad.status).toBe(400)
    expect(((await bad.json()) as { error: { message: string } }).error.message).toContain('responses[0][2] = 2')
    const rej = await post(`${s.url}/irt/calibrate`, { observations: [{ user_id: 'u1', item_id: 'i1', is_correct: 'yes' }] })
    expect(rej.status).toBe(400)
  })

  it('tokenMatches compares digests of equal length: any length, prefix or case differs → false, never a throw', () => {
    // timingSafeEqual throws on unequal lengths and is constant-time only over equal ones; the
    // digests make every comparison the same 32 bytes, so a caller's token length or a matching
    // prefix cannot show in the timing. (A timing measurement would be too noisy to assert.)
    const expected = createHash('sha256').update(TOKEN).digest()
    expect(tokenMatches(TOKEN, expected)).toBe(true)
    for (const given of ['', 'x', TOKEN.slice(0, -1), `${TOKEN} `, TOKEN.toUpperCase(), 'é'.repeat(5000)]) expect(tokenMatches(given, expected)).toBe(false)
    expect(tokenMatches(TOKEN, expected.subarray(0, 16))).toBe(false)
  })

  it('the limits are settable by environment; bad values are usage errors naming the variable', () => {
    const env = { R_IRT_INTERNAL_TOKEN: TOKEN }
    expect(resolveServiceConfig({}, env)).toMatchObject({ maxBodyBytes: undefined, headersTimeoutMs: undefined, requestTimeoutMs: undefined })
    expect(DEFAULT_HEADERS_TIMEOUT_MS).toBeLessThanOrEqual(DEFAULT_REQUEST_TIMEOUT_MS)
    expect(DEFAULT_MAX_BODY_BYTES).toBe(64 * 1024 * 1024)
    expect(resolveServiceConfig({}, { ...env, IRT_MAX_BODY_BYTES: '4096', IRT_HEADERS_TIMEOUT_MS: '500', IRT_REQUEST_TIMEOUT_MS: '900' })).toMatchObject({ maxBodyBytes: 4096, headersTimeoutMs: 500, requestTimeoutMs: 900 })
    for (const [k, v] of [['IRT_MAX_BODY_BYTES', '1k'], ['IRT_HEADERS_TIMEOUT_MS', '0'], ['IRT_REQUEST_TIMEOUT_MS', '-5']] as const) {
      expect(() => resolveServiceConfig({}, { ...env, [k]: v })).toThrow(expect.objectContaining({ exitCode: 2, message: expect.stringContaining(k) }))
    }
    expect(() => resolveServiceConfig({}, { ...env, IRT_HEADERS_TIMEOUT_MS: '5000', IRT_REQUEST_TIMEOUT_MS: '1000' })).toThrow(/IRT_HEADERS_TIMEOUT_MS \(5000\) must not exceed IRT_REQUEST_TIMEOUT_MS/)
  })

  it('a body over maxBodyBytes is 413 before it is read; malformed JSON is 400 on every POST route', async () => {
    const small = await start({ token: TOKEN, logger: silentLogger, maxBodyBytes: 1024 })
    try {
      for (const path of ['/irt/score', '/irt/calibrate', '/analysis/irt/update-theta']) {
        const big = await fetch(`${small.url}${path}`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` }, body: 'x'.repeat(1025) })
        expect(big.status).toBe(413)
        expect(((await big.json()) as { error: { code: string } }).error.code).toBe('PAYLOAD_TOO_LARGE')
        const bad = await fetch(`${small.url}${path}`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` }, body: '{"user_id":' })
        expect(bad.status).toBe(400)
      }
    } finally {
      small.server.close()
    }
  })

  it('the CLI refuses to serve without a token unless --no-auth', async () => {
    const r = await runCli(['irt', 'serve', '--port', '0'], { env: { R_IRT_INTERNAL_TOKEN: undefined } })
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('no token: set R_IRT_INTERNAL_TOKEN')
  })
})

describe.each(DB_KINDS)('POST /analysis/irt/update-theta on %s', (kind) => {
  it('a session that comes after a later one: the later one is folded again onto it, online is the latest session\'s', async () => {
    const db = await (await freshDatabase(kind)).open()
    const s = await start({ token: TOKEN, logger: silentLogger, db })
    try {
      await db.pool.query(`INSERT INTO mirt_item_params (item_id, model, params, version) VALUES (1, '2PL', '{"a":1.2,"b":0,"c":0}', 't'), (2, '2PL', '{"a":0.9,"b":1,"c":0}', 't')`)
      const day = Date.now() - 86_400_000
      const q = (a: boolean, b: boolean) => [{ question_id: 1, is_correct: a }, { question_id: 2, is_correct: b }]
      await insertExams(db.pool, [
        { session_id: 'old', user_id: 'u7', at: new Date(day).toISOString(), questions: q(true, true) },
        { session_id: 'new', user_id: 'u7', at: new Date(day + 3_600_000).toISOString(), questions: q(false, false) },
      ])
      const theta = async (session: string) => ((await (await post(`${s.url}/analysis/irt/update-theta`, { user_id: 'u7', session_id: session })).json()) as { theta: number }).theta
      const newAlone = await theta('new') // prior N(0, 1): nothing before it yet
      const old = await theta('old')
      const hist = new Map((await db.pool.query(`SELECT key, theta FROM seedops_ability_history WHERE user_id = 'u7'`)).rows.map((r) => [r.key, r.theta]))
      expect(hist.get('session:old')).toBe(old)
      // 'new' now starts from 'old''s estimate: two wrong answers from a higher prior end higher than from N(0, 1).
      expect(hist.get('session:new')).toBeGreaterThan(newAlone + 0.1)
      const online = (await db.pool.query(`SELECT theta FROM mirt_ability WHERE user_id = 'u7' AND version = 'online'`)).rows[0].theta
      expect(online).toBe(hist.get('session:new'))
      // The same as calling in session order: calling 'new' again changes nothing.
      expect(await theta('new')).toBe(hist.get('session:new'))
    } finally {
      s.server.close()
      await db.close()
    }
  })

  it('updates the learner\'s θ from the session and returns the contract fields', async () => {
    const db = await (await freshDatabase(kind)).open()
    const s = await start({ token: TOKEN, logger: silentLogger, db })
    try {
      await db.pool.query(`INSERT INTO mirt_item_params (item_id, model, params, version) VALUES (1, '2PL', '{"a":1.2,"b":0,"c":0}', 't'), (2, '2PL', '{"a":0.9,"b":1,"c":0}', 't')`)
      await insertExams(db.pool, [{ session_id: 'sess-9', user_id: 'u9', at: new Date().toISOString(), questions: [{ question_id: 1, is_correct: true }, { question_id: 2, is_correct: true }] }])
      const res = await post(`${s.url}/analysis/irt/update-theta`, { user_id: 'u9', session_id: 'sess-9' })
      expect(res.status).toBe(200)
      const body = (await res.json()) as Record<string, unknown>
      // model and version: those of the calibration whose parameters were used.
      expect(body).toMatchObject({ user_id: 'u9', model: '2PL', version: 't', theta: expect.any(Number), se: expect.any(Number), updated_at: expect.any(String) })
      expect(body.theta as number).toBeGreaterThan(0.3) // two correct answers from N(0,1)
      const row = (await db.pool.query(`SELECT theta FROM mirt_ability WHERE user_id = 'u9' AND version = 'online'`)).rows[0]
      expect(row.theta).toBeCloseTo(body.theta as number, 12)
      const missing = await post(`${s.url}/analysis/irt/update-theta`, { user_id: 'nobody' })
      expect(missing.status).toBe(404)
      // Through the stage runner: one run-log row per call, the failed one too, scoped to the learner.
      const log = (await db.pool.query(`SELECT status, params->>'lockScope' AS scope FROM seedops_stage_runs WHERE stage = 'update-theta' ORDER BY id`)).rows
      expect(log).toEqual([
        { status: 'succeeded', scope: 'user:u9' },
        { status: 'failed', scope: 'user:nobody' },
      ])
    } finally {
      s.server.close()
      await db.close()
    }
  })
})
