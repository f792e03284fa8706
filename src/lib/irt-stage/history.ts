import type { Queryable } from '../db/index.js'
import { usageError } from '../errors/index.js'

/**
 * The item-parameter history (seedops_item_params_history, migration 0004): every calibration's
 * rows under its version. Versions are ordered by when they were calibrated (the newest fitted_at
 * of their rows: a re-run of a version moves it to the end, as it does in mirt_item_params).
 * The current version is the one mirt_item_params was last written with (its newest row), so a
 * rollback, which restores rows with their own fitted_at, makes the version it restores current.
 */

/** A version's calibration time: the newest fitted_at of its rows. */
const VERSIONS = `SELECT version, max(fitted_at) AS t FROM seedops_item_params_history GROUP BY version`

export const CURRENT_VERSION_SQL = `
SELECT COALESCE(version, 'legacy') AS version FROM mirt_item_params ORDER BY fitted_at DESC, version DESC NULLS LAST LIMIT 1`

export async function currentVersion(q: Queryable): Promise<string | null> {
  return (await q.query<{ version: string }>(CURRENT_VERSION_SQL)).rows[0]?.version ?? null
}

export interface VersionSummary {
  version: string
  current: boolean
  model: string | null
  fittedAt: string
  /** Rows of this version in the history. */
  items: number
  /** Items whose row in mirt_item_params is this version's. */
  inUse: number
  runId: string | null
  source: string
  /** From mirt_fit_meta (null where the calibration left no record, e.g. backfilled rows of another writer). */
  logLik: number | null
  converged: boolean | null
  nItems: number | null
  nPersons: number | null
  fitFittedAt: string | null
}

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null)
const iso = (d: Date | string | null | undefined) => (d ? new Date(d).toISOString() : null)

/** Versions, newest calibration first, with their fit summaries. */
export async function listVersions(q: Queryable, opts: { limit?: number } = {}): Promise<VersionSummary[]> {
  const cur = await currentVersion(q)
  const r = await q.query<{
    version: string; fitted_at: Date; items: number; model: string | null; run_id: string | null; source: string
    model_spec: Record<string, unknown> | null; metrics: Record<string, unknown> | null; fit_at: Date | null; in_use: number
  }>(
    `WITH v AS (
       SELECT version, max(fitted_at) AS fitted_at, count(*)::int AS items, min(model) AS model, max(run_id) AS run_id,
              string_agg(DISTINCT source, ',') AS source
       FROM seedops_item_params_history GROUP BY version),
     u AS (SELECT COALESCE(version, 'legacy') AS version, count(*)::int AS n FROM mirt_item_params GROUP BY 1)
     SELECT v.version, v.fitted_at, v.items, v.model, v.run_id, v.source, f.model_spec, f.metrics, f.fitted_at AS fit_at,
            COALESCE(u.n, 0) AS in_use
     FROM v LEFT JOIN mirt_fit_meta f ON f.run_id = v.run_id LEFT JOIN u ON u.version = v.version
     ORDER BY v.fitted_at DESC, v.version DESC
     LIMIT $1`,
    [opts.limit ?? 1000],
  )
  return r.rows.map((x) => ({
    version: x.version,
    current: x.version === cur,
    model: x.model,
    fittedAt: iso(x.fitted_at)!,
    items: x.items,
    inUse: x.in_use,
    runId: x.run_id,
    source: x.source,
    logLik: num(x.metrics?.logLik),
    converged: typeof x.metrics?.converged === 'boolean' ? x.metrics.converged : null,
    nItems: num(x.model_spec?.n_items),
    nPersons: num(x.model_spec?.n_persons),
    fitFittedAt: iso(x.fit_at),
  }))
}

export interface ItemVersion {
  version: string
  /** This row is the item's row in mirt_item_params now. */
  current: boolean
  model: string | null
  fittedAt: string
  a: number | null
  b: number | null
  c: number | null
  seA: number | null
  seB: number | null
  seC: number | null
  source: string
}

