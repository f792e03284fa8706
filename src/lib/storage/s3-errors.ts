import { SeedopsError, redact } from '../errors/index.js'
import type { S3Limits } from './s3.js'

interface S3LikeError {
  name?: string
  Code?: string
  code?: string
  message?: string
  $metadata?: { httpStatusCode?: number; attempts?: number }
  cause?: unknown
  errors?: unknown[]
}

const NETWORK = new Set(['ECONNREFUSED', 'ENOTFOUND', 'ETIMEDOUT', 'EHOSTUNREACH', 'ECONNRESET', 'EAI_AGAIN', 'TimeoutError', 'RequestTimeout', 'NetworkingError'])

/** The SDK names a per-attempt timeout TimeoutError; its message says which bound it hit. */
function timeoutKind(e: S3LikeError | undefined, depth = 0): 'connect' | 'request' | undefined {
  if (!e || depth > 3) return undefined
  if (e.name === 'TimeoutError' || e.code === 'ETIMEDOUT') return /establish a connection/.test(e.message ?? '') ? 'connect' : 'request'
  return timeoutKind(e.cause as S3LikeError | undefined, depth + 1)
}

function networkCode(e: S3LikeError | undefined, depth = 0): string | undefined {
  if (!e || depth > 3) return undefined
  for (const c of [e.code, e.name]) if (c && NETWORK.has(c)) return c
  if (Array.isArray(e.errors)) for (const x of e.errors) { const n = networkCode(x as S3LikeError, depth + 1); if (n) return n }
  return networkCode(e.cause as S3LikeError | undefined, depth + 1)
}

/**
 * Translates an S3 SDK error into a SeedopsError with next steps. The message names the bucket
 * and endpoint (never credentials) and goes through redact() in case a server echoes a secret.
 */
export function translateS3Error(e: unknown, where: { bucket: string; endpoint?: string; op: string; key?: string; limits?: S3Limits }): SeedopsError {
  if (e instanceof SeedopsError) return e
  const err = (e ?? {}) as S3LikeError
  const name = err.name ?? err.Code ?? err.code ?? 'Error'
  const status = err.$metadata?.httpStatusCode
  const target = `s3://${where.bucket}${where.key ? '/' + where.key : ''}${where.endpoint ? ` at ${where.endpoint}` : ''}`
  const detail = redact(err.message ?? String(e))
  const attempts = err.$metadata?.attempts
  // How hard we tried, so a reader can tell a bounded retry from a single refusal.
  const tried = attempts && attempts > 1 ? ` (${attempts} attempts)` : ''
  const timeout = timeoutKind(err)
  if (timeout) {
    const knob = timeout === 'connect' ? 'S3_CONNECT_TIMEOUT_MS' : 'S3_REQUEST_TIMEOUT_MS'
    const ms = timeout === 'connect' ? where.limits?.connectTimeoutMs : where.limits?.requestTimeoutMs
    return new SeedopsError(`object store timed out: ${timeout === 'connect' ? 'no connection' : 'no answer'} within ${ms ? `${ms} ms ` : ''}(${knob}) on ${where.op} ${target}${tried}`, {
      code: 'S3_TIMEOUT',
      suggestions: [
        `Check the object store's health${where.endpoint ? ` at ${where.endpoint}` : ''}; a slow but working store needs a larger ${knob} (per attempt, S3_MAX_ATTEMPTS attempts)`,
        'From the cluster: seedops doctor',
      ],
      cause: e,
    })
  }
  const net = networkCode(err)
  if (net) {
    return new SeedopsError(`object store unreachable (${net}) while trying ${where.op} ${target}${tried}`, {
      code: 'S3_UNREACHABLE',
      suggestions: [
        where.endpoint ? `Check AWS_ENDPOINT_URL / S3_ENDPOINT (${where.endpoint}): is the server up and reachable from here?` : 'Check network access to S3 from here (proxy, VPC endpoint, egress rules)',
        'From the cluster: seedops doctor',
      ],
      cause: e,
    })
  }
  if (name === 'NoSuchBucket' || (status === 404 && where.op === 'check bucket')) {
    return new SeedopsError(`bucket ${where.bucket} does not exist${where.endpoint ? ` at ${where.endpoint}` : ''}`, {
      code: 'S3_NO_BUCKET',
      suggestions: [`Create it (aws s3 mb s3://${where.bucket}) or fix S3_BUCKET (configmap report-config)`, 'Check AWS_REGION matches the bucket\'s region'],
      cause: e,
    })
  }
  if (name === 'InvalidAccessKeyId' || name === 'SignatureDoesNotMatch' || name === 'CredentialsProviderError' || name === 'ExpiredToken' || name === 'InvalidToken') {
    return new SeedopsError(`object store rejected the credentials (${name}) for ${target}`, {
      code: 'S3_BAD_CREDENTIALS',
      suggestions: [
        'Check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (secret aws-s3-credentials), or the pod\'s workload identity',
        'Recreate the secret: seedops secrets ensure',
      ],
      cause: e,
    })
  }
  if (name === 'AccessDenied' || name === 'Forbidden' || status === 403) {
    return new SeedopsError(`access denied: ${where.op} ${target}`, {
      code: 'S3_ACCESS_DENIED',
      suggestions: [
        `Grant s3:PutObject, s3:GetObject and s3:ListBucket on ${where.bucket} to these credentials`,
        'Check which identity is used: aws sts get-caller-identity',
      ],
      cause: e,
    })
  }
  if (name === 'PermanentRedirect' || name === 'AuthorizationHeaderMalformed' || status === 301) {
    return new SeedopsError(`bucket ${where.bucket} is in another region than AWS_REGION`, {
      code: 'S3_WRONG_REGION',
      suggestions: ['Set AWS_REGION to the bucket\'s region (configmap report-config)'],
      cause: e,
    })
  }
  return new SeedopsError(`object store error ${name}${status ? ` (HTTP ${status})` : ''} on ${where.op} ${target}${tried}: ${detail}`, {
    code: 'S3_ERROR',
    suggestions: ['Retry; if it persists check the object store\'s status', 'seedops doctor checks that the store is reachable and writable'],
    cause: e,
  })
}
