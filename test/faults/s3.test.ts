import { createRequire } from 'node:module'
import { CreateBucketCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { runCli, type CliResult } from '../support/cli.js'
import { DB_KINDS, freshDatabase, type DbKind, type TestDatabase } from '../support/db.js'
import { INTERNAL_ERROR, SLOW_DOWN, startS3FaultProxy, type Fault, type S3FaultProxy } from '../support/s3-fault-proxy.js'
import { DATE, WEEK, seedReportFixture } from '../reports/fixture.js'
import { startS3, type TestS3 } from '../reports/s3.js'
import { record, trials } from './support/table.js'

/**
 * Issue 13 item 4: `seedops run generate-report` (the CLI, one process per run) with S3 (s3rver) behind a
 * fault proxy: down, failing for a while, failing for some objects, slow. What must hold every time: a
 * report_artifacts row only for an object S3 really holds, retries bounded by S3_MAX_ATTEMPTS (counted at
 * the proxy), failures named, a re-run fills the gaps, and the planted keys never appear anywhere.
 */

// Distinctive credentials, registered with s3rver (it checks SigV4 signatures against them).
const PLANTED = { id: 'AKIAPLANTEDS3FAULT7Q2X', secret: 'planted+S3secret/faultSuite-9ZkQ4wVbN', token: 'planted-session-token-s3faults-3HsTq8' }
createRequire(import.meta.url)('s3rver/lib/models/account.js').DUMMY_ACCOUNT.createKeyPair(PLANTED.id, PLANTED.secret)

const ATTEMPTS = 3
/**
 * Trials here: the CI default, or --trials N up to 10. The faults are deterministic (the proxy picks them, not
 * timing), so beyond a few trials the same mixes repeat at a full CLI process (and a re-run) each.
 */
const s3Trials = (ciDefault: number) => Math.min(trials(ciDefault), 10)
const PG: DbKind = DB_KINDS.includes('postgres') ? 'postgres' : 'embedded'

let s3: TestS3
let proxy: S3FaultProxy
let bucketNo = 0
/** Every output of every run, scanned for the planted values at the end (and after each run). */
const outputs: string[] = []

beforeAll(async () => {
  s3 = await startS3([])
  proxy = await startS3FaultProxy(s3.endpoint)
})
afterAll(async () => {
  await proxy?.close()
  await s3?.close()
})

async function newBucket(): Promise<string> {
  const name = `faults-${process.pid}-${++bucketNo}`
  await s3.client.send(new CreateBucketCommand({ Bucket: name }))
  return name
}

/** Keys S3 (s3rver, not through the proxy) holds in the bucket. */
async function storedKeys(bucket: string): Promise<string[]> {
  const r = await s3.client.send(new ListObjectsV2Command({ Bucket: bucket }))
  return (r.Contents ?? []).map((o) => o.Key!).sort()
}

async function headEtag(bucket: string, key: string): Promise<string | null> {
  try {
    return (await s3.client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }))).ETag ?? null
  } catch {
    return null
  }
}

function keyOf(url: string, bucket: string): string {
  expect(url.startsWith(`s3://${bucket}/`), url).toBe(true)
  return url.slice(`s3://${bucket}/`.length)
}

interface Run extends CliResult {
  ms: number
  doc: { status?: string; result?: { rows?: Record<string, number>; summary?: { failures?: { user_id: string; error: string }[] } }; error?: { code?: string; message?: string } } | null
}

function leaks(text: string): string[] {
  return Object.values(PLANTED).filter((v) => text.includes(v))
}

async function generate(tdb: TestDatabase, bucket: string, extraEnv: Record<string, string> = {}): Promise<Run> {
  const env = {
    ...tdb.env,
    AWS_ENDPOINT_URL: proxy.endpoint,
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: PLANTED.id,
    AWS_SECRET_ACCESS_KEY: PLANTED.secret,
    AWS_SESSION_TOKEN: PLANTED.token,
    S3_BUCKET: bucket,
    S3_MAX_ATTEMPTS: String(ATTEMPTS),
    ...extraEnv,
  }
  const t0 = performance.now()
  const r = await runCli(['run', 'generate-report', '--date', DATE, '--renderer', 'builtin', '--format', 'html', '--json'], { env, timeoutMs: 120_000 })
  const ms = performance.now() - t0
  outputs.push(r.stdout, r.stderr)
  expect(leaks(r.stdout + r.stderr), 'planted S3 credentials in the output').toEqual([])
  let doc: Run['doc'] = null
  try {
    doc = JSON.parse(r.stdout)
  } catch {
    doc = null
  }
  return { ...r, ms, doc }
}

