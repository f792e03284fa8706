import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type pg from 'pg'
import { from as copyFrom } from 'pg-copy-streams'
import { z } from 'zod'
import { addDays, envFirst, utcDayStart } from '../config/index.js'
import { SeedopsError, usageError } from '../errors/index.js'
import { calibrate, type AnchorItem, type CalibratedItem } from '../irt/calibrate.js'
import { ResponseMatrixBuilder, type BuildReport, type ResponseMatrix } from '../irt/data.js'
import { attachItemFit } from '../irt/itemfit.js'
import { MODELS, type IrtModel } from '../irt/model.js'
import type { Logger } from '../output/index.js'
import type { Stage, StageContext } from '../stages/types.js'
import { plumberPost, type PlumberCalibrateResponse } from './plumber-client.js'
import { readObservations, type RawObservation } from './observations.js'
import { ABILITY_COPY, ABILITY_STAGE_ROWS, ABILITY_STAGING, ANCHORS, DELETE_VERSION_HISTORY, INSERT_VERSION_HISTORY, UPSERT_ABILITY, UPSERT_FIT_META, UPSERT_HISTORY, UPSERT_ITEMS, WRITE_BACK } from './sql.js'

/** calibrate-irt's options (flag, env twins, default): see stages/options.ts. */
export const CalibrateParams = z.object({
  lookbackDays: z.number().int().min(1).max(3660).default(30).meta({ flag: 'lookback-days', env: ['IRT_CALIB_LOOKBACK_DAYS', 'MIRT_LOOKBACK_DAYS'] }),
  // Case-insensitive, as the predecessor's MIRT_MODEL was (`2pl`).
  model: z
    .string()
    .transform((v) => MODELS.find((x) => x.toLowerCase() === v.trim().toLowerCase()) ?? v)
    .pipe(z.enum(['1PL', 'Rasch', '2PL', '3PL']))
    .default('2PL')
    .meta({ flag: 'model', env: ['IRT_MODEL', 'MIRT_MODEL'] }),
  anchorMode: z.enum(['fixed', 'linking', 'none']).default('fixed').meta({ flag: 'anchor-mode', env: ['IRT_ANCHOR_MODE'] }),
  writeBack: z.boolean().default(false).meta({ flag: 'write-back', env: ['IRT_WRITE_BACK'] }),
  allowNonConverged: z.boolean().default(false).meta({ flag: 'allow-non-converged' }),
  minResponses: z.number().int().min(1).default(5).meta({ flag: 'min-responses', env: ['IRT_MIN_RESPONSES'] }),
  engine: z.enum(['native', 'r-plumber']).default('native').meta({ flag: 'engine', env: ['IRT_ENGINE'] }),
  /** The R service's timeout per request, seconds. */
  timeoutSeconds: z.number().int().min(1).default(300).meta({ flag: 'timeout', env: ['R_IRT_TIMEOUT_SECONDS'] }),
  retries: z.number().int().min(0).max(10).default(3).meta({ flag: 'retries', env: ['R_IRT_RETRIES'] }),
  /** EM cycle limit (native engine); undefined: the engine's default (500). */
  maxCycles: z.number().int().min(1).max(100_000).optional().meta({ flag: 'max-cycles', env: ['IRT_MAX_CYCLES'] }),
  /** Connections the observations are read across on a real server (1: the run's own); undefined: READ_STREAMS. The same knob as compute-kpis' split read. */
  readStreams: z.number().int().min(1).max(16).optional().meta({ env: ['SEEDOPS_PARALLEL_CONNECTIONS'] }),
})
export type CalibrateParams = z.infer<typeof CalibrateParams>

/**
 * Read streams on a real server by default (SEEDOPS_PARALLEL_CONNECTIONS; 1 = the run's own
 * connection). Reading 3 M observations (bench:calibrate-stage's data, 2 cores, busy machine, best
 * of 3): 1 stream 9.5 s, 2 streams 9.0 s, 3 streams 8.0 s. The server's side dominates (the read
 * model's expressions); parsing costs Node about 2 s of CPU whatever the count.
 */
export const READ_STREAMS = 3

export interface CalibrateSummary {
  runId: string
  version: string
  model: IrtModel
  window: { from: string; to: string }
  persons: number
  items: number
  observations: number
  duplicates: number
  anchors: { used: number; mode: CalibrateParams['anchorMode'] }
  linking: { A: number; B: number } | null
  fit: { logLik: number; AIC: number; BIC: number; iterations: number; converged: boolean; maxChange: number; seconds: number }
  degenerate: { item_id: string; reason: string; n: number }[]
}


