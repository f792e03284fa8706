import { mkdirSync, openSync, writeSync, closeSync, readFileSync, unlinkSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { SeedopsError } from '../errors/index.js'

/**
 * The embedded default: PGlite (PostgreSQL compiled to WASM) on a local data folder, served over
 * the Postgres wire protocol on 127.0.0.1 by pglite-socket so that the same `pg` code path serves
 * both it and a real server.
 *
 * A PGlite data folder may be opened by one process only, so the folder carries a pid lock file;
 * a second process gets a clear error naming the holder instead of corrupting the data. A lock
 * left by a killed process (pid gone) is taken over.
 */
export interface EmbeddedServer {
  url: string
  dataDir: string
  stop(): Promise<void>
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'
  }
}

function acquireDirLock(dir: string): () => void {
  const lockPath = join(dir, 'seedops.pid')
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(lockPath, 'wx')
      writeSync(fd, JSON.stringify({ pid: process.pid, argv: process.argv.slice(2).join(' '), since: new Date().toISOString() }))
      closeSync(fd)
      return () => {
        try {
          const held = JSON.parse(readFileSync(lockPath, 'utf8')) as { pid: number }
          if (held.pid === process.pid) unlinkSync(lockPath)
        } catch {
          /* already gone */
        }
      }
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e
      let holder: { pid: number; argv?: string; since?: string } | undefined
      try {
        holder = JSON.parse(readFileSync(lockPath, 'utf8'))
      } catch {
        holder = undefined
      }
      if (holder && holder.pid !== process.pid && pidAlive(holder.pid)) {
        throw new SeedopsError(
          `the embedded database in ${dir} is in use by another seedops process (pid ${holder.pid}: seedops ${holder.argv ?? ''}, since ${holder.since ?? '?'})`,
          {
            code: 'LOCKED',
            suggestions: [
              'Wait for that run to finish; stages never run twice at once',
              'Or use a separate SEEDOPS_HOME, or a real server with DATABASE_URL',
            ],
            data: { pid: holder.pid },
          },
        )
      }
      // Stale lock from a killed process: take it over.
      try {
        unlinkSync(lockPath)
      } catch {
        /* raced */
      }
    }
  }
  throw new SeedopsError(`could not lock the embedded database folder ${dir}`, { code: 'LOCKED' })
}

export async function startEmbedded(home: string, opts: { maxConnections?: number } = {}): Promise<EmbeddedServer> {
  const dataDir = resolve(home, 'pgdata')
  mkdirSync(dataDir, { recursive: true })
  const release = acquireDirLock(resolve(home))
  try {
    const { PGlite } = await import('@electric-sql/pglite')
    const { PGLiteSocketServer } = await import('@electric-sql/pglite-socket')
    const db = await PGlite.create({ dataDir })
    await db.exec(`SET TIME ZONE 'UTC'`)
    const server = new PGLiteSocketServer({ db, host: '127.0.0.1', port: 0, maxConnections: opts.maxConnections ?? 16 })
    await server.start()
    const conn = server.getServerConn() // host:port
    const url = `postgres://postgres@${conn}/postgres?sslmode=disable`
    return {
      url,
      dataDir,
      async stop() {
        try {
          await server.stop()
          await db.close()
        } finally {
          release()
        }
      },
    }
  } catch (e) {
    release()
    throw e
  }
}