export function parseItemId(v: string): string {
  if (!/^\s*[0-9]{1,18}\s*$/.test(v)) throw usageError(`--item ${JSON.stringify(v)} is not an item id (a whole number, question.id)`)
  return v.trim()
}

/** One item's parameters and standard errors across versions, newest first. */
export async function itemHistory(q: Queryable, itemId: string, opts: { limit?: number } = {}): Promise<ItemVersion[]> {
  const r = await q.query<{ version: string; model: string | null; fitted_at: Date; params: Record<string, unknown>; se: Record<string, unknown> | null; source: string; current: boolean }>(
    `SELECT h.version, h.model, h.fitted_at, h.params, h.se, h.source,
            (m.item_id IS NOT NULL) AS current
     FROM seedops_item_params_history h
     LEFT JOIN mirt_item_params m ON m.item_id = h.item_id AND COALESCE(m.version, 'legacy') = h.version AND m.fitted_at = h.fitted_at
     WHERE h.item_id = $1::bigint
     ORDER BY h.fitted_at DESC, h.version DESC
     LIMIT $2`,
    [itemId, opts.limit ?? 1000],
  )
  return r.rows.map((x) => ({
    version: x.version,
    current: x.current,
    model: x.model,
    fittedAt: iso(x.fitted_at)!,
    a: num(x.params?.a),
    b: num(x.params?.b),
    c: num(x.params?.c),
    seA: num(x.se?.a),
    seB: num(x.se?.b),
    seC: num(x.se?.c),
    source: x.source,
  }))
}

export interface DriftOptions {
  /** Flag |b_cur − b_prev| above this (default 0.3). */
  b: number
  /** Flag |a_cur − a_prev| / a_prev above this (default 0.25). */
  a: number
  /**
   * A move must also exceed z standard errors of the difference, √(SE_prev² + SE_cur²), where both
   * SEs are known (default 3; 0: thresholds alone). On small samples a b estimate's SE alone is
   * 0.3–0.5, so thresholds alone would flag half of an unchanged bank; with the SEs only moves the
   * data can tell from noise are listed. Items without SEs (anchors held fixed, backfilled rows)
   * are judged by the thresholds alone.
   */
  z: number
  /** Fail when more items than this are flagged; undefined: 10% of the compared items (at least 1). */
  failCount?: number
}

export const DRIFT_DEFAULTS: DriftOptions = { b: 0.3, a: 0.25, z: 3 }

export interface DriftItem {
  item_id: string
  previous_version: string
  a_prev: number
  a_cur: number
  se_a_prev: number | null
  se_a_cur: number | null
  b_prev: number
  b_cur: number
  se_b_prev: number | null
  se_b_cur: number | null
  delta_b: number
  rel_delta_a: number
  /** Δ / √(SE_prev² + SE_cur²), null when an SE is unknown. */
  z_b: number | null
  z_a: number | null
}

export interface DriftReport {
  current: string | null
  /** false: mirt_item_params was last written by something else than a calibration seedops recorded (another writer). */
  currentInHistory: boolean
  /** The version calibrated just before the current one (null: none; the check says so). */
  previous: string | null
  /** The previous version's rows came from seedops (a run id), not another writer's backfilled rows. */
  previousBySeedops: boolean
  compared: number
  flagged: DriftItem[]
  failAbove: number
  options: DriftOptions
}

/**
 * Items whose a or b moved more than the thresholds between the current version and, for each of
 * its items, the item's row in the newest version calibrated before it (an item a calibration did
 * not see keeps its older row in mirt_item_params, so that row is what the platform used before).
 */
