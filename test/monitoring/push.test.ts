import { once } from 'node:events'
import { createServer, type Server } from 'node:net'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import aggregateFeatures from '../../src/lib/features/stage.js'
import { groupingFor, pushStageRun, runNamespace } from '../../src/lib/metrics/push.js'
import type { Logger } from '../../src/lib/output/index.js'
import { runStage } from '../../src/lib/stages/runner.js'
import { spawnCli } from '../support/cli.js'
import { DB_KINDS, freshDatabase, type TestDatabase } from '../support/db.js'
import { insertTwoLearners, waitForOutput } from '../support/fixtures.js'
import { findTool, freePort, startPushgateway, type RunningTool } from '../support/prometheus.js'

const AS_OF = '2026-03-15'
const PARAMS = { lookbackDays: 7, includeTheta: false }
const BIN = findTool('prometheus-pushgateway', 'prometheus-pushgateway')

/** A logger that keeps what it is told (the runner's warnings are what these tests check). */
function recorder() {
  const lines: { level: string; msg: string }[] = []
  const logger: Logger = {
    info: (msg) => lines.push({ level: 'info', msg }),
    progress: (msg) => lines.push({ level: 'progress', msg }),
    debug: () => {},
    warn: (msg) => lines.push({ level: 'warn', msg }),
  }
  return { logger, warnings: () => lines.filter((l) => l.level === 'warn').map((l) => l.msg) }
}

interface GroupMetric {
  labels: Record<string, string>
  value: string
}
type Group = Record<string, { metrics?: GroupMetric[] }> & { labels: Record<string, string> }

/** The Pushgateway's own view (its JSON API): the group whose grouping labels are exactly `labels`. */
async function group(gw: RunningTool, labels: Record<string, string>): Promise<Group | undefined> {
  const body = (await (await fetch(`${gw.url}/api/v1/metrics`)).json()) as { data: Group[] }
  return body.data.find((g) => JSON.stringify(Object.entries(g.labels).sort()) === JSON.stringify(Object.entries(labels).sort()))
}

/** The value of one metric in a group, for the series whose labels include `match`. */
function value(g: Group, name: string, match: Record<string, string> = {}): number | undefined {
  const m = g[name]?.metrics?.find((x) => Object.entries(match).every(([k, v]) => x.labels[k] === v))
  return m === undefined ? undefined : Number(m.value)
}


/** Makes every insert into features_topic_daily fail: a real mid-transaction failure of the real stage. */
const PLANT_FAILURE = [
  `CREATE OR REPLACE FUNCTION seedops_test_fail() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'planted failure'; END $$`,
  `CREATE TRIGGER seedops_test_fail BEFORE INSERT ON features_topic_daily FOR EACH ROW EXECUTE FUNCTION seedops_test_fail()`,
]
const REMOVE_FAILURE = `DROP TRIGGER IF EXISTS seedops_test_fail ON features_topic_daily`

