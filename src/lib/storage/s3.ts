import { GetObjectCommand, HeadBucketCommand, HeadObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3'
import { Upload } from '@aws-sdk/lib-storage'
import { resolveInt } from '../config/index.js'
import { registerSecret } from '../errors/index.js'
import { assertSafeKey } from './keys.js'
import { translateS3Error } from './s3-errors.js'
import type { ObjectStore, PutResult } from './types.js'

export interface S3Config {
  bucket: string
  region: string
  /** S3-compatible server (MinIO, s3rver…); implies path-style addressing. */
  endpoint?: string
  forcePathStyle?: boolean
}

/** Objects above this go through multipart upload (@aws-sdk/lib-storage). */
const MULTIPART_BYTES = 8 * 1024 * 1024

/**
 * The bounds of every S3 request. Without them the SDK's requestTimeout only logs a warning
 * (@smithy/node-http-handler 4: throwOnRequestTimeout is opt-in) and a server that accepts the
 * connection and never answers hangs the stage for good.
 */
export interface S3Limits {
  /** Attempts per request, the first included (SDK standard mode: exponential backoff with full jitter). */
  maxAttempts: number
  /** Per attempt: the longest wait for the response headers, and the longest silence while a body streams. */
  requestTimeoutMs: number
  /** Per attempt: the longest wait for the TCP (TLS) connection. */
  connectTimeoutMs: number
}

export const S3_LIMIT_DEFAULTS: S3Limits = { maxAttempts: 3, requestTimeoutMs: 60_000, connectTimeoutMs: 5_000 }

/** S3_MAX_ATTEMPTS (or the SDK's own AWS_MAX_ATTEMPTS), S3_REQUEST_TIMEOUT_MS, S3_CONNECT_TIMEOUT_MS; bad values are usage errors naming the variable. */
export function resolveS3Limits(env: NodeJS.ProcessEnv = process.env): S3Limits {
  const d = S3_LIMIT_DEFAULTS
  return {
    maxAttempts: resolveInt(undefined, ['S3_MAX_ATTEMPTS', 'AWS_MAX_ATTEMPTS'], d.maxAttempts, { min: 1, max: 10, label: 'S3_MAX_ATTEMPTS' }, env),
    requestTimeoutMs: resolveInt(undefined, ['S3_REQUEST_TIMEOUT_MS'], d.requestTimeoutMs, { min: 100, max: 3_600_000, label: 'S3_REQUEST_TIMEOUT_MS' }, env),
    connectTimeoutMs: resolveInt(undefined, ['S3_CONNECT_TIMEOUT_MS'], d.connectTimeoutMs, { min: 100, max: 600_000, label: 'S3_CONNECT_TIMEOUT_MS' }, env),
  }
}

/**
 * An S3 client from the standard AWS chain (env keys, profile, web identity…). Keys present in
 * the given `env` are used explicitly, so callers that pass an env other than the process's (doctor,
 * tests) get those. Only the secret parts are registered for redaction; they are never read into
 * our own messages. Attempts and timeouts come from `env` (resolveS3Limits) unless given.
 */
export function createS3Client(cfg: S3Config, env: NodeJS.ProcessEnv = process.env, opts: Partial<S3Limits> = {}): S3Client {
  registerSecret(env.AWS_SECRET_ACCESS_KEY)
  registerSecret(env.AWS_SESSION_TOKEN)
  const id = env.AWS_ACCESS_KEY_ID
  const secret = env.AWS_SECRET_ACCESS_KEY
  const limits = { ...resolveS3Limits(env), ...opts }
  return new S3Client({
    region: cfg.region,
    ...(cfg.endpoint ? { endpoint: cfg.endpoint } : {}),
    forcePathStyle: cfg.forcePathStyle ?? Boolean(cfg.endpoint),
    maxAttempts: limits.maxAttempts,
    ...(id && secret ? { credentials: { accessKeyId: id, secretAccessKey: secret, sessionToken: env.AWS_SESSION_TOKEN } } : {}),
    // Each attempt is bounded: connect, wait for the answer (an error, not the SDK's default warning), and a stalled body.
    requestHandler: {
      connectionTimeout: limits.connectTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      throwOnRequestTimeout: true,
      socketTimeout: limits.requestTimeoutMs,
    },
  })
}

export class S3Store implements ObjectStore {
  readonly kind = 's3' as const

  constructor(
    readonly client: S3Client,
    readonly cfg: S3Config,
    /** The client's bounds, for messages (a timeout names the knob and its value). */
    readonly limits?: S3Limits,
  ) {}

  describe(): string {
    return `s3://${this.cfg.bucket}${this.cfg.endpoint ? ` (${this.cfg.endpoint})` : ''}`
  }

  urlFor(key: string): string {
    assertSafeKey(key)
    return `s3://${this.cfg.bucket}/${key}`
  }

  private where(op: string, key?: string) {
    return { bucket: this.cfg.bucket, endpoint: this.cfg.endpoint, op, key, limits: this.limits }
  }

  async put(key: string, body: Buffer, contentType: string): Promise<PutResult> {
    assertSafeKey(key)
    const params = { Bucket: this.cfg.bucket, Key: key, Body: body, ContentType: contentType }
    try {
      if (body.length > MULTIPART_BYTES) await new Upload({ client: this.client, params }).done()
      else await this.client.send(new PutObjectCommand(params))
    } catch (e) {
      throw translateS3Error(e, this.where('put', key))
    }
    return { url: this.urlFor(key), key, bytes: body.length }
  }

  async get(key: string): Promise<Buffer> {
    try {
      const r = await this.client.send(new GetObjectCommand({ Bucket: this.cfg.bucket, Key: key }))
      return Buffer.from(await r.Body!.transformToByteArray())
    } catch (e) {
      throw translateS3Error(e, this.where('get', key))
    }
  }

  async exists(key: string): Promise<boolean> {
    try {
      await this.client.send(new HeadObjectCommand({ Bucket: this.cfg.bucket, Key: key }))
      return true
    } catch (e) {
      const err = e as { name?: string; $metadata?: { httpStatusCode?: number } }
      if (err.name === 'NotFound' || err.name === 'NoSuchKey' || err.$metadata?.httpStatusCode === 404) return false
      throw translateS3Error(e, this.where('head', key))
    }
  }

  async check(): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.cfg.bucket }))
    } catch (e) {
      throw translateS3Error(e, this.where('check bucket'))
    }
  }
}
