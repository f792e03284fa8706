import { addDays, utcDayStart } from '../config/index.js'
import { usageError } from '../errors/index.js'
import { CURRENT_VERSION_SQL, driftReport } from '../irt-stage/history.js'
import { stageFreshness } from './freshness.js'
import type { Check, CheckGroup, VerifyContext } from './types.js'


async function freshness(ctx: VerifyContext, stage: string): Promise<Awaited<ReturnType<Check['run']>>> {
  const f = await stageFreshness(ctx, stage, 26)
  if (f.verdict === 'never') return { status: 'fail', message: `${stage} has never succeeded (run: seedops run ${stage})`, numbers: f.numbers }
  if (f.verdict === 'stale') return { status: 'fail', message: `last successful ${stage} ${f.ageH} h ago (> ${f.maxAgeH} h)`, numbers: f.numbers }
  return { status: 'ok', message: `last success ${f.ageH} h ago, as of ${f.run!.asOf}`, numbers: f.numbers }
}

/** Rows of mirt_fit_meta that seedops wrote (alias m): the writer mark, or a seedops run id from before the mark. */
const SEEDOPS_FIT_META = `(COALESCE(m.model_spec ->> 'writer' = 'seedops', false) OR m.run_id LIKE 'calibrate-irt:%')`

const r3 = (x: number | null) => (x === null ? null : Math.round(x * 1000) / 1000)

/**
 * Drift between the current calibration version and the one before it (seedops_item_params_history):
 * items whose b moved more than driftB or whose a moved more than driftA of its previous value.
 * warn when any is flagged, fail when more than driftFailCount are (default 10% of the compared
 * items). No previous version: pass, saying so. A previous version another system wrote (the
 * predecessor's parameters backfilled by migration 0004) is compared but never fails: a switch of
 * engine moves the scale.
 */
const drift: Check = {
  id: 'drift',
  description: 'item parameters moved little since the previous calibration: no |Δb| > 0.3 or |Δa|/a > 0.25 (--drift-b, --drift-a) that is also beyond 3 SEs of the difference (--drift-z); fail above --drift-fail-count items (default 10%)',
  async run({ q, options }) {
    const d = await driftReport(q, { b: options.driftB, a: options.driftA, z: options.driftZ, failCount: options.driftFailCount })
    const numbers = {
      current_version: d.current,
      previous_version: d.previous,
      compared: d.compared,
      flagged: d.flagged.length,
      fail_above: d.failAbove,
      threshold_b: d.options.b,
      threshold_a: d.options.a,
      z: d.options.z,
    }
    if (!d.current) return { status: 'ok', message: 'no item parameters yet: nothing to compare', numbers }
    if (!d.currentInHistory) return { status: 'ok', message: `mirt_item_params was last written as version ${d.current}, which no calibration by seedops recorded (another writer?): not compared`, numbers }
    if (!d.previous) return { status: 'ok', message: `${d.current} is the only calibration in the history: no previous version to compare with`, numbers }
    const span = `${d.previous} → ${d.current}`
    const beyond = d.options.z > 0 ? ` (and ${d.options.z} SEs)` : ''
    if (!d.flagged.length) return { status: 'ok', message: `${span}: none of ${d.compared} items moved beyond |Δb| ${d.options.b} or |Δa|/a ${d.options.a}${beyond}`, numbers }
    const rows = d.flagged.slice(0, 50).map((x) => ({
      item_id: x.item_id,
      previous_version: x.previous_version,
      a_prev: r3(x.a_prev),
      se_a_prev: r3(x.se_a_prev),
      a_cur: r3(x.a_cur),
      se_a_cur: r3(x.se_a_cur),
      b_prev: r3(x.b_prev),
      se_b_prev: r3(x.se_b_prev),
      b_cur: r3(x.b_cur),
      se_b_cur: r3(x.se_b_cur),
      delta_b: r3(x.delta_b),
      rel_delta_a: r3(x.rel_delta_a),
      z_b: x.z_b === null ? null : Math.round(x.z_b * 10) / 10,
      z_a: x.z_a === null ? null : Math.round(x.z_a * 10) / 10,
    }))
    const msg = `${span}: ${d.flagged.length} of ${d.compared} items drifted (|Δb| > ${d.options.b} or |Δa|/a > ${d.options.a}${beyond}): ${d.flagged.slice(0, 8).map((x) => x.item_id).join(', ')}${d.flagged.length > 8 ? ', …' : ''}`
    if (d.flagged.length > d.failAbove && d.previousBySeedops) return { status: 'fail', message: `${msg}; more than ${d.failAbove} (roll back: seedops irt rollback --to ${d.previous})`, numbers, rows }
    const note = d.flagged.length > d.failAbove ? `; the previous parameters were written by another system (not failed)` : ''
    return { status: 'warn', message: msg + note, numbers, rows }
  },
}