/** A value in COPY's text format: backslash, tab, newline and carriage return escaped. */
const copyText = (v: string) => (/[\\\t\n\r]/.test(v) ? v.replace(/[\\\t\n\r]/g, (c) => (c === '\\' ? '\\\\' : c === '\t' ? '\\t' : c === '\n' ? '\\n' : '\\r')) : v)

/**
 * Every learner with a finite ability, on the linked scale, into ABILITY_STAGING's table: by COPY
 * on a real server (numbers as JavaScript prints them: the shortest text that reads back as the
 * same double); the embedded server's socket does not take COPY FROM STDIN (it loses the protocol),
 * so there as arrays (ABILITY_STAGE_ROWS).
 */
async function stageAbilities(tx: pg.ClientBase, embedded: boolean, ids: readonly string[], theta: ArrayLike<number>, se: ArrayLike<number>, L: { A: number; B: number }): Promise<number> {
  if (embedded) {
    const users: string[] = []
    const th: number[] = []
    const ses: number[] = []
    ids.forEach((u, i) => {
      if (!Number.isFinite(theta[i]) || !Number.isFinite(se[i])) return
      users.push(u)
      th.push(L.A * theta[i]! + L.B)
      ses.push(L.A * se[i]!)
    })
    await tx.query(ABILITY_STAGE_ROWS, [users, th, ses])
    return users.length
  }
  let n = 0
  function* lines(): Generator<string> {
    let buf = ''
    for (let i = 0; i < ids.length; i++) {
      if (!Number.isFinite(theta[i]) || !Number.isFinite(se[i])) continue
      buf += `${copyText(ids[i]!)}\t${L.A * theta[i]! + L.B}\t${L.A * se[i]!}\n`
      n++
      if (buf.length >= 1 << 16) {
        yield buf
        buf = ''
      }
    }
    if (buf) yield buf
  }
  const sink: unknown = tx.query(copyFrom(ABILITY_COPY))
  // The runner's guarded client answers a cancelled run with a rejected promise, not a stream.
  if (typeof (sink as Promise<unknown>).then === 'function') await sink
  await pipeline(Readable.from(lines()), sink as NodeJS.WritableStream)
  return n
}

const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length
const sd = (xs: number[]) => {
  const m = mean(xs)
  return Math.sqrt(xs.reduce((s, x) => s + (x - m) ** 2, 0) / (xs.length - 1))
}

interface EngineOutput {
  items: CalibratedItem[]
  theta: ArrayLike<number>
  se: ArrayLike<number>
  degenerate: { item_id: string; reason: string; n: number }[]
  warnings: string[]
  fit: { logLik: number; AIC: number; BIC: number; iterations: number; converged: boolean; maxChange: number; seconds: number; nParameters: number; groupPars: unknown; quadpts: number; thetaLim: readonly [number, number] }
}

async function nativeEngine(data: ResponseMatrix, params: CalibrateParams, anchors: AnchorItem[], logger: Logger): Promise<EngineOutput> {
  const res = await calibrate(data, {
    model: params.model,
    anchors: params.anchorMode === 'fixed' && anchors.length ? anchors : undefined,
    freeLatent: params.anchorMode === 'fixed' && anchors.length > 0 && params.model !== 'Rasch' && params.model !== '1PL' ? true : undefined,
    minResponses: params.minResponses,
    maxCycles: params.maxCycles,
    onCycle: (c) => {
      if (c.cycle % 25 === 0) logger.progress(`calibrate-irt: cycle ${c.cycle}, logLik ${c.logLik.toFixed(2)}, max change ${c.maxChange.toExponential(2)}`)
    },
  })
  // calibrate() returns the EAP scores of its final E-step (and fills infit/outfit); re-score only if absent.
  const { theta, se } = res.scores ?? attachItemFit(res)
  return { items: res.items, theta, se, degenerate: res.degenerate, warnings: res.warnings, fit: res.fit }
}