describe.skipIf(!BIN)('stage runs push to a real Pushgateway', () => {
  let gw: RunningTool
  beforeAll(async () => {
    gw = await startPushgateway(BIN!)
  })
  afterAll(async () => {
    await gw?.stop()
  })

  describe.each(DB_KINDS)('on %s', (kind) => {
    let t: TestDatabase
    const ns = `seedtest-${kind}`
    const env = () => ({ ...process.env, PUSHGATEWAY_URL: gw.url, SEEDOPS_NAMESPACE: ns })
    beforeAll(async () => {
      t = await freshDatabase(kind)
      const db = await t.open()
      await insertTwoLearners(db.pool)
      await db.close()
    })

    it('a successful run: job = stage, namespace grouping, times, duration, rows per table, outcome succeeded, last success', async () => {
      const db = await t.open()
      try {
        const { logger, warnings } = recorder()
        const r = await runStage(db, aggregateFeatures, PARAMS, { asOf: AS_OF, dryRun: false, logger, env: env() })
        expect(r.status).toBe('succeeded')
        expect(warnings()).toEqual([])
        const g = await group(gw, { job: 'aggregate-features', namespace: ns })
        expect(g, 'group job=aggregate-features namespace=' + ns).toBeDefined()
        const start = Date.parse(r.startedAt) / 1000
        const end = Date.parse(r.finishedAt) / 1000
        expect(value(g!, 'seedops_stage_last_run_start_timestamp_seconds')).toBeCloseTo(start, 3)
        expect(value(g!, 'seedops_stage_last_run_end_timestamp_seconds')).toBeCloseTo(end, 3)
        expect(value(g!, 'seedops_stage_duration_seconds')).toBeCloseTo(r.durationMs / 1000, 3)
        expect(value(g!, 'seedops_stage_last_success_timestamp_seconds')).toBeCloseTo(end, 3)
        expect(value(g!, 'seedops_stage_last_run_outcome', { outcome: 'succeeded' })).toBe(1)
        expect(value(g!, 'seedops_stage_last_run_outcome', { outcome: 'failed' })).toBe(0)
        expect(value(g!, 'seedops_stage_last_run_outcome', { outcome: 'cancelled' })).toBe(0)
        // Three (user, topic, day) rows: u1 alg and geo on 03-14, u2 alg on 03-15.
        expect(r.rows.features_topic_daily).toBe(3)
        for (const [table, n] of Object.entries(r.rows)) expect(value(g!, 'seedops_stage_rows_written', { table }), table).toBe(n)
        expect(g!.seedops_stage_rows_written!.metrics!.length).toBe(Object.keys(r.rows).length)
      } finally {
        await db.close()
      }
    })

    it('a failed run: outcome failed, and the previous last-success timestamp is kept', async () => {
      const db = await t.open()
      try {
        const ok = await runStage(db, aggregateFeatures, PARAMS, { asOf: AS_OF, dryRun: false, logger: recorder().logger, env: env() })
        const before = await group(gw, { job: 'aggregate-features', namespace: ns })
        const lastSuccess = value(before!, 'seedops_stage_last_success_timestamp_seconds')
        expect(lastSuccess).toBeCloseTo(Date.parse(ok.finishedAt) / 1000, 3)
        for (const sql of PLANT_FAILURE) await db.pool.query(sql)
        const t0 = Date.now()
        try {
          await expect(runStage(db, aggregateFeatures, PARAMS, { asOf: AS_OF, dryRun: false, logger: recorder().logger, env: env() })).rejects.toThrow('planted failure')
        } finally {
          await db.pool.query(REMOVE_FAILURE)
        }
        const g = await group(gw, { job: 'aggregate-features', namespace: ns })
        expect(value(g!, 'seedops_stage_last_run_outcome', { outcome: 'failed' })).toBe(1)
        expect(value(g!, 'seedops_stage_last_run_outcome', { outcome: 'succeeded' })).toBe(0)
        expect(value(g!, 'seedops_stage_last_run_start_timestamp_seconds')! * 1000).toBeGreaterThanOrEqual(t0 - 1)
        expect(value(g!, 'seedops_stage_last_success_timestamp_seconds')).toBe(lastSuccess)
        // The failed run rolled back: the row counts are still those of the last run that committed.
        expect(value(g!, 'seedops_stage_rows_written', { table: 'features_topic_daily' })).toBe(ok.rows.features_topic_daily)
      } finally {
        await db.close()
      }
    })

    it('a dry run pushes nothing', async () => {
      const db = await t.open()
      try {
        const dryNs = `${ns}-dry`
        await runStage(db, aggregateFeatures, PARAMS, { asOf: AS_OF, dryRun: true, logger: recorder().logger, env: { ...env(), SEEDOPS_NAMESPACE: dryNs } })
        expect(await group(gw, { job: 'aggregate-features', namespace: dryNs })).toBeUndefined()
        // The same run for real does push (so the check above can fail).
        await runStage(db, aggregateFeatures, PARAMS, { asOf: AS_OF, dryRun: false, logger: recorder().logger, env: { ...env(), SEEDOPS_NAMESPACE: dryNs } })
        expect(await group(gw, { job: 'aggregate-features', namespace: dryNs })).toBeDefined()
      } finally {
        await db.close()
      }
    })

    it('seedops run …: SIGTERM mid-run pushes outcome cancelled, exit 143 within 5 s', { timeout: 120_000 }, async () => {
      const cancelNs = `${ns}-cancel`
      const child = spawnCli(['run', 'aggregate-features', '--date', AS_OF], { ...t.env, PUSHGATEWAY_URL: gw.url, SEEDOPS_NAMESPACE: cancelNs, SEEDOPS_TEST_HOLD_TX_MS: '60000' })
      await waitForOutput(child.stderr!, (s) => s.includes('holding transaction'), 90_000)
      const sent = Date.now()
      child.kill('SIGTERM')
      const [exit] = (await once(child, 'close')) as [number | null]
      expect(Date.now() - sent).toBeLessThan(5000)
      expect(exit).toBe(143)
      const g = await group(gw, { job: 'aggregate-features', namespace: cancelNs })
      expect(value(g!, 'seedops_stage_last_run_outcome', { outcome: 'cancelled' })).toBe(1)
      expect(value(g!, 'seedops_stage_last_run_outcome', { outcome: 'succeeded' })).toBe(0)
      expect(value(g!, 'seedops_stage_last_success_timestamp_seconds')).toBeUndefined()
    })
  })

  it('a report shard is grouped by namespace and shard', async () => {
    const { logger } = recorder()
    const at = new Date()
    const ok = await pushStageRun(
      { stage: 'generate-report', outcome: 'succeeded', startedAt: new Date(at.getTime() - 2000), finishedAt: at, rows: { report_artifacts: 5 }, lockScope: 'shard:1/4' },
      { url: gw.url, logger, env: { SEEDOPS_NAMESPACE: 'seedtest' } },
    )
    expect(ok).toBe(true)
    const g = await group(gw, { job: 'generate-report', namespace: 'seedtest', shard: '1-of-4' })
    expect(value(g!, 'seedops_stage_rows_written', { table: 'report_artifacts' })).toBe(5)
    expect(value(g!, 'seedops_stage_duration_seconds')).toBe(2)
  })
})