/** Checks on the calibration output: mirt_item_params and mirt_fit_meta. */
export const irtGroup: CheckGroup = {
  id: 'irt',
  description: 'item parameters and calibration fit',
  checks: [
    { id: 'freshness', description: 'calibrate-irt succeeded recently', run: (ctx) => freshness(ctx, 'calibrate-irt') },
    {
      id: 'converged',
      description: 'the latest calibration by seedops converged (rows another writer left in mirt_fit_meta are not read as seedops\' own)',
      async run({ q }) {
        // seedops marks its rows (model_spec.writer; older ones by their run id); the predecessor's
        // R service wrote {model, n_persons, n_items} and linking constants, with no convergence flag.
        // A fit that did not converge is recorded too (run id …:not-converged, params_written false):
        // if it is the latest, this check fails and names the converged fit whose parameters stay in use.
        const r = await q.query<{ run_id: string; converged: boolean | null; iterations: number | null; loglik: number | null; params_written: boolean | null; in_use: string | null }>(
          `SELECT run_id, CASE WHEN jsonb_typeof(metrics -> 'converged') = 'boolean' THEN (metrics ->> 'converged')::boolean END AS converged,
                  CASE WHEN jsonb_typeof(metrics -> 'iterations') = 'number' THEN (metrics ->> 'iterations')::float8::int END AS iterations,
                  CASE WHEN jsonb_typeof(metrics -> 'logLik') = 'number' THEN (metrics ->> 'logLik')::float8 END AS loglik,
                  CASE WHEN jsonb_typeof(metrics -> 'params_written') = 'boolean' THEN (metrics ->> 'params_written')::boolean END AS params_written,
                  -- the current version's calibration (after an irt rollback, not the newest one), else the newest written fit
                  COALESCE((SELECT max(h.run_id) FROM seedops_item_params_history h WHERE h.version = (${CURRENT_VERSION_SQL})),
                           (SELECT p.run_id FROM mirt_fit_meta p WHERE ${SEEDOPS_FIT_META.replaceAll('m.', 'p.')} AND p.metrics ->> 'params_written' IS DISTINCT FROM 'false'
                            ORDER BY p.fitted_at DESC, p.run_id DESC LIMIT 1)) AS in_use
           FROM mirt_fit_meta m WHERE ${SEEDOPS_FIT_META} ORDER BY fitted_at DESC, run_id DESC LIMIT 1`,
        )
        const others = (await q.query<{ n: number }>(`SELECT count(*)::int AS n FROM mirt_fit_meta m WHERE NOT (${SEEDOPS_FIT_META})`)).rows[0]!.n
        const note = others ? ` (${others} row(s) written by another system, e.g. the predecessor's R service, not read)` : ''
        const m = r.rows[0]
        if (!m) return { status: 'fail', message: `no calibration by seedops recorded in mirt_fit_meta${note}`, numbers: { other_writer_rows: others } }
        const numbers = { run_id: m.run_id, iterations: m.iterations, logLik: m.loglik, parameters_from: m.in_use, other_writer_rows: others }
        if (m.converged) return { status: 'ok', message: `${m.run_id} converged in ${m.iterations} cycles${note}`, numbers }
        const kept = m.params_written === false ? `; its estimates were not written, the parameters in use are from ${m.in_use ?? 'no earlier seedops calibration'}` : m.params_written ? '; its estimates were written anyway (--allow-non-converged)' : ''
        return { status: 'fail', message: `${m.run_id} did not converge in ${m.iterations} cycles${kept}${note}`, numbers }
      },
    },
    {
      id: 'ranges',
      description: 'parameters finite and plausible: 0 < a ≤ 10, |b| ≤ 8, 0 ≤ c < 0.5',
      async run({ q }) {
        const r = await q.query(
          `SELECT item_id, params, count(*) OVER ()::int AS total FROM mirt_item_params
           WHERE NOT (jsonb_typeof(params -> 'a') = 'number' AND jsonb_typeof(params -> 'b') = 'number'
                      AND (params ->> 'a')::float8 > 0 AND (params ->> 'a')::float8 <= 10
                      AND abs((params ->> 'b')::float8) <= 8
                      AND COALESCE((params ->> 'c')::float8, 0) >= 0 AND COALESCE((params ->> 'c')::float8, 0) < 0.5)
           ORDER BY item_id LIMIT 5`,
        )
        const total = (await q.query<{ n: number }>(`SELECT count(*)::int AS n FROM mirt_item_params`)).rows[0]!.n
        const bad = (r.rows[0] as { total?: number } | undefined)?.total ?? 0
        const numbers = { items: total, out_of_range: bad }
        if (total === 0) return { status: 'fail', message: 'mirt_item_params is empty (run: seedops run calibrate-irt)', numbers }
        if (bad) return { status: 'fail', message: `${bad} of ${total} items out of range`, numbers, rows: r.rows.map(({ total: _t, ...x }) => x) }
        return { status: 'ok', message: `${total} items in range`, numbers }
      },
    },
    {
      id: 'coverage',
      description: 'items answered at least 5 times in the last 30 days have parameters',
      async run({ q, asOf }) {
        const r = await q.query<{ answered: number; with_params: number }>(
          `WITH a AS (SELECT item_id FROM seedops_attempt_base WHERE completed_at >= $1::timestamptz AND completed_at < $2::timestamptz GROUP BY item_id HAVING count(*) >= 5)
           SELECT count(*)::int AS answered, count(m.item_id)::int AS with_params FROM a LEFT JOIN mirt_item_params m ON m.item_id::text = a.item_id::text`,
          [utcDayStart(addDays(asOf, -29)), utcDayStart(addDays(asOf, 1))],
        )
        const n = r.rows[0]!
        const pct = n.answered ? Math.round((n.with_params / n.answered) * 1000) / 10 : 100
        const numbers = { answered_items: n.answered, with_params: n.with_params, coverage_pct: pct }
        if (n.answered === 0) return { status: 'warn', message: 'no items answered in the last 30 days', numbers }
        return pct >= 95 ? { status: 'ok', message: `${n.with_params}/${n.answered} answered items have parameters`, numbers } : { status: 'warn', message: `only ${pct}% of answered items have parameters`, numbers }
      },
    },
    drift,
  ],
}

