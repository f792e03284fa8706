import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, onTestFinished, test } from 'vitest'
import { ROOT, runCli, type CliResult } from '../support/cli.js'
import { DB_KINDS, freshDatabase, type TestDatabase } from '../support/db.js'
import { startStandin, type Standin } from '../support/kube-standin/index.js'
import { kubeEnv } from '../kube/helpers.js'
import { manifestsFor, newNamespace, seedAll } from '../doctor/helpers.js'
import { startS3, type TestS3 } from '../reports/s3.js'
import { CreateBucketCommand } from '@aws-sdk/client-s3'
import { PLANTED, SecretLeakError, scanTotals, secretsOf, findLeaks } from './support/secret-scan.js'
import { record } from './support/table.js'

/**
 * Issue 13 item 8: every CLI run of the suite is scanned for secrets by test/support/cli.ts. This file runs a
 * broad sample of commands — every stage, verify, status, doctor and jobs against the Kubernetes stand-in, db
 * status/migrate with good and bad URLs, irt serve refusals, secrets ensure dry runs, the IRT CLI, failing S3
 * and Pushgateway calls — with the planted secrets in the environment, in flags, on stdin and in the cluster's
 * Secrets, and records how many runs were scanned (every one must have 0 hits: a hit fails the run's test).
 * It also shows the scan can fail: a command that echoes a flag value, fed a planted value, is caught.
 */

const DATE = '2026-11-18'
const base = DB_KINDS.includes('postgres') ? 'postgres' : 'embedded'
/** The secrets the cluster holds (never in the CLI's env): doctor/status/secrets read them, must not print them. */
const CLUSTER = {
  'cluster DATABASE_URL password': PLANTED.DB_PASSWORD,
  'cluster token': PLANTED.IRT_TOKEN,
  'cluster AWS_ACCESS_KEY_ID': PLANTED.S3_ACCESS_KEY_ID,
  'cluster AWS_SECRET_ACCESS_KEY': PLANTED.S3_SECRET_ACCESS_KEY,
}
const b64 = (v: string) => Buffer.from(v).toString('base64')

let t: TestDatabase
let s3: TestS3
let k: Standin
let dir: string
let scanFile: string
const NS = 'secrets-scan'
let runs = 0

/** One scanned run (runCli scans; a leak rejects). Counts what this file scanned. */
async function run(args: string[], env: Record<string, string | undefined> = {}, input?: string): Promise<CliResult> {
  const r = await runCli(args, { env: { ...envBase(), ...env }, input, secrets: CLUSTER, timeoutMs: 180_000 })
  runs++
  return r
}

async function inPool(n: number, tasks: (() => Promise<unknown>)[]): Promise<void> {
  let next = 0
  await Promise.all(Array.from({ length: n }, async () => {
    while (next < tasks.length) await tasks[next++]!()
  }))
}

function envBase(): Record<string, string> {
  return {
    ...t.env,
    ...s3.env,
    ...kubeEnv(k),
    SEEDOPS_NAMESPACE: NS,
    R_IRT_INTERNAL_TOKEN: PLANTED.IRT_TOKEN,
    AWS_SESSION_TOKEN: 'planted-session-token-suite-77Qa',
    // A Pushgateway that is not there, with credentials in its URL: every stage warns, quoting the URL.
    PUSHGATEWAY_URL: `http://pusher:${PLANTED.DB_PASSWORD}x@127.0.0.1:9`,
  }
}

