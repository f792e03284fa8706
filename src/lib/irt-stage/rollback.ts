import { z } from 'zod'
import { resolveDate } from '../config/index.js'
import type { Db } from '../db/index.js'
import { SeedopsError } from '../errors/index.js'
import type { Logger } from '../output/index.js'
import { runStage } from '../stages/runner.js'
import type { Stage, StageRunReport } from '../stages/types.js'
import { currentVersion, knownVersions, VERSIONS_SQL } from './history.js'

export const RollbackParams = z.object({ to: z.string().min(1).meta({ flag: 'to' }) })
export type RollbackParams = z.infer<typeof RollbackParams>

export interface RollbackSummary {
  to: string
  /** The version that was current before (roll back to it to undo this). */
  from: string | null
  /** Items whose row in mirt_item_params now comes from another version (or other values). */
  changed: number
  /** Items with no row in any version up to the target: taken out of mirt_item_params (kept in the history). */
  removed: number
  /** Items in mirt_item_params after the rollback. */
  items: number
  /** Current rows that were missing from the history, recorded there first so nothing is lost. */
  snapshot: number
}

/**
 * The runner takes calibrate-irt's lock as `seedops:stage:calibrate-irt` (runner.ts lockKey). A
 * rollback takes the same key for its transaction, so it never interleaves with a calibration: a
 * calibration that starts meanwhile is refused, and a rollback while one runs is refused.
 */
const CALIBRATE_LOCK_KEY = 'seedops:stage:calibrate-irt'

/**
 * mirt_item_params as it was right after the target version was calibrated: for every item, its
 * row in the newest version calibrated up to the target (the target's own rows first). An item a
 * calibration did not see kept its older row then too.
 */
const TARGET = `
WITH v AS (${VERSIONS_SQL}),
tt AS (SELECT t FROM v WHERE version = $1)
SELECT DISTINCT ON (h.item_id) h.item_id, h.version, h.model, h.params, h.se, h.fit, h.fitted_at
FROM seedops_item_params_history h JOIN v ON v.version = h.version
WHERE h.version = $1 OR v.t < (SELECT t FROM tt)
ORDER BY h.item_id, (h.version = $1) DESC, v.t DESC, h.version DESC`

/** Current rows the history lacks (another writer's, or from before 0004 in a way the backfill missed). */
const SNAPSHOT = `
INSERT INTO seedops_item_params_history (version, item_id, model, params, se, fit, fitted_at, run_id, source)
SELECT COALESCE(m.version, 'legacy'), m.item_id, m.model, m.params, m.se, m.fit, m.fitted_at, NULL, 'rollback'
FROM mirt_item_params m
WHERE m.params IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM seedops_item_params_history h WHERE h.version = COALESCE(m.version, 'legacy') AND h.item_id = m.item_id)
ON CONFLICT (version, item_id) DO NOTHING`

const CHANGES = `
WITH t AS (${TARGET})
SELECT COALESCE(t.item_id, m.item_id)::text AS item_id, COALESCE(m.version, CASE WHEN m.item_id IS NOT NULL THEN 'legacy' END) AS from_version, t.version AS to_version,
       (m.params ->> 'a')::float8 AS a_from, (t.params ->> 'a')::float8 AS a_to, (m.params ->> 'b')::float8 AS b_from, (t.params ->> 'b')::float8 AS b_to
FROM t FULL JOIN mirt_item_params m ON m.item_id = t.item_id
WHERE t.item_id IS NULL OR m.item_id IS NULL OR COALESCE(m.version, 'legacy') <> t.version OR m.params <> t.params OR m.fitted_at <> t.fitted_at
ORDER BY 1`

const REMOVE = `WITH t AS (${TARGET}) DELETE FROM mirt_item_params m WHERE NOT EXISTS (SELECT 1 FROM t WHERE t.item_id = m.item_id)`

const RESTORE = `
INSERT INTO mirt_item_params (item_id, model, params, version, fitted_at, se, fit)
SELECT t.item_id, COALESCE(t.model, ''), t.params, t.version, t.fitted_at, t.se, t.fit FROM (${TARGET}) t
ON CONFLICT (item_id) DO UPDATE SET model = EXCLUDED.model, params = EXCLUDED.params, version = EXCLUDED.version,
  fitted_at = EXCLUDED.fitted_at, se = EXCLUDED.se, fit = EXCLUDED.fit`

