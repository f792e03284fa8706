import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { ensureSecrets, parseEnvFile, SECRET_SPECS } from '../../src/lib/kube/secrets.js'
import { findResource, startStandin, type Standin } from '../support/kube-standin/index.js'
import { runCli, runCliOnPty } from '../support/cli.js'
import { clientsFor, kubeEnv } from './helpers.js'

const DB_PASSWORD = 'pg-Zq81xYvTk3'
const VALUES = {
  DATABASE_URL: `postgres://seed:${DB_PASSWORD}@db.internal:5432/seedtest`,
  R_IRT_INTERNAL_TOKEN: 'irt-token-9f8e7d6c5b4a',
  AWS_ACCESS_KEY_ID: 'AKIAEXAMPLE7Q2W3E4R',
  AWS_SECRET_ACCESS_KEY: 'wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY',
  S3_BUCKET: 'seedtest-reports',
  AWS_REGION: 'eu-central-1',
}
const SECRET_VALUES = [DB_PASSWORD, VALUES.DATABASE_URL, VALUES.R_IRT_INTERNAL_TOKEN, VALUES.AWS_ACCESS_KEY_ID, VALUES.AWS_SECRET_ACCESS_KEY]
const b64 = (s: string) => Buffer.from(s).toString('base64')

/** Fails when any secret value (or its base64 form, as a Secret carries it) appears in the text. */
function expectNoSecrets(text: string) {
  for (const v of SECRET_VALUES) {
    expect(text).not.toContain(v)
    expect(text).not.toContain(b64(v))
  }
}

let s: Standin
let n = 0
const SECRETS = () => findResource('', 'v1', 'secrets')!
const CMS = () => findResource('', 'v1', 'configmaps')!
function freshNamespace(): string {
  const ns = `sec-${++n}`
  s.seed({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } })
  return ns
}
const writes = (ns: string) => s.api.requests.filter((r) => ['POST', 'PATCH', 'PUT'].includes(r.method) && r.path.includes(`/namespaces/${ns}/`))

beforeAll(async () => {
  s = await startStandin()
})
afterAll(() => s?.stop())