async function withDb<T>(tdb: TestDatabase, fn: (q: <R extends Record<string, unknown>>(sql: string, params?: unknown[]) => Promise<R[]>) => Promise<T>): Promise<T> {
  // One open per check: opening the embedded database costs seconds on a busy machine.
  const db = await tdb.open()
  try {
    return await fn(async (sql, params = []) => (await db.pool.query(sql, params)).rows)
  } finally {
    await db.close()
  }
}

type Row = { user_id: string; format: string; url: string }

/**
 * The week's report_artifacts rows and what is wrong with "a row only for a stored object": rows whose
 * object S3 (s3rver, not through the proxy) does not hold, or rows twice. `clear`: then delete the rows (next trial).
 */
async function inspect(tdb: TestDatabase, bucket: string | null, clear = false): Promise<{ rows: Row[]; problems: string[] }> {
  const rows = await withDb(tdb, async (q) => {
    const r = await q<Row>(`SELECT user_id, format, url FROM report_artifacts WHERE week_start = $1::date ORDER BY user_id, format`, [WEEK])
    if (clear) await q(`DELETE FROM report_artifacts`)
    return r
  })
  if (bucket === null) return { rows, problems: [] }
  const held = new Set(await storedKeys(bucket))
  const problems = rows.filter((r) => !held.has(keyOf(r.url, bucket))).map((r) => `row without object: ${r.user_id} ${r.url}`)
  const ids = rows.map((r) => `${r.user_id}/${r.format}`)
  if (new Set(ids).size !== ids.length) problems.push('duplicate rows')
  return { rows, problems }
}

/** The run log and any other text the runs left in the database: no planted value either. */
async function dbLeaks(tdb: TestDatabase): Promise<string[]> {
  const rows = await withDb(tdb, (q) => q<{ t: string }>(`SELECT row_to_json(r)::text AS t FROM seedops_stage_runs r`))
  return leaks(rows.map((r) => r.t).join('\n'))
}

async function seeded(kind: DbKind): Promise<{ tdb: TestDatabase; users: string[] }> {
  const tdb = await freshDatabase(kind)
  const db = await tdb.open()
  try {
    return { tdb, users: await seedReportFixture(db.pool, 3) }
  } finally {
    await db.close()
  }
}

/** Trials with at least one problem ("trial N: …"). */
const failedTrials = (bad: string[]) => new Set(bad.map((b) => b.split(':')[0])).size

const putsPerKey = (bucket: string) => {
  const m = new Map<string, number>()
  for (const r of proxy.seen) if (r.method === 'PUT' && r.bucket === bucket) m.set(r.key, (m.get(r.key) ?? 0) + 1)
  return m
}

