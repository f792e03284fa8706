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

const UPSERT = `
WITH h AS (
  INSERT INTO seedops_ability_history (user_id, theta, se, model, version, source, key, measured_at)
  VALUES ($1, $2, $3, $4, $5, 'update-theta', $6, $7)
  ON CONFLICT (user_id, key) DO UPDATE SET theta = EXCLUDED.theta, se = EXCLUDED.se, model = EXCLUDED.model, version = EXCLUDED.version, recorded_at = now()
  RETURNING 1
)
INSERT INTO mirt_ability (user_id, version, theta, se, model, fitted_at) VALUES ($1, 'online', $2, $3, $4, now())
ON CONFLICT (user_id, version) DO UPDATE SET theta = EXCLUDED.theta, se = EXCLUDED.se, model = EXCLUDED.model, fitted_at = EXCLUDED.fitted_at
RETURNING fitted_at`

/**
 * Online θ update after one session (SPEC 2): the prior is the learner's latest estimate before the
 * session (normal N(θ, SE²)), else N(0, 1); the session's responses to items with parameters are
 * folded into the grid posterior one at a time; the EAP and posterior SD are the new estimate.
 * Writes mirt_ability (version "online": the latest online estimate) and the ability history (key
 * session:<id>, idempotent), both labelled with the model of the calibration whose parameters it used.
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
  const items = new Map<number, ScoringItem & { model: string | null; version: string | null }>()
  for (const r of (await tx.query<{ item_id: number; a: number; b: number; c: number; model: string | null; version: string | null }>(ITEM_PARAMS_SQL)).rows) {
    items.set(Number(r.item_id), { a: r.a, b: r.b, c: r.c, model: r.model, version: r.version })
  }
  // The estimate is labelled with the calibration its parameters come from (the most used one when
  // the session mixes item sources), not a fixed "2PL".
  const calibrations = new Map<string, number>()
  const key = `session:${s.session_id}`
  const priorRow = (await tx.query<{ theta: number; se: number; src: string }>(PRIOR_SQL, [p.user, s.at, key])).rows[0]
  const prior = priorRow ? { theta: priorRow.theta, se: priorRow.se, source: priorRow.src } : { theta: 0, se: 1, source: 'N(0,1)' }
  let post = priorPosterior({ mean: prior.theta, variance: prior.se ** 2 })
  let used = 0
  let skipped = 0
  for (const r of (await tx.query<{ item_id: number; correct: boolean }>(RESPONSES_SQL, [p.user, s.session_id])).rows) {
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
  if (used === 0) {
    throw new SeedopsError(`session ${s.session_id} has no responses to items with parameters (${skipped} without): θ unchanged`, {
      code: 'NO_ITEM_PARAMS',
      suggestions: ['Run: seedops run calibrate-irt (or publish question.meta.irt for these items)'],
    })
  }
  const est = posteriorSummary(post)
  const [model, version] = JSON.parse([...calibrations.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))[0]![0]) as [string, string]
  const w = await tx.query<{ fitted_at: Date }>(UPSERT, [p.user, est.theta, est.se, model, version, key, s.at])
  return {
    user_id: p.user,
    session_id: s.session_id,
    theta: est.theta,
    se: est.se,
    prior,
    responses: used,
    skipped,
    model,
    version,
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
      rows: { mirt_ability: 1, seedops_ability_history: 1, responses: r.responses },
      summary: r,
      table: { head: ['user_id', 'session_id', 'prior θ', 'prior SE', 'θ', 'SE', 'responses'], rows: [[r.user_id, r.session_id, r.prior.theta, r.prior.se, r.theta, r.se, r.responses]] },
      warnings: r.skipped ? [`${r.skipped} response(s) to items without parameters were not used`] : [],
    }
  },
}

export default updateThetaStage