describe('seedops secrets ensure', { timeout: 180_000 }, () => {
  test('creates the three secrets and the config map once (--json names keys, never values); a second run writes nothing', async () => {
    const ns = freshNamespace()
    const first = await runCli(['secrets', 'ensure', '-n', ns, '--json'], { env: { ...kubeEnv(s), ...VALUES } })
    expect(first.code).toBe(0)
    expectNoSecrets(first.stdout + first.stderr)
    expect(JSON.parse(first.stdout).result.items).toEqual([
      { kind: 'Secret', name: 'seedtest-db-credentials', action: 'created', keys: ['DATABASE_URL'], missingKeys: [] },
      { kind: 'Secret', name: 'r-irt-credentials', action: 'created', keys: ['token'], missingKeys: [] },
      { kind: 'Secret', name: 'aws-s3-credentials', action: 'created', keys: ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY'], missingKeys: [] },
      { kind: 'ConfigMap', name: 'report-config', action: 'created', keys: ['S3_BUCKET', 'AWS_REGION'], missingKeys: [] },
    ])
    const db = s.api.store.get(SECRETS(), ns, 'seedtest-db-credentials')
    expect(Buffer.from(db.data.DATABASE_URL, 'base64').toString()).toBe(VALUES.DATABASE_URL)
    expect(Buffer.from(s.api.store.get(SECRETS(), ns, 'r-irt-credentials').data.token, 'base64').toString()).toBe(VALUES.R_IRT_INTERNAL_TOKEN)
    expect(Object.keys(s.api.store.get(SECRETS(), ns, 'aws-s3-credentials').data).sort()).toEqual(['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY'])
    expect(s.api.store.get(CMS(), ns, 'report-config').data).toEqual({ S3_BUCKET: 'seedtest-reports', AWS_REGION: 'eu-central-1' })
    expect(writes(ns)).toHaveLength(4)

    const again = await runCli(['secrets', 'ensure', '-n', ns], { env: { ...kubeEnv(s), ...VALUES } })
    expect(again.code).toBe(0)
    expect(again.stdout).toMatch(/seedtest-db-credentials\s+exists/)
    expect(again.stdout).toMatch(/report-config\s+exists/)
    expect(writes(ns)).toHaveLength(4)
    expectNoSecrets(again.stdout + again.stderr)
  })

  test('a missing value without a terminal is a usage error naming the variable; nothing is written', async () => {
    const ns = freshNamespace()
    const r = await runCli(['secrets', 'ensure', '-n', ns, '--only', 'irt'], { env: { ...kubeEnv(s), R_IRT_INTERNAL_TOKEN: undefined, IRT_TOKEN: undefined } })
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('Error (SECRET_VALUE_MISSING): no value for r-irt-credentials/token')
    expect(r.stderr).toContain('Set R_IRT_INTERNAL_TOKEN in the environment')
    expect(writes(ns)).toHaveLength(0)
  })

  test('values from stdin (--from-env-file -) with --dry-run client: redacted manifests, no writes', async () => {
    const ns = freshNamespace()
    const envFile = `# from the vault\nexport DATABASE_URL="${VALUES.DATABASE_URL}"\nR_IRT_INTERNAL_TOKEN=${VALUES.R_IRT_INTERNAL_TOKEN}\n`
    const dry = await runCli(['secrets', 'ensure', '-n', ns, '--only', 'db', '--only', 'irt', '--from-env-file', '-', '--dry-run', 'client'], { env: { ...kubeEnv(s), DATABASE_URL: undefined }, input: envFile })
    expect(dry.code).toBe(0)
    expect(dry.stdout).toContain('name: seedtest-db-credentials')
    expect(dry.stdout).toContain('DATABASE_URL: "[REDACTED]"')
    expect(dry.stdout).toContain('token: "[REDACTED]"')
    expectNoSecrets(dry.stdout + dry.stderr)
    expect(writes(ns)).toHaveLength(0)
    // The same file, for real (library call: the CLI path is the same code).
    const values = parseEnvFile(envFile)
    expect(values).toEqual({ DATABASE_URL: VALUES.DATABASE_URL, R_IRT_INTERNAL_TOKEN: VALUES.R_IRT_INTERNAL_TOKEN })
    const r = await ensureSecrets(clientsFor(s, ns), { only: ['db', 'irt'], values })
    expect(r.items.map((i) => i.action)).toEqual(['created', 'created'])
    expect(Buffer.from(s.api.store.get(SECRETS(), ns, 'seedtest-db-credentials').data.DATABASE_URL, 'base64').toString()).toBe(VALUES.DATABASE_URL)
  })

  test('an existing secret is left alone, reported incomplete when it lacks a key, and merged into only with --update', async () => {
    const ns = freshNamespace()
    s.seed({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'aws-s3-credentials', namespace: ns }, data: { AWS_ACCESS_KEY_ID: b64('OLDKEYID12345'), EXTRA: b64('keep-me') } })
    const r = await runCli(['secrets', 'ensure', '-n', ns, '--only', 's3'], { env: { ...kubeEnv(s), ...VALUES } })
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/aws-s3-credentials\s+incomplete/)
    expect(r.stderr).toContain('lacks AWS_SECRET_ACCESS_KEY; add them with --update')
    expectNoSecrets(r.stdout + r.stderr)
    expect(writes(ns)).toHaveLength(0)
    const u = await ensureSecrets(clientsFor(s, ns), { only: ['s3'], values: VALUES, update: true })
    expect(u.items).toEqual([{ kind: 'Secret', name: 'aws-s3-credentials', action: 'updated', keys: ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY'], missingKeys: [] }])
    const data = s.api.store.get(SECRETS(), ns, 'aws-s3-credentials').data
    expect(Buffer.from(data.AWS_SECRET_ACCESS_KEY, 'base64').toString()).toBe(VALUES.AWS_SECRET_ACCESS_KEY)
    expect(Buffer.from(data.AWS_ACCESS_KEY_ID, 'base64').toString()).toBe(VALUES.AWS_ACCESS_KEY_ID)
    expect(Buffer.from(data.EXTRA, 'base64').toString()).toBe('keep-me')
    const patch = s.api.requests.filter((x) => x.method === 'PATCH' && x.path.endsWith(`/namespaces/${ns}/secrets/aws-s3-credentials`))
    expect(patch.map((x) => x.contentType)).toEqual(['application/merge-patch+json'])
  })

  test('prompt path: missing values are asked for (secret ones masked), with the defaults offered', async () => {
    const ns = freshNamespace()
    const asked: { message: string; secret: boolean; default?: string }[] = []
    const answers: Record<string, string> = { token: 'typed-token-123456', S3_BUCKET: 'typed-bucket', AWS_REGION: 'us-east-1' }
    const r = await ensureSecrets(clientsFor(s, ns), {
      only: ['irt', 'report-config'],
      values: {},
      prompt: async (q) => {
        asked.push(q)
        return answers[Object.keys(answers).find((k) => q.message.includes(` ${k} `))!]
      },
    })
    expect(r.items.map((i) => i.action)).toEqual(['created', 'created'])
    expect(asked.map((q) => [q.message.split(' (')[0], q.secret, q.default])).toEqual([
      ['r-irt-credentials token', true, undefined],
      ['report-config S3_BUCKET', false, undefined],
      ['report-config AWS_REGION', false, 'us-east-1'],
    ])
    expect(Buffer.from(s.api.store.get(SECRETS(), ns, 'r-irt-credentials').data.token, 'base64').toString()).toBe('typed-token-123456')
    expect(SECRET_SPECS.map((x) => x.name)).toEqual(['seedtest-db-credentials', 'r-irt-credentials', 'aws-s3-credentials', 'report-config'])
  })

  test('prompt path on a real pseudo-terminal: asked for the token, typed characters masked, never shown', async () => {
    const ns = freshNamespace()
    const typed = 'typed-on-a-tty-7Hq2'
    const r = await runCliOnPty(['secrets', 'ensure', '--only', 'irt', '-n', ns], [['r-irt-credentials token', typed]], { env: { ...kubeEnv(s), R_IRT_INTERNAL_TOKEN: undefined, IRT_TOKEN: undefined } })
    expect(r.stdout).toContain('<<answered>>')
    expect(r.status).toBe(0)
    expect(r.stdout).toMatch(/r-irt-credentials\s+created/)
    expect(r.stdout).not.toContain(typed)
    expect(r.stdout).toContain('*'.repeat(typed.length))
    expect(Buffer.from(s.api.store.get(SECRETS(), ns, 'r-irt-credentials').data.token, 'base64').toString()).toBe(typed)
  })

  test('a missing namespace is reported with the command that lists namespaces', async () => {
    const e = await ensureSecrets(clientsFor(s, 'no-such-ns'), { only: ['irt'], values: VALUES }).catch((x) => x)
    expect(e).toMatchObject({ code: 'KUBE_NAMESPACE_NOT_FOUND', message: 'namespace no-such-ns does not exist' })
    expect(e.suggestions).toContain('See what exists: kubectl get namespaces')
  })
})