/** The predecessor's R service (SPEC 3: kept as an optional backend); same writes, fewer diagnostics. */
async function plumberEngine(
  data: ResponseMatrix,
  obs: RawObservation[],
  params: CalibrateParams,
  anchors: AnchorItem[],
  env: NodeJS.ProcessEnv,
  logger: Logger,
): Promise<EngineOutput> {
  const t0 = Date.now()
  const body = {
    observations: obs.map((o) => ({ user_id: o.user_id, item_id: o.item_id, is_correct: o.correct ? 1 : 0 })),
    model: params.model,
    anchors: params.anchorMode === 'none' ? [] : anchors.map((x) => ({ item_id: x.item_id, params: { a: x.a, b: x.b, c: x.c ?? 0 }, fixed: params.anchorMode === 'fixed' })),
  }
  logger.progress(`calibrate-irt: sending ${obs.length} observations to the R IRT service`)
  const r = await plumberPost<PlumberCalibrateResponse>('irt/calibrate', body, {
    baseUrl: envFirst(['R_IRT_BASE_URL'], env)!.value,
    token: envFirst(['R_IRT_INTERNAL_TOKEN'], env)?.value ?? null,
    timeoutMs: params.timeoutSeconds * 1000,
    retries: params.retries,
    logger,
  })
  if (r.status !== 'ok' || !Array.isArray(r.item_params) || !Array.isArray(r.abilities)) {
    throw new SeedopsError(`the R IRT service answered status ${JSON.stringify(r.status)} without item_params/abilities`, { code: 'IRT_SERVICE_BAD_RESPONSE' })
  }
  // Per-item counts from our own data, so the written rows carry n and p-correct whatever the service sends.
  const n = new Map<string, { n: number; k: number }>()
  for (let i = 0; i < data.nPersons; i++) {
    for (let k = data.rowPtr[i]!; k < data.rowPtr[i + 1]!; k++) {
      const id = data.itemIds[data.items[k]!]!
      const c = n.get(id) ?? { n: 0, k: 0 }
      c.n++
      c.k += data.resp[k]!
      n.set(id, c)
    }
  }
  const fixed = new Set(params.anchorMode === 'fixed' ? anchors.map((a) => a.item_id) : [])
  const items: CalibratedItem[] = r.item_params
    .filter((p) => Number.isFinite(p.params?.a) && Number.isFinite(p.params?.b))
    .map((p) => {
      const id = String(p.item_id)
      const c = p.params.c ?? 0
      const cnt = n.get(id) ?? { n: 0, k: 0 }
      return { item_id: id, a: p.params.a, b: p.params.b, c, d: -p.params.a * p.params.b, se_a: null, se_b: null, se_c: null, se_d: null, anchored: fixed.has(id), n: cnt.n, p_correct: cnt.n ? cnt.k / cnt.n : 0, infit: null, outfit: null, flags: ['r-plumber'] }
    })
  const byUser = new Map(r.abilities.map((a) => [String(a.user_id), a]))
  const theta = data.personIds.map((u) => byUser.get(u)?.theta ?? NaN)
  const se = data.personIds.map((u) => byUser.get(u)?.se ?? NaN)
  const missing = data.personIds.filter((u) => !byUser.has(u)).length
  const fm = (r.fit_meta ?? {}) as Record<string, unknown>
  const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : NaN)
  return {
    items,
    theta,
    se,
    degenerate: [],
    warnings: missing ? [`the R IRT service returned no ability for ${missing} learner(s); they keep their previous estimate`] : [],
    fit: {
      logLik: num(fm.logLik),
      AIC: num(fm.AIC),
      BIC: num(fm.BIC),
      iterations: num(fm.iterations),
      converged: fm.converged === undefined ? true : Boolean(fm.converged),
      maxChange: NaN,
      seconds: (Date.now() - t0) / 1000,
      nParameters: NaN,
      groupPars: null,
      quadpts: 61,
      thetaLim: [-6, 6],
    },
  }
}

/**
 * The window's observations, streamed into typed arrays (no row objects) inside the runner's
 * transaction; the R service is sent the rows themselves, so only that engine keeps them.
 */