describe('a Pushgateway that is down or hangs only warns', () => {
  let t: TestDatabase
  let hang: Server
  let hangPort: number
  beforeAll(async () => {
    t = await freshDatabase('embedded')
    const db = await t.open()
    await insertTwoLearners(db.pool)
    await db.close()
    // Accepts connections and never answers.
    hang = createServer(() => {})
    hang.listen(0, '127.0.0.1')
    await once(hang, 'listening')
    hangPort = (hang.address() as { port: number }).port
  })
  afterAll(async () => {
    hang?.close()
  })

  it('unreachable (URL with credentials): the stage succeeds, the warning names the URL without the password', async () => {
    const port = await freePort() // nothing listens there
    const db = await t.open()
    try {
      const { logger, warnings } = recorder()
      const r = await runStage(db, aggregateFeatures, PARAMS, { asOf: AS_OF, dryRun: false, logger, env: { ...process.env, PUSHGATEWAY_URL: `http://pusher:Pl4nted-Secret@127.0.0.1:${port}` } })
      expect(r.status).toBe('succeeded')
      expect(warnings()).toHaveLength(1)
      expect(warnings()[0]).toContain(`could not push metrics to the Pushgateway http://pusher:[REDACTED]@127.0.0.1:${port}`)
      expect(warnings()[0]).toContain('ECONNREFUSED')
      expect(warnings()[0]).not.toContain('Pl4nted-Secret')
    } finally {
      await db.close()
    }
  })

  it('no answer: the push gives up after its 5 s timeout and the stage still succeeds', { timeout: 30_000 }, async () => {
    const db = await t.open()
    try {
      const { logger, warnings } = recorder()
      const t0 = Date.now()
      const r = await runStage(db, aggregateFeatures, PARAMS, { asOf: AS_OF, dryRun: false, logger, env: { ...process.env, PUSHGATEWAY_URL: `http://127.0.0.1:${hangPort}` } })
      const took = Date.now() - t0
      expect(r.status).toBe('succeeded')
      expect(took).toBeGreaterThanOrEqual(5000)
      expect(took).toBeLessThan(7000)
      expect(warnings().join('\n')).toMatch(new RegExp(`Pushgateway http://127\\.0\\.0\\.1:${hangPort}: .*(timed out|no answer within 5 s)`))
    } finally {
      await db.close()
    }
  })
})

describe('grouping and namespace', () => {
  it('namespace: SEEDOPS_NAMESPACE, else the pod namespace file, else "default"', () => {
    const dir = mkdtempSync(join(tmpdir(), 'seedops-sa-'))
    const file = join(dir, 'namespace')
    writeFileSync(file, 'seedtest-prod\n')
    expect(runNamespace({ SEEDOPS_NAMESPACE: 'from-env' }, file)).toBe('from-env')
    expect(runNamespace({}, file)).toBe('seedtest-prod')
    expect(runNamespace({}, join(dir, 'missing'))).toBe('default')
  })

  it('only report shards add a shard label; a user-scoped lock (update-theta) does not', () => {
    expect(groupingFor({ lockScope: 'shard:0/4' }, 'ns')).toEqual({ namespace: 'ns', shard: '0-of-4' })
    expect(groupingFor({ lockScope: 'user:u1' }, 'ns')).toEqual({ namespace: 'ns' })
    expect(groupingFor({}, 'ns')).toEqual({ namespace: 'ns' })
  })
})
