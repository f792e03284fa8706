import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { S3Client } from '@aws-sdk/client-s3'
import { createRequire } from 'node:module'
import S3rver from 's3rver'
import { PLANTED } from '../faults/support/secret-scan.js'

// Planted keys (not s3rver's default S3RVER): test/support/cli.ts fails any CLI run that prints them.
export const S3_KEY = PLANTED.S3_ACCESS_KEY_ID
export const S3_SECRET = PLANTED.S3_SECRET_ACCESS_KEY
createRequire(import.meta.url)('s3rver/lib/models/account.js').DUMMY_ACCOUNT.createKeyPair(S3_KEY, S3_SECRET)

export interface TestS3 {
  endpoint: string
  client: S3Client
  /** Env for a spawned CLI pointing at this server. */
  env: Record<string, string>
  close(): Promise<void>
}

/** A real S3-compatible server (s3rver) in this process on 127.0.0.1, random port. */
export async function startS3(buckets: string[]): Promise<TestS3> {
  const dir = mkdtempSync(join(tmpdir(), 's3rver-'))
  const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory: dir, configureBuckets: buckets.map((name) => ({ name })) })
  const { port } = await server.run()
  const endpoint = `http://127.0.0.1:${port}`
  const client = new S3Client({ region: 'us-east-1', endpoint, forcePathStyle: true, credentials: { accessKeyId: S3_KEY, secretAccessKey: S3_SECRET } })
  return {
    endpoint,
    client,
    env: { AWS_ENDPOINT_URL: endpoint, AWS_REGION: 'us-east-1', AWS_ACCESS_KEY_ID: S3_KEY, AWS_SECRET_ACCESS_KEY: S3_SECRET },
    async close() {
      client.destroy()
      server.httpServer?.closeAllConnections?.()
      await server.close()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}