export async function driftReport(q: Queryable, opts: Partial<DriftOptions> = {}): Promise<DriftReport> {
  const options: DriftOptions = { ...DRIFT_DEFAULTS, ...(Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)) as Partial<DriftOptions>) }
  const current = await currentVersion(q)
  const inHistory = current !== null && (await q.query(`SELECT 1 FROM seedops_item_params_history WHERE version = $1 LIMIT 1`, [current])).rows.length > 0
  const empty = (previous: string | null): DriftReport => ({ current, currentInHistory: inHistory, previous, previousBySeedops: false, compared: 0, flagged: [], failAbove: options.failCount ?? 1, options })
  if (!current || !inHistory) return empty(null)
  const prev = await q.query<{ version: string; seedops: boolean }>(
    `WITH v AS (${VERSIONS})
     SELECT v.version, EXISTS (SELECT 1 FROM seedops_item_params_history h WHERE h.version = v.version AND h.run_id IS NOT NULL) AS seedops
     FROM v WHERE v.t < (SELECT t FROM v WHERE version = $1) ORDER BY v.t DESC, v.version DESC LIMIT 1`,
    [current],
  )
  const previous = prev.rows[0]?.version ?? null
  if (!previous) return empty(null)
  const r = await q.query<{ item_id: string; prev_version: string; cur: Record<string, unknown>; cur_se: Record<string, unknown> | null; prev: Record<string, unknown>; prev_se: Record<string, unknown> | null }>(
    `WITH v AS (${VERSIONS}),
     p AS (
       SELECT DISTINCT ON (h.item_id) h.item_id, h.version, h.params, h.se
       FROM seedops_item_params_history h JOIN v ON v.version = h.version
       WHERE v.t < (SELECT t FROM v WHERE version = $1)
       ORDER BY h.item_id, v.t DESC, h.version DESC)
     SELECT c.item_id::text AS item_id, p.version AS prev_version, c.params AS cur, c.se AS cur_se, p.params AS prev, p.se AS prev_se
     FROM seedops_item_params_history c JOIN p ON p.item_id = c.item_id
     WHERE c.version = $1
     ORDER BY c.item_id`,
    [current],
  )
  const flagged: DriftItem[] = []
  let compared = 0
  for (const x of r.rows) {
    const [aP, aC, bP, bC] = [num(x.prev?.a), num(x.cur?.a), num(x.prev?.b), num(x.cur?.b)]
    if (aP === null || aC === null || bP === null || bC === null) continue
    compared++
    const deltaB = bC - bP
    const relA = aP > 0 ? (aC - aP) / aP : Infinity
    const zOf = (delta: number, se1: number | null, se2: number | null) => (se1 !== null && se2 !== null && se1 > 0 && se2 > 0 ? delta / Math.sqrt(se1 ** 2 + se2 ** 2) : null)
    const zB = zOf(deltaB, num(x.prev_se?.b), num(x.cur_se?.b))
    const zA = zOf(aC - aP, num(x.prev_se?.a), num(x.cur_se?.a))
    const beyondNoise = (z: number | null) => z === null || Math.abs(z) > options.z
    if ((Math.abs(deltaB) > options.b && beyondNoise(zB)) || (Math.abs(relA) > options.a && beyondNoise(zA))) {
      flagged.push({
        item_id: x.item_id,
        previous_version: x.prev_version,
        a_prev: aP,
        a_cur: aC,
        se_a_prev: num(x.prev_se?.a),
        se_a_cur: num(x.cur_se?.a),
        b_prev: bP,
        b_cur: bC,
        se_b_prev: num(x.prev_se?.b),
        se_b_cur: num(x.cur_se?.b),
        delta_b: deltaB,
        rel_delta_a: relA,
        z_b: zB,
        z_a: zA,
      })
    }
  }
  const failAbove = options.failCount ?? Math.max(1, Math.round(compared * 0.1))
  return { current, currentInHistory: true, previous, previousBySeedops: prev.rows[0]!.seedops, compared, flagged, failAbove, options }
}

/** The versions a rollback may go to, newest first (for the refusal of an unknown one). */
export async function knownVersions(q: Queryable): Promise<string[]> {
  return (await q.query<{ version: string }>(`WITH v AS (${VERSIONS}) SELECT version FROM v ORDER BY t DESC, version DESC`)).rows.map((r) => r.version)
}

/** Per-version calibration time, used by rollback (the newest row of each item among versions up to the target). */
export const VERSIONS_SQL = VERSIONS
