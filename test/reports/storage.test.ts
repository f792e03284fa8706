import { existsSync, mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { S3Client } from '@aws-sdk/client-s3'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { SeedopsError } from '../../src/lib/errors/index.js'
import { LocalStore, S3Store, keySegment, openStore, parseObjectUrl, reportKey, resolveStoreConfig } from '../../src/lib/storage/index.js'
import { startS3, type TestS3 } from './s3.js'

let s3: TestS3
beforeAll(async () => {
  s3 = await startS3(['reports'])
})
afterAll(async () => {
  await s3?.close()
})

describe('keys', () => {
  test('reports/{user}/{week}/report.{fmt}, user ids cannot add or climb path levels', () => {
    expect(reportKey('u-42', '2026-11-16', 'html')).toBe('reports/u-42/2026-11-16/report.html')
    expect(reportKey('a/b', '2026-11-16', 'pdf')).toBe('reports/a%2Fb/2026-11-16/report.pdf')
    expect(keySegment('..')).toBe('%2E%2E')
    expect(keySegment('.')).toBe('%2E')
    expect(keySegment('<script>')).toBe('%3Cscript%3E')
    expect(keySegment('a b*')).toBe('a%20b%2A')
  })

  test('URLs parse back; malformed ones are rejected', () => {
    expect(parseObjectUrl('s3://bucket/reports/u/2026-11-16/report.html')).toEqual({ kind: 's3', bucket: 'bucket', key: 'reports/u/2026-11-16/report.html' })
    expect(parseObjectUrl('file:///tmp/x/report.html')).toEqual({ kind: 'file', path: '/tmp/x/report.html' })
    for (const bad of ['', 'not a url', 'http://example.com/x', 's3://bucket', 's3://bucket/a//b', 's3://bucket/../x', 'file://host/x']) expect(parseObjectUrl(bad)).toBeNull()
  })
})

describe('store config', () => {
  test('flags > env > default; S3 when S3_BUCKET is set; endpoint implies path style', () => {
    expect(resolveStoreConfig({}, { SEEDOPS_HOME: '/h' })).toEqual({ kind: 'local', dir: '/h/reports' })
    expect(resolveStoreConfig({}, { REPORT_OUT_DIR: '/o' })).toEqual({ kind: 'local', dir: '/o' })
    expect(resolveStoreConfig({ outDir: '/f' }, { S3_BUCKET: 'b' })).toEqual({ kind: 'local', dir: '/f' })
    expect(resolveStoreConfig({}, { S3_BUCKET: 'b', AWS_REGION: 'eu-central-1' })).toEqual({ kind: 's3', bucket: 'b', region: 'eu-central-1', endpoint: undefined, forcePathStyle: false })
    expect(resolveStoreConfig({}, { S3_BUCKET: 'b', S3_ENDPOINT: 'http://minio:9000' })).toMatchObject({ kind: 's3', endpoint: 'http://minio:9000', forcePathStyle: true, region: 'us-east-1' })
    expect(() => resolveStoreConfig({ store: 's3' }, {})).toThrow(/no bucket/)
    expect(() => resolveStoreConfig({ store: 'ftp' }, {})).toThrow(/not a store kind/)
  })
})

describe('local store', () => {
  test('round trip, atomic overwrite, file:// URL of an absolute path', async () => {
    const root = mkdtempSync(join(tmpdir(), 'store-'))
    const store = new LocalStore(root)
    await store.check()
    const key = reportKey('<script>', '2026-11-16', 'html')
    const r1 = await store.put(key, Buffer.from('one'), 'text/html')
    const r2 = await store.put(key, Buffer.from('two!'), 'text/html')
    expect(r2.url).toBe(r1.url)
    expect(r1.url.startsWith('file:///')).toBe(true)
    const path = fileURLToPath(r1.url)
    expect(path.startsWith(root)).toBe(true)
    expect(readFileSync(path, 'utf8')).toBe('two!')
    expect(await store.exists(key)).toBe(true)
    expect(await store.exists(reportKey('nobody', '2026-11-16', 'html'))).toBe(false)
    expect(() => store.pathFor('reports/../../etc/passwd')).toThrow(/unsafe/)
  })
})

describe('S3 store (s3rver)', () => {
  const cfg = (bucket: string) => ({ bucket, region: 'us-east-1', endpoint: s3.endpoint, forcePathStyle: true })

  test('round trip is byte-identical, URL is s3://bucket/key, overwrite keeps one object', async () => {
    const store = new S3Store(s3.client, cfg('reports'))
    await store.check()
    const key = reportKey('u-1', '2026-11-16', 'pdf')
    const bytes = Buffer.from(Array.from({ length: 70_000 }, (_, i) => (i * 31) % 256))
    const put = await store.put(key, bytes, 'application/pdf')
    expect(put.url).toBe('s3://reports/reports/u-1/2026-11-16/report.pdf')
    expect((await store.get(key)).equals(bytes)).toBe(true)
    await store.put(key, Buffer.from('v2'), 'application/pdf')
    expect((await store.get(key)).toString()).toBe('v2')
    expect(await store.exists(key)).toBe(true)
    expect(await store.exists('reports/none/2026-11-16/report.pdf')).toBe(false)
  })

  test('missing bucket → S3_NO_BUCKET with next steps', async () => {
    const store = new S3Store(s3.client, cfg('no-such-bucket'))
    const e = await store.check().catch((x) => x)
    expect(e).toBeInstanceOf(SeedopsError)
    expect(e.code).toBe('S3_NO_BUCKET')
    expect(e.message).toContain('no-such-bucket')
    expect(e.suggestions.join(' ')).toMatch(/S3_BUCKET/)
    const p = await store.put('reports/u/2026-11-16/report.html', Buffer.from('x'), 'text/html').catch((x) => x)
    expect(p.code).toBe('S3_NO_BUCKET')
  })

  test('unknown access key → credentials error that never shows the secret', async () => {
    const secret = 'wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY'
    // openStore registers the secret for redaction, whatever the server echoes.
    const store = openStore({ kind: 's3', ...cfg('reports') }, { env: { AWS_ACCESS_KEY_ID: 'AKIDNOTKNOWN', AWS_SECRET_ACCESS_KEY: secret } })
    ;(store as S3Store).client.destroy()
    const client = new S3Client({ region: 'us-east-1', endpoint: s3.endpoint, forcePathStyle: true, credentials: { accessKeyId: 'AKIDNOTKNOWN', secretAccessKey: secret } })
    const e = await new S3Store(client, cfg('reports')).put('reports/u/2026-11-16/report.html', Buffer.from('x'), 'text/html').catch((x) => x)
    client.destroy()
    expect(e.code).toMatch(/S3_BAD_CREDENTIALS|S3_ACCESS_DENIED/)
    expect(JSON.stringify({ m: e.message, s: e.suggestions })).not.toContain(secret)
  })

  test('unreachable endpoint → S3_UNREACHABLE naming the endpoint', async () => {
    const endpoint = 'http://127.0.0.1:1'
    const client = new S3Client({ region: 'us-east-1', endpoint, forcePathStyle: true, maxAttempts: 1, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } })
    const e = await new S3Store(client, { bucket: 'reports', region: 'us-east-1', endpoint }).check().catch((x) => x)
    client.destroy()
    expect(e.code).toBe('S3_UNREACHABLE')
    expect(e.message).toContain(endpoint)
    expect(existsSync('/')).toBe(true)
  })
})