/** Parameters written back into question.meta.irt that differ in version from what mirt_item_params now holds. */
const WRITTEN_BACK_ELSEWHERE = `
SELECT count(*)::int AS n FROM question q JOIN mirt_item_params m ON m.item_id = q.id
WHERE q.meta #>> '{irt,written_by}' = 'seedops' AND (q.meta #>> '{irt,version}') IS DISTINCT FROM m.version`

function unknownVersion(to: string, known: string[], exitCode: 1 | 2): SeedopsError {
  return new SeedopsError(
    known.length
      ? `version ${JSON.stringify(to)} is not in the item-parameter history; known versions (newest first): ${known.slice(0, 20).join(', ')}${known.length > 20 ? `, … (${known.length})` : ''}`
      : `version ${JSON.stringify(to)} is not in the item-parameter history, which is empty (no calibration since migration 0004)`,
    { code: 'IRT_UNKNOWN_VERSION', exitCode, data: { known }, suggestions: ['List the versions: seedops irt history'] },
  )
}

/** `irt rollback` as a stage: run-logged under 'irt-rollback', one transaction, --dry-run rolls back. */
export const irtRollback: Stage<RollbackParams, RollbackSummary> = {
  id: 'irt-rollback',
  description: 'Make an earlier calibration version current again in mirt_item_params (from seedops_item_params_history).',
  supportsDryRun: true,
  options: RollbackParams,
  async run(params, ctx) {
    const { tx } = ctx
    const lock = await tx.query<{ ok: boolean }>(`SELECT pg_try_advisory_xact_lock(hashtext($1)) AS ok`, [CALIBRATE_LOCK_KEY])
    if (!lock.rows[0]?.ok) {
      throw new SeedopsError('a calibrate-irt run is in progress; a rollback would interleave with it', {
        code: 'STAGE_LOCKED',
        suggestions: ['Wait for it to finish (seedops status), then roll back if you still want to'],
      })
    }
    const known = await knownVersions(tx)
    if (!known.includes(params.to)) throw unknownVersion(params.to, known, 1)
    const from = await currentVersion(tx)
    const snapshot = (await tx.query(SNAPSHOT)).rowCount ?? 0
    const changes = (await tx.query<{ item_id: string; from_version: string | null; to_version: string | null; a_from: number | null; a_to: number | null; b_from: number | null; b_to: number | null }>(CHANGES, [params.to])).rows
    const removed = (await tx.query(REMOVE, [params.to])).rowCount ?? 0
    const items = (await tx.query(RESTORE, [params.to])).rowCount ?? 0
    const warnings: string[] = []
    if (from === params.to) warnings.push(`${params.to} is already the current version: rows restored as the history holds them`)
    const stale = (await tx.query<{ n: number }>(WRITTEN_BACK_ELSEWHERE)).rows[0]!.n
    if (stale) warnings.push(`${stale} item(s) keep parameters of another version in question.meta.irt (written back by calibrate-irt --write-back); the rollback does not change question`)
    warnings.push('abilities in mirt_ability stay as the latest calibration estimated them; the next calibrate-irt re-estimates them')
    ctx.logger.progress(`irt-rollback: ${from ?? 'nothing'} → ${params.to}: ${changes.length - removed} item(s) changed, ${removed} removed`)
    return {
      rows: { mirt_item_params: items, removed, seedops_item_params_history: snapshot },
      summary: { to: params.to, from, changed: changes.length - removed, removed, items, snapshot },
      table: {
        head: ['item_id', 'from', 'to', 'a', 'b'],
        rows: changes.slice(0, 25).map((c) => [c.item_id, c.from_version ?? '—', c.to_version ?? '(removed)', `${fmt(c.a_from)} → ${fmt(c.a_to)}`, `${fmt(c.b_from)} → ${fmt(c.b_to)}`]),
      },
      warnings,
    }
  },
}

const fmt = (v: number | null) => (v === null ? '—' : v.toFixed(3))

/**
 * `seedops irt rollback --to VERSION`: refuses an unknown version before any run is logged (exit 2,
 * with the known ones), then runs the stage. Undo: roll back to the summary's `from`.
 */
export async function rollbackItemParams(db: Db, to: string, opts: { dryRun: boolean; logger: Logger; asOf?: string }): Promise<StageRunReport<RollbackSummary>> {
  const known = await knownVersions(db.pool)
  if (!known.includes(to)) throw unknownVersion(to, known, 2)
  return runStage(db, irtRollback, { to }, { asOf: opts.asOf ?? resolveDate(undefined), dryRun: opts.dryRun, logger: opts.logger })
}