/** Checks on learner abilities: mirt_ability and the ability history. */
export const thetaGroup: CheckGroup = {
  id: 'theta',
  description: 'learner abilities',
  checks: [
    {
      id: 'coverage',
      description: 'learners active in the last 30 days have an ability estimate',
      async run({ q, asOf }) {
        const r = await q.query<{ active: number; with_theta: number }>(
          `WITH a AS (SELECT DISTINCT user_id FROM seedops_attempt_base WHERE completed_at >= $1::timestamptz AND completed_at < $2::timestamptz)
           SELECT count(*)::int AS active, count(*) FILTER (WHERE EXISTS (SELECT 1 FROM mirt_ability m WHERE m.user_id = a.user_id))::int AS with_theta FROM a`,
          [utcDayStart(addDays(asOf, -29)), utcDayStart(addDays(asOf, 1))],
        )
        const n = r.rows[0]!
        const pct = n.active ? Math.round((n.with_theta / n.active) * 1000) / 10 : 100
        const numbers = { active_learners: n.active, with_theta: n.with_theta, coverage_pct: pct }
        if (n.active === 0) return { status: 'warn', message: 'no active learners in the last 30 days', numbers }
        return pct >= 95 ? { status: 'ok', message: `${n.with_theta}/${n.active} active learners have θ`, numbers } : { status: 'fail', message: `only ${pct}% of active learners have θ (run: seedops run calibrate-irt)`, numbers }
      },
    },
    {
      id: 'ranges',
      description: 'θ in [−6, 6] and SE > 0 in mirt_ability and the history',
      async run({ q }) {
        const r = await q.query<{ bad_ability: number; bad_history: number; ability: number; history: number }>(
          `SELECT (SELECT count(*) FROM mirt_ability WHERE NOT (theta BETWEEN -6 AND 6 AND se > 0))::int AS bad_ability,
                  (SELECT count(*) FROM seedops_ability_history WHERE NOT (theta BETWEEN -6 AND 6 AND se > 0))::int AS bad_history,
                  (SELECT count(*) FROM mirt_ability)::int AS ability, (SELECT count(*) FROM seedops_ability_history)::int AS history`,
        )
        const n = r.rows[0]!
        if (n.bad_ability || n.bad_history) return { status: 'fail', message: `${n.bad_ability} ability and ${n.bad_history} history rows out of range`, numbers: n }
        return { status: 'ok', message: `${n.ability} abilities, ${n.history} history rows in range`, numbers: n }
      },
    },
  ],
}

/** verify irt's drift thresholds as given (strings from --drift-b/-a/-z) → check options (undefined: the check's default). */
export function driftOptions(given: { driftB?: string; driftA?: string; driftZ?: string; driftFailCount?: number }): Record<string, number> {
  const pos = (name: string, v: string | undefined) => {
    if (v === undefined) return undefined
    const n = Number(v)
    if (!(Number.isFinite(n) && n > 0)) throw usageError(`--${name} must be a positive number, got ${JSON.stringify(v)}`, [`e.g. --${name} ${name === 'drift-b' ? '0.3' : '0.25'}`])
    return n
  }
  const z = given.driftZ === undefined ? undefined : Number(given.driftZ)
  if (z !== undefined && !(Number.isFinite(z) && z >= 0)) throw usageError(`--drift-z must be a number ≥ 0, got ${JSON.stringify(given.driftZ)}`, ['e.g. --drift-z 3, or --drift-z 0 for the thresholds alone'])
  const out: Record<string, number | undefined> = { driftB: pos('drift-b', given.driftB), driftA: pos('drift-a', given.driftA), driftZ: z, driftFailCount: given.driftFailCount }
  return Object.fromEntries(Object.entries(out).filter(([, v]) => v !== undefined)) as Record<string, number>
}