beforeAll(async () => {
  // This file's own count of scanned runs (SECRET_SCAN_FILE set by the fault-suite script is the suite's).
  dir = mkdtempSync(join(tmpdir(), 'seedops-secrets-'))
  scanFile = process.env.SECRET_SCAN_FILE ?? join(dir, 'scan.jsonl')
  process.env.SECRET_SCAN_FILE = scanFile
  t = await freshDatabase(base)
  s3 = await startS3([])
  await s3.client.send(new CreateBucketCommand({ Bucket: 'scan-reports' }))
  k = await startStandin()
  newNamespace(k, NS)
  seedAll(k, manifestsFor(NS))
  k.seed({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'seedtest-db-credentials', namespace: NS }, type: 'Opaque', data: { DATABASE_URL: b64(`postgres://seed:${PLANTED.DB_PASSWORD}@db.internal:5432/seedtest`) } })
  k.seed({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'r-irt-credentials', namespace: NS }, type: 'Opaque', data: { token: b64(PLANTED.IRT_TOKEN) } })
  k.seed({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'aws-s3-credentials', namespace: NS }, type: 'Opaque', data: { AWS_ACCESS_KEY_ID: b64(PLANTED.S3_ACCESS_KEY_ID), AWS_SECRET_ACCESS_KEY: b64(PLANTED.S3_SECRET_ACCESS_KEY) } })
  k.seed({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'report-config', namespace: NS }, data: { S3_BUCKET: 'scan-reports', AWS_REGION: 'us-east-1' } })
})
afterAll(async () => {
  await s3?.close()
  k?.stop()
  rmSync(dir, { recursive: true, force: true })
})

