import { GetObjectCommand, HeadBucketCommand, HeadObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3'
import { Upload } from '@aws-sdk/lib-storage'
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
 * An S3 client from the standard AWS chain (env keys, profile, web identity…). Keys present in
 * the given `env` are used explicitly, so callers that pass an env other than the process's (doctor,
 * tests) get those. Only the secret parts are registered for redaction; they are never read into
 * our own messages.
 */
export function createS3Client(cfg: S3Config, env: NodeJS.ProcessEnv = process.env, opts: { maxAttempts?: number; requestTimeoutMs?: number } = {}): S3Client {
  registerSecret(env.AWS_SECRET_ACCESS_KEY)
  registerSecret(env.AWS_SESSION_TOKEN)
  const id = env.AWS_ACCESS_KEY_ID
  const secret = env.AWS_SECRET_ACCESS_KEY
  return new S3Client({
    region: cfg.region,
    ...(cfg.endpoint ? { endpoint: cfg.endpoint } : {}),
    forcePathStyle: cfg.forcePathStyle ?? Boolean(cfg.endpoint),
    maxAttempts: opts.maxAttempts ?? 3,
    ...(id && secret ? { credentials: { accessKeyId: id, secretAccessKey: secret, sessionToken: env.AWS_SESSION_TOKEN } } : {}),
    // Fail in seconds on a dead endpoint instead of hanging a CronJob.
    requestHandler: { connectionTimeout: 5_000, requestTimeout: opts.requestTimeoutMs ?? 60_000 },
  })
}

export class S3Store implements ObjectStore {
  readonly kind = 's3' as const

  constructor(
    readonly client: S3Client,
    readonly cfg: S3Config,
  ) {}

  describe(): string {
    return `s3://${this.cfg.bucket}${this.cfg.endpoint ? ` (${this.cfg.endpoint})` : ''}`
  }

  urlFor(key: string): string {
    assertSafeKey(key)
    return `s3://${this.cfg.bucket}/${key}`
  }

  private where(op: string, key?: string) {
    return { bucket: this.cfg.bucket, endpoint: this.cfg.endpoint, op, key }
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
