/** An object store the weekly reports go to: a local folder or an S3 bucket. */
export interface ObjectStore {
  kind: 'local' | 's3'
  /** Where objects go, for logs (no secrets): `s3://bucket` or the folder. */
  describe(): string
  /** The URL recorded in report_artifacts for a key: `s3://bucket/key` or `file:///abs/path`. */
  urlFor(key: string): string
  /** Stores the bytes under `key`, replacing any object there (re-runs overwrite). */
  put(key: string, body: Buffer, contentType: string): Promise<PutResult>
  /** Reads an object back (tests, verify). */
  get(key: string): Promise<Buffer>
  exists(key: string): Promise<boolean>
  /** Fails early with a SeedopsError when the store cannot be written (missing bucket, denied, unreachable). */
  check(): Promise<void>
}

export interface PutResult {
  url: string
  key: string
  bytes: number
}