describe('secrets never leak (planted in env, flags, stdin and the cluster)', { timeout: 600_000 }, () => {
  test('every stage, verify, status, doctor, db, irt, secrets, jobs and schedule command: 0 hits', async () => {
    const before = runs
    const codes: Record<string, number | null> = {}
    const at = async (name: string, args: string[], env: Record<string, string | undefined> = {}, input?: string) => {
      const r = await run(args, env, input)
      codes[name] = r.code
      return r
    }
    // Data, then each stage: human and LOG_FORMAT=json output, --json documents.
    await at('demo seed', ['demo', 'seed', '--learners', '40', '--items', '30', '--days', '21', '--date', DATE, '--seed', '7'])
    for (const stage of ['aggregate-features', 'compute-kpis', 'detect-inactivity', 'calibrate-irt', 'update-theta']) {
      await at(`run ${stage}`, ['run', stage, '--date', DATE, ...(stage === 'calibrate-irt' ? ['--allow-non-converged'] : []), ...(stage === 'update-theta' ? ['--user', 'learner-00001'] : [])], { LOG_FORMAT: 'json' })
    }
    await at('run compute-kpis --json', ['run', 'compute-kpis', '--date', DATE, '--json', '--verbose'])
    await at('run generate-report s3', ['run', 'generate-report', '--date', DATE, '--store', 's3', '--bucket', 'scan-reports', '--user', 'learner-00001'], { LOG_FORMAT: 'json' })
    // The rest is independent of each other: three at a time.
    const tasks: (() => Promise<unknown>)[] = []
    const later = (f: () => Promise<unknown>) => tasks.push(f)
    later(() => at('run generate-report wrong S3 secret', ['run', 'generate-report', '--date', DATE, '--store', 's3', '--bucket', 'scan-reports', '--user', 'learner-00002'], { AWS_SECRET_ACCESS_KEY: 'wrong-planted-S3-secret-Zp41', S3_MAX_ATTEMPTS: '1' }))
    later(() => at('run generate-report S3 down', ['run', 'generate-report', '--date', DATE, '--store', 's3', '--bucket', 'scan-reports', '--user', 'learner-00003'], { AWS_ENDPOINT_URL: 'http://127.0.0.1:9', S3_MAX_ATTEMPTS: '1' }))
    later(() => at('run daily dry-run', ['run', 'daily', '--date', DATE, '--dry-run'], { LOG_FORMAT: 'json' }))
    later(() => at('verify all', ['verify', 'all', '--date', DATE, '--json']))
    later(() => at('verify theta', ['verify', 'theta', '--date', DATE]))
    later(() => at('status', ['status']))
    later(() => at('status --json', ['status', '--json']))
    later(() => at('doctor', ['doctor', '--json']))
    later(() => at('doctor human', ['doctor', '--only', 'database,cluster']))
    later(() => at('jobs list', ['jobs', 'list']))
    later(() => at('schedule get', ['schedule', 'get', '--json']))
    later(() => at('deploy dry-run', ['deploy', '--dry-run', 'server']))
    later(() => at('adopt plan', ['adopt', '--json']))
    // Databases: the good one, then wrong user, wrong database, refused port, a flag URL over the env one.
    later(() => at('db status', ['db', 'status', '--json']))
    later(() => at('db migrate', ['db', 'migrate']))
    if (t.env.DATABASE_URL) {
      const u = new URL(t.env.DATABASE_URL)
      const bad = (f: (x: URL) => void) => {
        const x = new URL(u)
        f(x)
        return x.toString()
      }
      later(() => at('db status bad user', ['db', 'status'], { DATABASE_URL: bad((x) => (x.username = 'no_such_role')) }))
      later(() => at('db status bad db', ['db', 'status', '--json'], { DATABASE_URL: bad((x) => (x.pathname = '/no_such_db')) }))
      later(() => at('db status refused', ['db', 'status', '--database-url', bad((x) => (x.port = '9'))]))
      later(() => at('stage refused', ['run', 'compute-kpis', '--date', DATE], { DATABASE_URL: bad((x) => (x.port = '9')), LOG_FORMAT: 'json' }))
      later(() => at('db status sslmode', ['db', 'status'], { DATABASE_URL: bad((x) => x.searchParams.set('sslmode', 'require')) }))
    }
    later(() => at('db status malformed', ['db', 'status', '--database-url', `postgres://u:${PLANTED.DB_PASSWORD}@127.0.0.1:notaport/x`]))
    later(() => at('db status not postgres', ['db', 'status'], { DATABASE_URL: `mysql://root:${PLANTED.DB_PASSWORD}@127.0.0.1/x` }))
    // irt serve refusals (each exits before listening), the IRT CLI on a small file.
    later(() => at('irt serve bad port', ['irt', 'serve', '--port', 'notaport']))
    later(() => at('irt serve bad workers', ['irt', 'serve', '--workers', '0', '--port', '0']))
    later(() => at('irt serve no token', ['irt', 'serve', '--port', '0', '--metrics-port', '0', '--no-with-db'], { R_IRT_INTERNAL_TOKEN: undefined, IRT_TOKEN: undefined }))
    later(() => at('irt serve port out of range', ['irt', 'serve', '--port', '99999', '--no-with-db'], { LOG_FORMAT: 'json' }))
    const csv = join(ROOT, 'test', 'fixtures', 'irt', 'sim2pl-complete', 'responses.csv')
    const params = join(dir, 'items.csv')
    later(async () => {
      await at('irt calibrate', ['irt', 'calibrate', '-i', csv, '-o', params, '--json', '--max-cycles', '30'])
      await at('irt score', ['irt', 'score', '-p', params, '-i', csv, '-o', join(dir, 'scores.csv')])
    })
    later(() => at('irt history', ['irt', 'history', '--json']))
    // secrets ensure: dry runs with the values from stdin and from the environment.
    const envFile = `DATABASE_URL=postgres://seed:${PLANTED.DB_PASSWORD}@db.internal:5432/seedtest\nR_IRT_INTERNAL_TOKEN=${PLANTED.IRT_TOKEN}\nAWS_ACCESS_KEY_ID=${PLANTED.S3_ACCESS_KEY_ID}\nAWS_SECRET_ACCESS_KEY=${PLANTED.S3_SECRET_ACCESS_KEY}\nS3_BUCKET=scan-reports\nAWS_REGION=us-east-1\n`
    later(() => at('secrets ensure client dry-run', ['secrets', 'ensure', '--dry-run', 'client', '--update', '--from-env-file', '-', '--no-prompt'], {}, envFile))
    later(() => at('secrets ensure server dry-run', ['secrets', 'ensure', '--dry-run', 'server', '--update', '--from-env-file', '-', '--no-prompt', '--json'], {}, envFile))
    const file = join(dir, 'secrets.env')
    writeFileSync(file, envFile.replace('S3_BUCKET=scan-reports\n', ''))
    later(() => at('secrets ensure missing key', ['secrets', 'ensure', '--from-env-file', file, '--no-prompt', '--update', '--only', 'report-config']))

    await inPool(3, tasks)

    // The stages did run (the sample is meaningful): exit 0 where they should, failures where they should.
    for (const n of ['demo seed', 'run aggregate-features', 'run compute-kpis', 'run detect-inactivity', 'run calibrate-irt', 'run update-theta', 'run generate-report s3', 'db status', 'irt calibrate', 'irt score', 'secrets ensure client dry-run']) {
      expect(codes[n], n).toBe(0)
    }
    for (const n of ['run generate-report S3 down', 'db status malformed', 'irt serve bad port', 'irt serve no token']) expect(codes[n], n).not.toBe(0)
    if (t.env.DATABASE_URL) for (const n of ['db status bad user', 'db status bad db', 'db status refused', 'stage refused']) expect(codes[n], n).toBe(1)

    const total = scanTotals(readFileSync(scanFile, 'utf8'))
    expect(total.hits).toBe(0)
    const sample = runs - before
    record({ scenario: 'secret scan: sample of every command, planted secrets', trials: sample, ok: sample, lost: 0, outcome: `${sample} runs scanned (stdout, stderr, --json, LOG_FORMAT=json), 0 hits` })
  })

  test('the scan can fail: a planted value echoed by a command is caught and named, its value not shown', async () => {
    // These runs leak on purpose: they are not counted into the suite's scan file.
    const file = process.env.SECRET_SCAN_FILE
    delete process.env.SECRET_SCAN_FILE
    onTestFinished(() => {
      process.env.SECRET_SCAN_FILE = file
    })
    // oclif quotes a bad integer back ("Expected an integer but received: …"): fine for a number, a leak for a secret.
    const e = await runCli(['run', 'aggregate-features', '--lookback-days', PLANTED.IRT_TOKEN], { env: { ...t.env } }).catch((x) => x)
    expect(e).toBeInstanceOf(SecretLeakError)
    expect(e.message).toContain('planted IRT_TOKEN')
    expect(e.message).toContain('seedops run aggregate-features')
    expect(e.message).not.toContain(PLANTED.IRT_TOKEN)
    // An env secret the test passes, echoed through a flag.
    const mine = 'my-own-test-secret-9QxW'
    const e2 = await runCli(['run', 'compute-kpis', '--churn-horizon-days', mine], { env: { ...t.env, SOME_API_TOKEN: mine } }).catch((x) => x)
    expect(e2).toBeInstanceOf(SecretLeakError)
    expect(e2.message).toContain('SOME_API_TOKEN')
    expect(e2.message).not.toContain(mine)
    // The same value under a name that is not secret-looking, or shorter than 8 characters: not a secret.
    const ok = await runCli(['run', 'compute-kpis', '--churn-horizon-days', mine], { env: { ...t.env, SOME_LABEL: mine } })
    expect(ok.code).toBe(2)
    expect(ok.stderr).toContain(mine)
    // What is looked for: URL passwords (raw and percent-encoded), env-file lines on stdin.
    const found = secretsOf({ X_URL: 'postgres://u:p%40ssw0rd-long@h/db' }, [], 'export API_SECRET="from-stdin-secret"\n')
    expect(findLeaks('…p@ssw0rd-long…', found)).toEqual(['password in X_URL'])
    expect(findLeaks('…from-stdin-secret…', found)).toEqual(['API_SECRET on stdin'])
  })
})