describe(`S3 faults under generate-report (${PG})`, () => {
  let tdb: TestDatabase
  let users: string[]
  beforeAll(async () => {
    ;({ tdb, users } = await seeded(PG))
  })
  afterAll(async () => {
    await proxy.pass()
    expect(await dbLeaks(tdb)).toEqual([])
  })

  test('S3 down at start: exit 1 naming endpoint and bucket, no report_artifacts row, bounded', async () => {
    const n = s3Trials(2)
    const bad: string[] = []
    const times: number[] = []
    for (let t = 0; t < n; t++) {
      const bucket = await newBucket()
      await proxy.down()
      const r = await generate(tdb, bucket)
      await proxy.up()
      times.push(r.ms)
      const text = r.stdout + r.stderr
      if (r.code !== 1) bad.push(`trial ${t}: exit ${r.code}`)
      if (!text.includes('S3_UNREACHABLE') || !text.includes('ECONNREFUSED')) bad.push(`trial ${t}: not S3_UNREACHABLE/ECONNREFUSED: ${text.slice(0, 300)}`)
      if (!text.includes(proxy.endpoint) || !text.includes(`s3://${bucket}`)) bad.push(`trial ${t}: endpoint or bucket not named`)
      const { rows } = await inspect(tdb, null, true)
      if (rows.length) bad.push(`trial ${t}: rows written`)
      if ((await storedKeys(bucket)).length) bad.push(`trial ${t}: objects written`)
    }
    const lost = bad.filter((b) => /rows|objects/.test(b)).length
    record({ scenario: 'S3 refusing connections at start (generate-report)', trials: n, ok: n - failedTrials(bad), lost, outcome: `exit 1 S3_UNREACHABLE naming endpoint+bucket, 0 rows; run ≤ ${(Math.max(...times) / 1000).toFixed(1)} s` })
    expect(bad).toEqual([])
  })

  test('500/503/resets/cut bodies for the first 2 attempts of every request, then OK: exactly 3 attempts each, success', async () => {
    const n = s3Trials(2)
    // Two faults per request (attempt 1, attempt 2), the pair chosen per request so one trial sees them all;
    // 'drop-response' means S3 stored the object and the client never heard: the retry overwrites it.
    const mixes: [Fault, Fault][] = [
      [INTERNAL_ERROR, SLOW_DOWN],
      [{ kind: 'reset' }, { kind: 'drop-response' }],
      [{ kind: 'drop-request' }, INTERNAL_ERROR],
    ]
    const pickMix = (key: string, t: number) => mixes[([...key].reduce((h, c) => h + c.charCodeAt(0), 0) + t) % mixes.length]!
    const bad: string[] = []
    let maxPuts = 0
    const kinds = new Set<string>()
    for (let t = 0; t < n; t++) {
      const bucket = await newBucket()
      proxy.clear()
      proxy.set([{ first: ATTEMPTS - 1, fault: (i, x) => pickMix(x.key, t)[i]! }])
      const r = await generate(tdb, bucket)
      await proxy.pass()
      for (const x of proxy.seen) kinds.add(x.outcome)
      if (r.code !== 0) bad.push(`trial ${t}: exit ${r.code}: ${r.stderr.slice(0, 300)}`)
      const { rows, problems } = await inspect(tdb, bucket, true)
      if (rows.map((x) => x.user_id).join() !== users.join()) bad.push(`trial ${t}: rows for ${rows.map((x) => x.user_id).join()}`)
      bad.push(...problems.map((p) => `trial ${t}: ${p}`))
      const puts = putsPerKey(bucket)
      if (puts.size !== users.length) bad.push(`trial ${t}: PUTs for ${puts.size} keys`)
      for (const [key, c] of puts) if (c !== ATTEMPTS) bad.push(`trial ${t}: ${c} PUTs of ${key}`)
      maxPuts = Math.max(maxPuts, ...puts.values())
      const heads = proxy.seen.filter((x) => x.method === 'HEAD' && x.bucket === bucket && x.key === '').length
      if (heads !== ATTEMPTS) bad.push(`trial ${t}: ${heads} bucket checks`)
    }
    expect([...kinds].sort()).toEqual(['drop-request', 'drop-response', 'pass', 'reset', 'status'])
    const lost = bad.filter((b) => /row|object/.test(b)).length
    record({ scenario: 'S3 500/503/reset/cut body ×2 per request, then OK', trials: n, ok: n - failedTrials(bad), lost, outcome: `exit 0, all ${users.length} rows; PUTs per object ${maxPuts} = S3_MAX_ATTEMPTS ${ATTEMPTS}` })
    expect(bad).toEqual([])
  })

  test('slow S3 (beyond S3_REQUEST_TIMEOUT_MS): each attempt ends at the timeout, exit 1 naming it and the object', async () => {
    const n = s3Trials(2)
    const timeoutMs = 700
    const attempts = 2
    const bound = attempts * timeoutMs + 4_000
    // A pass-through run in the same conditions: what process start and rendering cost here.
    const base = await generate(tdb, await newBucket())
    expect(base.code, base.stderr).toBe(0)
    await inspect(tdb, null, true)
    const bad: string[] = []
    let worst = 0
    for (let t = 0; t < n; t++) {
      const bucket = await newBucket()
      proxy.clear()
      // Alternate: an answer 10× too late, and none at all (without a thrown request timeout that one hangs for good).
      proxy.set([{ match: (x) => x.method === 'PUT', fault: t % 2 ? { kind: 'hang' } : { kind: 'delay', ms: 10 * timeoutMs } }])
      const r = await generate(tdb, bucket, { S3_REQUEST_TIMEOUT_MS: String(timeoutMs), S3_MAX_ATTEMPTS: String(attempts) })
      await proxy.pass()
      const extra = r.ms - base.ms
      worst = Math.max(worst, extra)
      const text = r.stdout + r.stderr
      if (r.code !== 1) bad.push(`trial ${t}: exit ${r.code}`)
      if (!text.includes('S3_TIMEOUT') || !text.includes(`within ${timeoutMs} ms (S3_REQUEST_TIMEOUT_MS)`) || !text.includes(`(${attempts} attempts)`)) bad.push(`trial ${t}: timeout not named: ${text.slice(0, 400)}`)
      if (!new RegExp(`s3://${bucket}/reports/[^ ]+/${WEEK}/report\\.html`).test(text)) bad.push(`trial ${t}: object not named`)
      const puts = putsPerKey(bucket)
      if (puts.size === 0) bad.push(`trial ${t}: no PUT reached the proxy`)
      for (const [key, c] of puts) if (c !== attempts) bad.push(`trial ${t}: ${c} PUTs of ${key}`)
      // The timed-out wave (≤ --concurrency objects at once) costs attempts × timeout plus backoff; nothing waits 10× the timeout.
      if (extra > bound) bad.push(`trial ${t}: ${Math.round(extra)} ms beyond the pass-through run`)
      const { problems } = await inspect(tdb, bucket, true)
      bad.push(...problems.map((p) => `trial ${t}: ${p}`))
    }
    const lost = bad.filter((b) => /row without|duplicate/.test(b)).length
    record({ scenario: `S3 slow (delay 10× / hang) past S3_REQUEST_TIMEOUT_MS=${timeoutMs}`, trials: n, ok: n - failedTrials(bad), lost, outcome: `exit 1 S3_TIMEOUT named, ${attempts} PUTs/object (S3_MAX_ATTEMPTS ${attempts}), +${(worst / 1000).toFixed(1)} s over pass-through (bound ${(bound / 1000).toFixed(1)})` })
    expect(bad).toEqual([])
  })
})