async function readWindow(params: CalibrateParams, ctx: StageContext, from: string, warnings: string[]): Promise<{ data: ResponseMatrix; report: BuildReport; raw: RawObservation[] | null }> {
  const { logger } = ctx
  const t0 = performance.now()
  const builder = new ResponseMatrixBuilder({ duplicates: 'first' })
  const streams = params.readStreams ?? READ_STREAMS
  if (streams > 1 && ctx.db.kind !== 'postgres') logger.debug(`calibrate-irt: the embedded database has one connection: observations read in one stream, not ${streams}`)
  const read = await readObservations(ctx.tx, { from: utcDayStart(from), to: utcDayStart(addDays(ctx.asOf, 1)) }, builder, {
    keepRows: params.engine === 'r-plumber',
    split: { db: ctx.db, streams, signal: ctx.signal },
  })
  if (read.rows === 0) {
    throw new SeedopsError(`no answered questions between ${from} and ${ctx.asOf}: nothing to calibrate`, {
      code: 'EMPTY_LOOKBACK',
      suggestions: [`Check the date, or widen the window: seedops run calibrate-irt --lookback-days ${params.lookbackDays * 2}`, 'Previous item parameters are unchanged'],
    })
  }
  const { data, report } = builder.finish()
  if (report.rejected.count) warnings.push(`${report.rejected.count} observation(s) without a learner, item or 0/1 value left out (${Object.entries(report.rejected.byReason).map(([k, v]) => `${k}: ${v}`).join(', ')})`)
  logger.progress(`calibrate-irt: read ${read.rows} observations in ${((performance.now() - t0) / 1000).toFixed(1)} s${read.streams > 1 ? ` (${read.streams} connections)` : ''}`)
  logger.progress(`calibrate-irt: ${data.nPersons} learners, ${data.nItems} items, ${data.nObs} responses (${report.duplicates.count} repeats: first attempt kept), ${from}..${ctx.asOf}`)
  return { data, report, raw: read.raw }
}

/** The anchors (see ANCHORS) answered in the window; c only for the 3PL. */
async function answeredAnchors(tx: pg.ClientBase, data: ResponseMatrix, params: CalibrateParams, warnings: string[]): Promise<AnchorItem[]> {
  const answered = new Set(data.itemIds)
  const anchorRows = (await tx.query<{ item_id: string; a: number; b: number; c: number; tagged: boolean }>(ANCHORS)).rows.filter((r) => answered.has(r.item_id))
  const anchors: AnchorItem[] = anchorRows.map((r) => ({ item_id: r.item_id, a: r.a, b: r.b, c: params.model === '3PL' ? r.c : 0 }))
  if (params.anchorMode === 'linking' && anchors.length < 2) warnings.push(`mean/sigma linking needs at least 2 anchors answered in the window, found ${anchors.length}: results stay on the N(0,1) scale`)
  return anchors
}

/**
 * --anchor-mode linking: mean/sigma linking (Marco 1977) onto the anchors' published scale,
 * b* = A·b + B, a* = a/A (θ* = A·θ + B when the abilities are written). Other modes: the items as estimated.
 */
function linkToAnchors(estimated: CalibratedItem[], anchors: AnchorItem[], params: CalibrateParams, warnings: string[]): { linking: { A: number; B: number } | null; items: CalibratedItem[] } {
  let linking: { A: number; B: number } | null = null
  if (params.anchorMode === 'linking' && anchors.length >= 2) {
    const est = new Map(estimated.map((it) => [it.item_id, it]))
    const pairs = anchors.filter((x) => est.has(x.item_id))
    const bRef = pairs.map((x) => x.b)
    const bEst = pairs.map((x) => est.get(x.item_id)!.b)
    const A = sd(bRef) / sd(bEst)
    const B = mean(bRef) - A * mean(bEst)
    if (Number.isFinite(A) && A > 0) linking = { A, B }
    else warnings.push('linking constants are not finite (anchors with identical difficulty?): results stay on the N(0,1) scale')
  }
  const L = linking ?? { A: 1, B: 0 }
  const items = estimated.map((it) => ({
    ...it,
    a: it.a / L.A,
    b: L.A * it.b + L.B,
    d: -(it.a / L.A) * (L.A * it.b + L.B),
    se_a: it.se_a === null ? null : it.se_a / L.A,
    se_b: it.se_b === null ? null : it.se_b * L.A,
  }))
  return { linking, items }
}

