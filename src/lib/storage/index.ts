import { isAbsolute, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { S3Client } from '@aws-sdk/client-s3'
import { envFirst, seedopsHome } from '../config/index.js'
import { usageError } from '../errors/index.js'
import { LocalStore } from './local.js'
import { createS3Client, resolveS3Limits, S3Store, type S3Config } from './s3.js'
import type { ObjectStore } from './types.js'

export type { ObjectStore } from './types.js'
export { LocalStore } from './local.js'
export { S3Store, createS3Client, type S3Config } from './s3.js'
export { translateS3Error } from './s3-errors.js'
export { reportKey, keySegment } from './keys.js'

export type StoreConfig = { kind: 'local'; dir: string } | ({ kind: 's3' } & S3Config)

/** What a user chose (flags); the environment fills the rest. */
export interface StoreChoice {
  store?: string
  outDir?: string
  bucket?: string
}

/**
 * Where reports go. Flags > env > default:
 * --store local|s3 (env REPORT_STORE) when given; otherwise --out-dir → local, --bucket → S3,
 * env S3_BUCKET → S3, else the local folder REPORT_OUT_DIR or $SEEDOPS_HOME/reports.
 */
export function resolveStoreConfig(choice: StoreChoice, env: NodeJS.ProcessEnv = process.env): StoreConfig {
  const explicit = choice.store ?? envFirst(['REPORT_STORE'], env)?.value
  if (explicit !== undefined && explicit !== 'local' && explicit !== 's3' && explicit !== 'auto') {
    throw usageError(`--store ${JSON.stringify(explicit)} is not a store kind`, ['Use --store local or --store s3 (env REPORT_STORE)'])
  }
  const bucket = choice.bucket ?? envFirst(['S3_BUCKET'], env)?.value
  let kind: 'local' | 's3'
  if (explicit === 'local' || explicit === 's3') kind = explicit
  else if (choice.outDir) kind = 'local'
  else if (choice.bucket || bucket) kind = 's3'
  else kind = 'local'

  if (kind === 'local') {
    const dir = choice.outDir ?? envFirst(['REPORT_OUT_DIR'], env)?.value ?? join(seedopsHome(env), 'reports')
    return { kind, dir: isAbsolute(dir) ? dir : resolve(dir) }
  }
  if (!bucket) throw usageError('S3 store selected but no bucket given', ['Set S3_BUCKET (configmap report-config) or pass --bucket NAME', 'Or write to a folder: --out-dir DIR'])
  const region = envFirst(['AWS_REGION', 'AWS_DEFAULT_REGION'], env)?.value ?? 'us-east-1'
  const endpoint = envFirst(['AWS_ENDPOINT_URL_S3', 'AWS_ENDPOINT_URL', 'S3_ENDPOINT'], env)?.value
  if (endpoint) {
    try {
      new URL(endpoint)
    } catch {
      throw usageError(`S3 endpoint ${JSON.stringify(endpoint)} is not a URL`, ['Set AWS_ENDPOINT_URL to e.g. https://minio.example.internal:9000'])
    }
  }
  // Attempts and timeouts are read again where the client is made; checked here so a bad value is a usage error before anything runs.
  resolveS3Limits(env)
  const fps = envFirst(['S3_FORCE_PATH_STYLE'], env)?.value
  return { kind, bucket, region, endpoint, forcePathStyle: fps ? /^(1|true|yes|on)$/i.test(fps) : Boolean(endpoint) }
}

/** Opens the store; an S3 client may be handed in (tests pass one bound to their own server). */
export function openStore(cfg: StoreConfig, opts: { s3Client?: S3Client; env?: NodeJS.ProcessEnv } = {}): ObjectStore {
  if (cfg.kind === 'local') return new LocalStore(cfg.dir)
  const env = opts.env ?? process.env
  return new S3Store(opts.s3Client ?? createS3Client(cfg, env), cfg, resolveS3Limits(env))
}

/** Display form of a store config (no secrets: only bucket, region, endpoint or folder). */
export function describeStoreConfig(cfg: StoreConfig): string {
  return cfg.kind === 'local' ? cfg.dir : `s3://${cfg.bucket} (region ${cfg.region}${cfg.endpoint ? `, endpoint ${cfg.endpoint}` : ''})`
}

export type ParsedUrl = { kind: 'file'; path: string } | { kind: 's3'; bucket: string; key: string }

/** Parses a report URL as stored in report_artifacts; null when it is not well-formed. */
export function parseObjectUrl(url: string): ParsedUrl | null {
  let u: URL
  try {
    u = new URL(url)
  } catch {
    return null
  }
  if (u.protocol === 'file:') {
    if (u.host !== '' && u.host !== 'localhost') return null
    try {
      const path = fileURLToPath(u)
      return isAbsolute(path) ? { kind: 'file', path } : null
    } catch {
      return null
    }
  }
  if (u.protocol === 's3:') {
    const key = url.slice(`s3://${u.host}/`.length)
    if (!u.host || !key || key.split('/').some((s) => s === '' || s === '.' || s === '..')) return null
    return { kind: 's3', bucket: u.host, key }
  }
  return null
}
