import { randomUUID } from 'node:crypto'
import { z } from 'zod'
import { SeedopsError } from '../errors/index.js'
import { calibrate } from '../irt/calibrate.js'
import { buildResponseMatrix, type ResponseRow } from '../irt/data.js'
import { attachItemFit } from '../irt/itemfit.js'

/**
 * The R Plumber service's contract (SPEC 3), answered by the native engine, so the platform API
 * can point R_IRT_BASE_URL at `seedops irt serve` unchanged. /irt/calibrate and update-theta;
 * /irt/score, the hot route, is validated by hand in score-request.ts. The server loads this
 * module (and zod, the EM) on the first request that needs it.
 */
const Model = z.preprocess((v) => (typeof v === 'string' ? v.trim().toUpperCase().replace('RASCH', 'Rasch') : v), z.enum(['1PL', 'Rasch', '2PL', '3PL']))

const Anchor = z.object({
  item_id: z.union([z.string(), z.number()]).transform(String),
  params: z.object({ a: z.number().positive(), b: z.number(), c: z.number().min(0).max(0.99).optional() }),
  fixed: z.boolean().optional(),
})

export const CalibrateRequest = z
  .object({
    observations: z.array(z.object({ user_id: z.union([z.string(), z.number()]), item_id: z.union([z.string(), z.number()]), is_correct: z.unknown(), responded_at: z.string().optional() })).optional(),
    responses: z.array(z.array(z.union([z.number(), z.null()]))).optional(),
    model: Model.default('2PL'),
    anchors: z.array(Anchor).optional(),
  })
  .refine((b) => Boolean(b.observations) !== Boolean(b.responses), { message: 'give exactly one of observations or responses' })

export const UpdateThetaRequest = z.object({
  user_id: z.union([z.string(), z.number()]).transform(String),
  session_id: z.string().optional(),
  lookback_days: z.number().int().min(1).max(3660).optional(),
})

function bad(message: string, data?: Record<string, unknown>): SeedopsError {
  return new SeedopsError(message, { code: 'BAD_REQUEST', data })
}

export function parseBody<T extends z.ZodTypeAny>(schema: T, body: unknown): z.infer<T> {
  const r = schema.safeParse(body)
  if (!r.success) throw bad(`invalid request: ${r.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ')}`)
  return r.data
}

/** What the server's metrics learn from a handler: batch sizes and calibration outcomes. */
export interface HandlerHooks {
  batch?(persons: number, items: number): void
  calibration?(outcome: 'converged' | 'not_converged' | 'error'): void
}

export async function handleCalibrate(body: unknown, hooks: HandlerHooks = {}) {
  const req = parseBody(CalibrateRequest, body)
  let rows: ResponseRow[]
  if (req.observations) {
    // Oldest first, so the "first attempt" rule is by time, as in the database stage.
    const obs = [...req.observations].sort((x, y) => (x.responded_at ?? '').localeCompare(y.responded_at ?? ''))
    rows = obs.map((o, k) => ({ user_id: o.user_id, item_id: o.item_id, is_correct: o.is_correct, row: k + 1 }))
  } else {
    rows = []
    req.responses!.forEach((pattern, i) =>
      pattern.forEach((y, j) => {
        if (y !== null) rows.push({ user_id: String(i + 1), item_id: String(j + 1), is_correct: y, row: rows.length + 1 })
      }),
    )
  }
  const { data, report } = buildResponseMatrix(rows, { duplicates: 'first' })
  if (report.rejected.count) {
    throw bad(`${report.rejected.count} observation(s) have unusable values (is_correct must be 0/1 or true/false)`, { rejected: report.rejected })
  }
  if (data.nObs === 0) throw bad('no observations')
  hooks.batch?.(data.nPersons, data.nItems)
  const fixed = (req.anchors ?? []).filter((a) => a.fixed !== false)
  let res: Awaited<ReturnType<typeof calibrate>>
  try {
    res = await calibrate(data, {
      model: req.model,
      anchors: fixed.length ? fixed.map((a) => ({ item_id: a.item_id, a: a.params.a, b: a.params.b, c: a.params.c ?? 0 })) : undefined,
      freeLatent: fixed.length > 0 && req.model !== 'Rasch' && req.model !== '1PL' ? true : undefined,
    })
  } catch (e) {
    hooks.calibration?.('error')
    throw e
  }
  hooks.calibration?.(res.fit.converged ? 'converged' : 'not_converged')
  // calibrate() returns the EAP scores of its final E-step (and fills infit/outfit); re-score only if absent.
  const { theta, se } = res.scores ?? attachItemFit(res)
  return {
    status: 'ok',
    item_params: res.items.map((it) => ({ item_id: it.item_id, params: { a: it.a, b: it.b, c: it.c }, se: { a: it.se_a, b: it.se_b, c: it.se_c }, fit: { infit: it.infit, outfit: it.outfit, n: it.n } })),
    abilities: data.personIds.map((u, i) => ({ user_id: u, theta: theta[i], se: se[i] })),
    fit_meta: {
      run_id: randomUUID(),
      model_spec: { model: req.model, n_persons: data.nPersons, n_items: data.nItems, n_obs: data.nObs },
      linking_constants: fixed.length ? { method: 'fixed-anchors', n_anchors: fixed.length, mean: res.fit.groupPars.mean, variance: res.fit.groupPars.variance } : null,
      logLik: res.fit.logLik,
      AIC: res.fit.AIC,
      BIC: res.fit.BIC,
      iterations: res.fit.iterations,
      converged: res.fit.converged,
      degenerate: res.degenerate,
      duplicates_dropped: report.duplicates.count,
    },
  }
}