/** Item parameters (+ the version's history rows), abilities (+ history) and --write-back, in the run's transaction. */
async function writeEstimates(
  ctx: StageContext,
  params: CalibrateParams,
  w: { version: string; runId: string; items: CalibratedItem[]; personIds: readonly string[]; theta: ArrayLike<number>; se: ArrayLike<number>; L: { A: number; B: number } },
): Promise<{ abilities: number; writtenBack: number }> {
  const { tx } = ctx
  const { version, runId, items } = w
  const itemRows = [
    items.map((it) => Number(it.item_id)),
    items.map((it) => JSON.stringify({ a: it.a, b: it.b, c: it.c })),
    items.map((it) => JSON.stringify({ a: it.se_a, b: it.se_b, c: it.se_c, d: it.se_d })),
    items.map((it) => JSON.stringify({ n: it.n, p_correct: it.p_correct, infit: it.infit, outfit: it.outfit, anchored: it.anchored, flags: it.flags })),
  ]
  await tx.query(UPSERT_ITEMS, [params.model, version, ...itemRows])
  // The version's rows in the history too (a re-run of the version replaces them): drift and rollback read them.
  await tx.query(DELETE_VERSION_HISTORY, [version])
  await tx.query(INSERT_VERSION_HISTORY, [params.model, version, ...itemRows, runId])
  await tx.query(ABILITY_STAGING)
  const abilities = await stageAbilities(tx, ctx.db.kind !== 'postgres', w.personIds, w.theta, w.se, w.L)
  // mirt_ability keeps the latest estimate per learner and model (version = the model), not one
  // row per day; the dated version is in the ability history, mirt_item_params and mirt_fit_meta.
  await tx.query(UPSERT_ABILITY, [params.model, params.model])
  await tx.query(UPSERT_HISTORY, [params.model, version, 'calibrate-irt', runId, `${ctx.asOf}T23:59:59.999Z`])
  let writtenBack = 0
  if (params.writeBack) {
    const free = items.filter((it) => !it.anchored)
    writtenBack =
      (await tx.query(WRITE_BACK, [free.map((it) => Number(it.item_id)), free.map((it) => JSON.stringify({ a: it.a, b: it.b, c: it.c, model: params.model, version }))])).rowCount ?? 0
  }
  return { abilities, writtenBack }
}

/**
 * calibrate-irt (SPEC 2/3): marginal-ML calibration of every item answered in the lookback (the
 * native engine, or the R service with --engine r-plumber), then EAP abilities for every learner on
 * the new scale. Anchors (question.meta
 * tagged "anchor", or an irt block marked `anchor: true` or unmarked and not written by seedops: see
 * IS_ANCHOR) are held fixed (default) or used for mean/sigma linking afterwards. Writes
 * mirt_item_params (+ its history under the version), mirt_ability (+ ability history) and mirt_fit_meta in the runner's one
 * transaction. A non-converged fit (unless --allow-non-converged) writes no parameters: its
 * mirt_fit_meta row (converged=false, run id …:not-converged) is recorded after the rollback and the
 * run fails (exit 1). --write-back marks what it writes `anchor: false`, so written-back items stay free.
 */