describe.each(DB_KINDS)('S3 failing for some objects, then back (%s)', (kind) => {
  let tdb: TestDatabase
  let users: string[]
  beforeAll(async () => {
    ;({ tdb, users } = await seeded(kind))
  })
  afterAll(async () => {
    await proxy.pass()
    expect(await dbLeaks(tdb)).toEqual([])
  })

  test('exit 1 naming the failed user, rows only for stored objects; the re-run fills exactly the gaps', async () => {
    // The embedded database costs seconds per process start on a busy machine: one trial there in CI.
    const n = s3Trials(kind === 'postgres' ? 2 : 1)
    // 500 and 503 fail that user's object only; a lost response (S3 stored it, the client never heard) ends the run early as "unreachable".
    const faults: Fault[] = [INTERNAL_ERROR, { kind: 'drop-response' }, SLOW_DOWN]
    const bad: string[] = []
    const gaps: number[] = []
    const used = new Set<string>()
    for (let t = 0; t < n; t++) {
      const bucket = await newBucket()
      const fault = faults[(t + (kind === 'postgres' ? 0 : 1)) % faults.length]!
      used.add(fault.kind === 'status' ? String(fault.status) : 'lost response')
      proxy.clear()
      proxy.set([{ match: (x) => x.method === 'PUT' && x.key.startsWith('reports/bob/'), fault }])
      const r1 = await generate(tdb, bucket)
      await proxy.pass()
      const text = r1.stdout + r1.stderr
      if (r1.code !== 1) bad.push(`trial ${t}: first run exit ${r1.code}`)
      const failures = r1.doc?.result?.summary?.failures ?? []
      if (!failures.some((f) => f.user_id === 'bob' && f.error.includes(`s3://${bucket}/reports/bob/${WEEK}/report.html`))) bad.push(`trial ${t}: bob's object not named: ${text.slice(0, 400)}`)
      const bobPuts = proxy.count('PUT', 'reports/bob/')
      if (bobPuts !== ATTEMPTS) bad.push(`trial ${t}: ${bobPuts} PUTs of bob's object (S3_MAX_ATTEMPTS ${ATTEMPTS})`)
      for (const [key, c] of putsPerKey(bucket)) if (c > ATTEMPTS) bad.push(`trial ${t}: ${c} PUTs of ${key}`)
      const first = await inspect(tdb, bucket)
      bad.push(...first.problems.map((p) => `trial ${t}: after the failed run: ${p}`))
      if (first.rows.some((x) => x.user_id === 'bob')) bad.push(`trial ${t}: a row for bob`)
      const etags = new Map<string, string | null>()
      for (const row of first.rows) etags.set(row.user_id, await headEtag(bucket, keyOf(row.url, bucket)))
      gaps.push(users.length - first.rows.length)

      proxy.clear()
      const r2 = await generate(tdb, bucket)
      if (r2.code !== 0) bad.push(`trial ${t}: re-run exit ${r2.code}: ${r2.stderr.slice(0, 300)}`)
      const after = await inspect(tdb, bucket, true)
      if (after.rows.map((x) => x.user_id).join() !== users.join()) bad.push(`trial ${t}: rows after the re-run: ${after.rows.map((x) => x.user_id).join()}`)
      bad.push(...after.problems.map((p) => `trial ${t}: after the re-run: ${p}`))
      const keys = await storedKeys(bucket)
      if (keys.join() !== after.rows.map((x) => keyOf(x.url, bucket)).sort().join()) bad.push(`trial ${t}: objects ${keys.join()} ≠ rows`)
      // The already stored ones are overwritten with the same bytes (one PUT each): idempotent.
      for (const [key, c] of putsPerKey(bucket)) if (c !== 1) bad.push(`trial ${t}: re-run PUT ${key} ${c}×`)
      for (const row of first.rows) if ((await headEtag(bucket, keyOf(row.url, bucket))) !== etags.get(row.user_id)) bad.push(`trial ${t}: ${row.user_id}'s object changed on the re-run`)
      const bob = after.rows.find((x) => x.user_id === 'bob')
      if (bob) {
        const body = await s3.client.send(new GetObjectCommand({ Bucket: bucket, Key: keyOf(bob.url, bucket) }))
        if (!(await body.Body!.transformToString()).includes('Weekly learning report')) bad.push(`trial ${t}: bob's object is not his report`)
      }
    }
    const lost = bad.filter((b) => /row without|duplicate|rows after|≠/.test(b)).length
    record({
      scenario: `S3 failing one user's PUTs, then back (${kind})`,
      trials: n,
      ok: n - failedTrials(bad),
      lost,
      outcome: `faults ${[...used].join('/')}: exit 1 naming bob, ${ATTEMPTS} PUTs of his object, rows only for stored (gaps ${Math.min(...gaps)}–${Math.max(...gaps)} of ${users.length}); re-run exit 0 fills them, 1 PUT/object, same ETags`,
    })
    expect(bad).toEqual([])
  })
})

test('a bad S3_MAX_ATTEMPTS / S3_REQUEST_TIMEOUT_MS is a usage error naming the variable (exit 2), before any request', async () => {
  const tdb = await freshDatabase(PG)
  proxy.clear()
  for (const [name, value] of [['S3_MAX_ATTEMPTS', '0'], ['S3_REQUEST_TIMEOUT_MS', 'soon']] as const) {
    const r = await generate(tdb, 'any-bucket', { [name]: value })
    expect(r.code, r.stdout + r.stderr).toBe(2)
    expect(r.stdout + r.stderr).toContain(name)
  }
  expect(proxy.seen).toEqual([])
})

test('no planted S3 credential in any output of these runs', () => {
  expect(outputs.length).toBeGreaterThan(0)
  expect(leaks(outputs.join('\n'))).toEqual([])
})
