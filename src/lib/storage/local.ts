import { existsSync } from 'node:fs'
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { SeedopsError } from '../errors/index.js'
import { assertSafeKey } from './keys.js'
import type { ObjectStore, PutResult } from './types.js'

/** A folder as object store (the default, and the embedded demo's). Writes are atomic (temp file + rename). */
export class LocalStore implements ObjectStore {
  readonly kind = 'local' as const
  readonly root: string

  constructor(root: string) {
    this.root = resolve(root)
  }

  describe(): string {
    return this.root
  }

  /** The folder plays the role of the `reports/` prefix: reports/u/w/report.html → ROOT/u/w/report.html. */
  pathFor(key: string): string {
    assertSafeKey(key)
    const rel = key.startsWith('reports/') ? key.slice('reports/'.length) : key
    return join(this.root, ...rel.split('/'))
  }

  urlFor(key: string): string {
    return pathToFileURL(this.pathFor(key)).href
  }

  async put(key: string, body: Buffer, _contentType: string): Promise<PutResult> {
    const path = this.pathFor(key)
    try {
      await mkdir(dirname(path), { recursive: true })
      // Readers (and a crash) never see half a file: write beside it, then rename over it.
      const tmp = `${path}.tmp-${process.pid}-${Date.now()}`
      await writeFile(tmp, body)
      await rename(tmp, path).catch(async (e) => {
        await rm(tmp, { force: true })
        throw e
      })
    } catch (e) {
      // One object that cannot be written (not the folder: check() covers that) fails that report only.
      throw new SeedopsError(`cannot write ${path}: ${(e as { code?: string }).code ?? (e as Error).message}`, { code: 'STORE_WRITE_FAILED', cause: e })
    }
    return { url: this.urlFor(key), key, bytes: body.length }
  }

  async get(key: string): Promise<Buffer> {
    return readFile(this.pathFor(key))
  }

  async exists(key: string): Promise<boolean> {
    return existsSync(this.pathFor(key))
  }

  async check(): Promise<void> {
    try {
      await mkdir(this.root, { recursive: true })
      const probe = join(this.root, `.seedops-write-check-${process.pid}`)
      await writeFile(probe, '')
      await rm(probe, { force: true })
    } catch (e) {
      throw localError(e, this.root)
    }
    const s = await stat(this.root)
    if (!s.isDirectory()) throw new SeedopsError(`report folder ${this.root} is not a directory`, { code: 'STORE_NOT_WRITABLE' })
  }
}

function localError(e: unknown, root: string): SeedopsError {
  const code = (e as { code?: string }).code ?? ''
  return new SeedopsError(`cannot write reports under ${root}: ${(e as Error).message}`, {
    code: 'STORE_NOT_WRITABLE',
    suggestions: [
      code === 'EACCES' || code === 'EROFS' ? `Make ${root} writable, or choose another folder: --out-dir DIR (env REPORT_OUT_DIR)` : `Choose another folder: --out-dir DIR (env REPORT_OUT_DIR)`,
      'Or store in S3: set S3_BUCKET and AWS_REGION',
    ],
    cause: e,
  })
}