export const calibrateIrt: Stage<CalibrateParams, CalibrateSummary> = {
  id: 'calibrate-irt',
  description: 'IRT calibration (item parameters, abilities, fit) over the lookback window; anchors: tag "anchor" or meta.irt not written back by seedops.',
  supportsDryRun: true,
  options: CalibrateParams,
  toParams(p: CalibrateParams, env) {
    if (p.engine === 'r-plumber' && !envFirst(['R_IRT_BASE_URL'], env)) throw usageError('--engine r-plumber needs R_IRT_BASE_URL', ['Set R_IRT_BASE_URL (and R_IRT_INTERNAL_TOKEN), or use --engine native'])
    return p
  },
  async run(params, ctx) {
    const from = addDays(ctx.asOf, -(params.lookbackDays - 1))
    const warnings: string[] = []
    if (envFirst(['MIRT_MAX_OBS'], ctx.env)) warnings.push('MIRT_MAX_OBS is ignored: seedops calibrates every observation in the lookback (no cap)')
    const { data, report, raw } = await readWindow(params, ctx, from, warnings)
    const anchors = await answeredAnchors(ctx.tx, data, params, warnings)
    const res = params.engine === 'native' ? await nativeEngine(data, params, anchors, ctx.logger) : await plumberEngine(data, raw!, params, anchors, ctx.env, ctx.logger)
    warnings.push(...res.warnings)
    const { linking, items } = linkToAnchors(res.items, anchors, params, warnings)

    const version = `${ctx.asOf}.${params.model}`
    const runId = `calibrate-irt:${ctx.asOf}:${params.model}`
    const fit = {
      logLik: res.fit.logLik,
      AIC: res.fit.AIC,
      BIC: res.fit.BIC,
      iterations: res.fit.iterations,
      converged: res.fit.converged,
      maxChange: res.fit.maxChange,
      seconds: res.fit.seconds,
    }
    const summary: CalibrateSummary = {
      runId,
      version,
      model: params.model,
      window: { from, to: ctx.asOf },
      persons: data.nPersons,
      items: items.length,
      observations: data.nObs,
      duplicates: report.duplicates.count,
      anchors: { used: params.anchorMode === 'none' ? 0 : anchors.length, mode: params.anchorMode },
      linking,
      fit,
      degenerate: res.degenerate.map((d) => ({ item_id: d.item_id, reason: d.reason, n: d.n })),
    }
    if (res.degenerate.length) warnings.push(`${res.degenerate.length} item(s) not calibrated: ${res.degenerate.slice(0, 8).map((d) => `${d.item_id} (${d.reason}, n=${d.n})`).join(', ')}${res.degenerate.length > 8 ? ', …' : ''}`)

    const written = res.fit.converged || params.allowNonConverged
    const fitMeta = (id: string) => [
      id,
      JSON.stringify({ model: params.model, n_persons: data.nPersons, n_items: items.length, n_obs: data.nObs, lookback_days: params.lookbackDays, window: summary.window, anchor_mode: params.anchorMode, anchors: anchors.length, quadpts: res.fit.quadpts, theta_lim: res.fit.thetaLim, engine: params.engine, max_cycles: params.maxCycles ?? null }),
      // params_written: whether mirt_item_params holds this fit's estimates (false: the previous ones were kept).
      JSON.stringify({ ...fit, nParameters: res.fit.nParameters, groupPars: res.fit.groupPars, linking_constants: linking, degenerate: summary.degenerate, params_written: written, stage_run: ctx.runId }),
    ]
    if (!written) {
      // Its own run id, so it never replaces the record of the converged fit whose parameters stay in use;
      // recorded after the rollback (the runner's recordAfter), the run still fails.
      const id = `${runId}:not-converged`
      ctx.recordAfter(UPSERT_FIT_META, fitMeta(id))
      throw new SeedopsError(
        `calibration did not converge in ${res.fit.iterations} cycles (max change ${Number.isFinite(res.fit.maxChange) ? res.fit.maxChange.toExponential(2) : 'unknown'}); previous parameters kept, the fit recorded in mirt_fit_meta as ${id}`,
        {
          code: 'IRT_NOT_CONVERGED',
          suggestions: ['Inspect the data (degenerate items, very sparse items), or widen --lookback-days', 'To write the estimates anyway: --allow-non-converged'],
        },
      )
    }
    const tw = performance.now()
    await ctx.tx.query(UPSERT_FIT_META, fitMeta(runId))
    if (!res.fit.converged) warnings.push(`calibration did not converge in ${res.fit.iterations} cycles: estimates written anyway (--allow-non-converged), mirt_fit_meta says converged=false`)
    const { abilities, writtenBack } = await writeEstimates(ctx, params, { version, runId, items, personIds: data.personIds, theta: res.theta, se: res.se, L: linking ?? { A: 1, B: 0 } })
    ctx.logger.progress(`calibrate-irt: wrote ${items.length} item parameters and ${abilities} abilities (+ history) in ${((performance.now() - tw) / 1000).toFixed(1)} s`)
    ctx.logger.progress(`calibrate-irt: ${fit.converged ? 'converged' : 'NOT converged'} in ${fit.iterations} cycles, logLik ${fit.logLik.toFixed(2)}, ${fit.seconds.toFixed(1)} s`)
    const sample = items.slice(0, 15)
    return {
      rows: { mirt_item_params: items.length, seedops_item_params_history: items.length, mirt_ability: abilities, seedops_ability_history: abilities, mirt_fit_meta: 1, question_write_back: writtenBack, degenerate_items: res.degenerate.length },
      summary,
      table: { head: ['item_id', 'a', 'b', 'c', 'se_b', 'n', 'infit', 'outfit', 'anchored'], rows: sample.map((it) => [it.item_id, it.a, it.b, it.c, it.se_b, it.n, it.infit, it.outfit, it.anchored]) },
      warnings,
    }
  },
}

export default calibrateIrt
