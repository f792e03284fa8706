import type pg from 'pg'
import { z } from 'zod'
import { SeedopsError } from '../errors/index.js'
import { posteriorSummary, priorPosterior, updatePosterior, type ScoringItem } from '../irt/score.js'
import { ITEM_PARAMS_SQL } from './sql.js'
import type { Stage } from '../stages/types.js'

/** update-theta's options (flag, env twin, default): see stages/options.ts. */
export const UpdateThetaParams = z.object({
  user: z.string().min(1).meta({ flag: 'user' }),
  session: z.string().min(1).optional().meta({ flag: 'session' }),
  lookbackDays: z.number().int().min(1).max(3660).default(30).meta({ flag: 'lookback-days', env: ['THETA_LOOKBACK_DAYS'] }),
})
export type UpdateThetaParams = z.infer<typeof UpdateThetaParams>

export interface UpdateThetaResult {
  user_id: string
  session_id: string
  theta: number
  se: number
  prior: { theta: number; se: number; source: string }
  responses: number
  skipped: number
  /** Later sessions of the learner, already folded in, that were folded again onto this one (it came late). */
  refolded: number
  model: string
  version: string
  updated_at: string
}

const SESSION_SQL = `
SELECT session_id, max(completed_at) AS at FROM seedops_attempt_base
WHERE user_id = $1 AND ($2::text IS NULL OR session_id = $2)
  AND completed_at >= ($4::date + 1 - $3::int)::timestamptz AND completed_at < ($4::date + 1)::timestamptz
GROUP BY session_id ORDER BY at DESC LIMIT 1`

const RESPONSES_SQL = `SELECT item_id, correct FROM seedops_attempt_base WHERE user_id = $1 AND session_id = $2 ORDER BY question_no`

/** The latest estimate strictly before the session (never the session's own earlier update), so re-runs are idempotent. */
const PRIOR_SQL = `
SELECT theta, se, source || ':' || key AS src FROM seedops_ability_history
WHERE user_id = $1 AND measured_at < $2 AND key <> $3 AND se > 0
ORDER BY measured_at DESC, id DESC LIMIT 1`

const HISTORY_UPSERT = `
INSERT INTO seedops_ability_history (user_id, theta, se, model, version, source, key, measured_at)
VALUES ($1, $2, $3, $4, $5, 'update-theta', $6, $7)
ON CONFLICT (user_id, key) DO UPDATE SET theta = EXCLUDED.theta, se = EXCLUDED.se, model = EXCLUDED.model, version = EXCLUDED.version, recorded_at = now()`

/** The learner's sessions already folded in that are later than the one being folded. */
const LATER_SQL = `
SELECT key, measured_at FROM seedops_ability_history
WHERE user_id = $1 AND source = 'update-theta' AND measured_at > $2
ORDER BY measured_at, id`

/** mirt_ability 'online' is the estimate after the learner's latest session (by session time, not by call order). */
const ONLINE_UPSERT = `
INSERT INTO mirt_ability (user_id, version, theta, se, model, fitted_at)
SELECT user_id, 'online', theta, se, model, now() FROM seedops_ability_history
WHERE user_id = $1 AND source = 'update-theta'
ORDER BY measured_at DESC, id DESC LIMIT 1
ON CONFLICT (user_id, version) DO UPDATE SET theta = EXCLUDED.theta, se = EXCLUDED.se, model = EXCLUDED.model, fitted_at = EXCLUDED.fitted_at
RETURNING fitted_at`

type Items = Map<number, ScoringItem & { model: string | null; version: string | null }>

interface Folded {
  theta: number
  se: number
  prior: UpdateThetaResult['prior']
  used: number
  skipped: number
  model: string
  version: string
}

/** One session's responses folded into the learner's latest estimate before it; `used` 0: none to an item with parameters. */
async function foldSession(tx: Pick<pg.PoolClient, 'query'>, user: string, sessionId: string, at: Date, items: Items): Promise<Folded> {
  // The estimate is labelled with the calibration its parameters come from (the most used one when
  // the session mixes item sources), not a fixed "2PL".
  const calibrations = new Map<string, number>()
  const priorRow = (await tx.query<{ theta: number; se: number; src: string }>(PRIOR_SQL, [user, at, `session:${sessionId}`])).rows[0]
  const prior = priorRow ? { theta: priorRow.theta, se: priorRow.se, source: priorRow.src } : { theta: 0, se: 1, source: 'N(0,1)' }
  let post = priorPosterior({ mean: prior.theta, variance: prior.se ** 2 })
  let used = 0
  let skipped = 0
  for (const r of (await tx.query<{ item_id: number; correct: boolean }>(RESPONSES_SQL, [user, sessionId])).rows) {
    const it = items.get(Number(r.item_id))
    if (!it) {
      skipped++
      continue
    }
    post = updatePosterior(post, it, r.correct ? 1 : 0)
    used++
    const cal = JSON.stringify([it.model ?? ((it.c ?? 0) > 0 ? '3PL' : '2PL'), it.version ?? 'question.meta.irt'])
    calibrations.set(cal, (calibrations.get(cal) ?? 0) + 1)
  }
  const est = posteriorSummary(post)
  const top = [...calibrations.entries()].sort((x, y) => y[1] - x[1] || x[0].localeCompare(y[0]))[0]
  const [model, version] = top ? (JSON.parse(top[0]) as [string, string]) : ['', '']
  return { theta: est.theta, se: est.se, prior, used, skipped, model, version }
}

