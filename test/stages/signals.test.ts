import { once } from 'node:events'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Db } from '../../src/lib/db/index.js'
import { runDemo } from '../../src/lib/demo/pipeline.js'
import { silentLogger } from '../../src/lib/output/index.js'
import { spawnCli } from '../support/cli.js'
import { DB_KINDS, freshDatabase, type TestDatabase } from '../support/db.js'
import { waitForOutput } from '../support/fixtures.js'

const AS_OF = '2026-03-18'

/** What each stage writes: a cancelled run must leave every row of these exactly as it was. */
const WRITES: Record<string, string[]> = {
  'aggregate-features': ['features_topic_daily'],
  'compute-kpis': ['weekly_kpi'],
  'calibrate-irt': ['mirt_item_params', 'mirt_ability', 'seedops_ability_history', 'mirt_fit_meta'],
  'detect-inactivity': ['weekly_kpi'],
  'generate-report': ['report_artifacts'],
  'update-theta': ['mirt_ability', 'seedops_ability_history'],
}

/** Per-table checksum over every column (timestamps included: a committed re-run changes computed_at, fitted_at …). */
async function checksums(db: Db, tables: string[]): Promise<Record<string, string>> {
  const out: Record<string, string> = {}
  for (const t of tables) {
    const r = await db.pool.query<{ n: number; h: string | null }>(`SELECT count(*)::int AS n, md5(string_agg(x::text, '|' ORDER BY x::text)) AS h FROM ${t} x`)
    out[t] = `${r.rows[0]!.n}:${r.rows[0]!.h}`
  }
  return out
}

describe.each(DB_KINDS)('SIGTERM/SIGINT during a stage (%s)', (kind) => {
  let t: TestDatabase
  let env: Record<string, string>
  let user: string

  beforeAll(async () => {
    t = await freshDatabase(kind)
    env = { ...t.env, SEEDOPS_HOME: t.env.SEEDOPS_HOME ?? mkdtempSync(join(tmpdir(), 'seedops-sig-')) }
    const db = await t.open()
    try {
      // Small demo data and one run of every stage: the rows a cancelled run must not touch.
      await runDemo(db, { seed: { learners: 40, items: 40, days: 28, seed: 7 }, asOf: AS_OF, logger: silentLogger, historyWeeks: 0 })
      user = (await db.pool.query<{ user_id: string }>(`SELECT user_id FROM exam_results ORDER BY user_id LIMIT 1`)).rows[0]!.user_id
    } finally {
      await db.close()
    }
  }, 240_000)

  afterAll(async () => {})

  const cases: [string, NodeJS.Signals, number][] = [
    ['aggregate-features', 'SIGTERM', 143],
    ['compute-kpis', 'SIGTERM', 143],
    ['calibrate-irt', 'SIGTERM', 143],
    ['detect-inactivity', 'SIGTERM', 143],
    ['generate-report', 'SIGTERM', 143],
    ['update-theta', 'SIGINT', 130],
  ]
  it.each(cases)('%s: %s mid-write rolls back, the run is cancelled, exit %i within 5 s', { timeout: 180_000 }, async (stage, sig, code) => {
    let db = await t.open()
    const before = await checksums(db, WRITES[stage]!)
    await db.close()

    const args = ['run', stage, '--date', AS_OF, ...(stage === 'update-theta' ? ['--user', user] : []), ...(stage === 'calibrate-irt' ? ['--allow-non-converged'] : [])]
    const child = spawnCli(args, { ...env, SEEDOPS_TEST_HOLD_TX_MS: '60000' })
    // The hold comes after the stage's writes, before COMMIT: the signal lands mid-write.
    await waitForOutput(child.stderr!, (s) => s.includes('holding transaction'), 150_000)
    const sent = Date.now()
    child.kill(sig)
    const [exit] = (await once(child, 'close')) as [number | null]
    expect(Date.now() - sent).toBeLessThan(5000)
    expect(exit).toBe(code)

    db = await t.open()
    try {
      expect(await checksums(db, WRITES[stage]!)).toEqual(before)
      const log = await db.pool.query<{ status: string; error: string }>(`SELECT status, error FROM seedops_stage_runs WHERE stage = $1 ORDER BY id DESC LIMIT 1`, [stage])
      expect(log.rows[0]).toEqual({ status: 'cancelled', error: `cancelled by ${sig}` })
    } finally {
      await db.close()
    }
  })

  // A real server only: the embedded one runs a statement to its end on this process's one thread.
  it.runIf(kind === 'postgres')('a statement in flight is cancelled on the server: exit 143 within 5 s, not after the 60 s statement', { timeout: 180_000 }, async () => {
    let db = await t.open()
    const before = await checksums(db, WRITES['aggregate-features']!)
    await db.close()
    const child = spawnCli(['run', 'aggregate-features', '--date', AS_OF], { ...env, SEEDOPS_TEST_SLEEP_SQL_S: '60' })
    await waitForOutput(child.stderr!, (s) => s.includes('60 s statement'), 150_000)
    await new Promise((r) => setTimeout(r, 300))
    const sent = Date.now()
    child.kill('SIGTERM')
    const [exit] = (await once(child, 'close')) as [number | null]
    expect(Date.now() - sent).toBeLessThan(5000)
    expect(exit).toBe(143)
    db = await t.open()
    try {
      expect(await checksums(db, WRITES['aggregate-features']!)).toEqual(before)
      const log = await db.pool.query(`SELECT status FROM seedops_stage_runs WHERE stage = 'aggregate-features' ORDER BY id DESC LIMIT 1`)
      expect(log.rows[0].status).toBe('cancelled')
      const busy = await db.pool.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep%' AND state = 'active'`)
      expect(busy.rows[0].n).toBe(0)
    } finally {
      await db.close()
    }
  })
})
