import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import type { TestProject } from 'vitest/node'
import { startEmbedded } from '../../src/lib/db/embedded.js'
import { createPool } from '../../src/lib/db/index.js'
import { migrate } from '../../src/lib/db/migrate.js'
import { scanTotals } from '../faults/support/secret-scan.js'

/**
 * Once per suite: a migrated embedded data folder that each test copies (creating a PGlite
 * database takes seconds; copying a folder takes milliseconds), and on the real server
 * (TEST_DATABASE_URL) a migrated template database that each test clones with CREATE DATABASE … TEMPLATE.
 */
export default async function setup(project: TestProject) {
  const root = mkdtempSync(join(tmpdir(), 'seedops-test-'))
  const home = join(root, 'template-home')
  const server = await startEmbedded(home)
  const pool = createPool(server.url, 2, { utcOption: false })
  await migrate({ pool, kind: 'embedded', target: 'template', close: async () => {} })
  await pool.end()
  await server.stop()
  project.provide('embeddedTemplate', home)
  project.provide('testRoot', root)

  const admin = process.env.TEST_DATABASE_URL
  // Under CI a missing server must fail the run, not quietly shrink it to the embedded half.
  if (!admin && process.env.CI) {
    throw new Error('CI is set but TEST_DATABASE_URL is not: the real-PostgreSQL half of the suite would not run. Start one with scripts/test-postgres.sh (see .ci/run).')
  }
  // Names carry this run's id so concurrent suites (several developers, one server) never touch each other's databases.
  const runId = `${process.pid}_${Date.now() % 1_000_000}`
  project.provide('runId', runId)
  let pgTemplate = ''
  if (admin) {
    pgTemplate = `seedops_tpl_${runId}`
    const c = new pg.Client({ connectionString: admin })
    await c.connect()
    await c.query(`DROP DATABASE IF EXISTS ${pgTemplate}`)
    await c.query(`CREATE DATABASE ${pgTemplate}`)
    await c.end()
    const u = new URL(admin)
    u.pathname = `/${pgTemplate}`
    const tpool = createPool(u.toString(), 2)
    await migrate({ pool: tpool, kind: 'postgres', target: 'template', close: async () => {} })
    await tpool.end()
  }
  project.provide('pgTemplate', pgTemplate)
  process.stderr.write(`seedops tests: databases covered: ${await coverage(admin)}\n`)

  // Every CLI run of the suite is scanned for planted secrets (test/support/cli.ts); the runs are counted
  // here and the total printed at the end, so a green run also says how much it looked at.
  const scanFile = process.env.SECRET_SCAN_FILE ?? join(root, 'secret-scan.jsonl')
  const ownScanFile = !process.env.SECRET_SCAN_FILE
  process.env.SECRET_SCAN_FILE = scanFile

  return async () => {
    if (ownScanFile) {
      const t = existsSync(scanFile) ? scanTotals(readFileSync(scanFile, 'utf8')) : { runs: 0, hits: 0 }
      process.stderr.write(`seedops tests: secret scan: ${t.runs} CLI runs scanned for planted secrets, ${t.hits} hits\n`)
    }
    if (admin && pgTemplate) {
      const c = new pg.Client({ connectionString: admin })
      await c.connect()
      const dbs = await c.query<{ datname: string }>(`SELECT datname FROM pg_database WHERE datname LIKE $1 OR datname = $2`, [`seedops_t_${runId}_%`, pgTemplate])
      for (const d of dbs.rows) await c.query(`DROP DATABASE IF EXISTS ${d.datname} WITH (FORCE)`).catch(() => {})
      await c.end()
    }
    rmSync(root, { recursive: true, force: true })
  }
}

/** One line for the run's header: which databases this run covers (the URL without its password). */
async function coverage(admin: string | undefined): Promise<string> {
  const embedded = 'embedded PGlite'
  if (!admin) return `${embedded} only (set TEST_DATABASE_URL to cover a real PostgreSQL as well)`
  const c = new pg.Client({ connectionString: admin })
  await c.connect()
  const v = (await c.query<{ v: string }>(`SELECT current_setting('server_version') AS v`)).rows[0]!.v
  await c.end()
  const u = new URL(admin)
  if (u.password) u.password = '***'
  return `${embedded} and PostgreSQL ${v} at ${u.host}`
}

declare module 'vitest' {
  export interface ProvidedContext {
    embeddedTemplate: string
    testRoot: string
    pgTemplate: string
    runId: string
  }
}