/**
 * Online θ update after one session (SPEC 2): the prior is the learner's latest estimate before the
 * session (normal N(θ, SE²)), else N(0, 1); the session's responses to items with parameters are
 * folded into the grid posterior one at a time; the EAP and posterior SD are the new estimate.
 * Writes the ability history (key session:<id>, idempotent) and mirt_ability (version "online":
 * the estimate after the latest session), labelled with the model of the calibration whose
 * parameters were used. A session older than ones already folded in (calls for one learner came
 * out of order) has those re-folded onto it, so the estimates do not depend on the call order.
 * The caller holds the learner's lock (the stage's lockScope): one update per learner at a time.
 */
export async function updateTheta(tx: Pick<pg.PoolClient, 'query'>, p: UpdateThetaParams, asOf: string): Promise<UpdateThetaResult> {
  // The session lookback is the whole UTC days ending at the as-of date (--date), never now(): a
  // re-run for a past date ignores later sessions.
  const s = (await tx.query<{ session_id: string; at: Date }>(SESSION_SQL, [p.user, p.session ?? null, p.lookbackDays, asOf])).rows[0]
  if (!s) {
    const window = `the ${p.lookbackDays} days ending ${asOf}`
    throw new SeedopsError(
      p.session ? `session ${p.session} of user ${p.user} has no answered questions in ${window}` : `user ${p.user} has no session in ${window}`,
      { code: 'NOT_FOUND', suggestions: ['Check the user id and session id (exam_results.session_id)', 'Or widen --lookback-days'] },
    )
  }
  const items: Items = new Map()
  for (const r of (await tx.query<{ item_id: number; a: number; b: number; c: number; model: string | null; version: string | null }>(ITEM_PARAMS_SQL)).rows) {
    items.set(Number(r.item_id), { a: r.a, b: r.b, c: r.c, model: r.model, version: r.version })
  }
  const f = await foldSession(tx, p.user, s.session_id, s.at, items)
  if (f.used === 0) {
    throw new SeedopsError(`session ${s.session_id} has no responses to items with parameters (${f.skipped} without): θ unchanged`, {
      code: 'NO_ITEM_PARAMS',
      suggestions: ['Run: seedops run calibrate-irt (or publish question.meta.irt for these items)'],
    })
  }
  await tx.query(HISTORY_UPSERT, [p.user, f.theta, f.se, f.model, f.version, `session:${s.session_id}`, s.at])
  // Later sessions folded in before this one: each again onto its (now changed) prior, in time order.
  let refolded = 0
  for (const r of (await tx.query<{ key: string; measured_at: Date }>(LATER_SQL, [p.user, s.at])).rows) {
    const later = await foldSession(tx, p.user, r.key.slice('session:'.length), r.measured_at, items)
    // Its items have lost their parameters since: the estimate it has stays (it cannot be redone).
    if (later.used === 0) continue
    await tx.query(HISTORY_UPSERT, [p.user, later.theta, later.se, later.model, later.version, r.key, r.measured_at])
    refolded++
  }
  const w = await tx.query<{ fitted_at: Date }>(ONLINE_UPSERT, [p.user])
  return {
    user_id: p.user,
    session_id: s.session_id,
    theta: f.theta,
    se: f.se,
    prior: f.prior,
    responses: f.used,
    skipped: f.skipped,
    refolded,
    model: f.model,
    version: f.version,
    updated_at: new Date(w.rows[0]!.fitted_at).toISOString(),
  }
}

export const updateThetaStage: Stage<UpdateThetaParams, UpdateThetaResult> = {
  id: 'update-theta',
  description: "Online EAP update of one learner's θ after a session.",
  supportsDryRun: true,
  // One learner at a time: updates of different learners run in parallel, a second update of the
  // same learner waits for the first (its prior is the first one's result).
  lockScope: (p) => `user:${p.user}`,
  lockWaitMs: 30_000,
  options: UpdateThetaParams,
  async run(params, ctx) {
    ctx.logger.progress(`update-theta: user ${params.user}, ${params.session ? `session ${params.session}` : 'latest session'} in the ${params.lookbackDays} days ending ${ctx.asOf}`)
    const r = await updateTheta(ctx.tx, params, ctx.asOf)
    return {
      rows: { mirt_ability: 1, seedops_ability_history: 1 + r.refolded, responses: r.responses },
      summary: r,
      table: { head: ['user_id', 'session_id', 'prior θ', 'prior SE', 'θ', 'SE', 'responses'], rows: [[r.user_id, r.session_id, r.prior.theta, r.prior.se, r.theta, r.se, r.responses]] },
      warnings: [
        ...(r.skipped ? [`${r.skipped} response(s) to items without parameters were not used`] : []),
        ...(r.refolded ? [`session ${r.session_id} is older than ${r.refolded} already folded in: those were folded again onto it (mirt_ability keeps the latest session's estimate)`] : []),
      ],
    }
  },
}

export default updateThetaStage
