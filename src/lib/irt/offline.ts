import { writeFileSync } from 'node:fs'
import { SeedopsError, usageError } from '../errors/index.js'
import type { Logger } from '../output/index.js'
import { calibrate, type CalibratedItem, type CycleInfo, type DegenerateItem, type FitSummary } from './calibrate.js'
import type { BuildReport, DuplicatePolicy } from './data.js'
import { formatCsv, readAnchorsCsv, readItemParamsCsv, readResponsesCsv } from './io.js'
import type { GuessingPrior, IrtModel } from './model.js'
import { score, type ScoreMethod } from './score.js'

/**
 * The offline commands' work: read CSV files, run the engine, write CSV files. Kept apart from the
 * engine so the engine stays free of I/O (a database stage and an HTTP service call it directly).
 */

/** `beta:5,17`, `logit-normal:-1.4,0.5` or `none`. */
export function parsePrior(spec: string): GuessingPrior | null {
  const s = spec.trim().toLowerCase()
  if (s === 'none') return null
  const m = /^(beta|logit-normal):\s*([-+0-9.eE]+)\s*,\s*([-+0-9.eE]+)$/.exec(s)
  const x = m ? Number(m[2]) : NaN
  const y = m ? Number(m[3]) : NaN
  if (!m || !Number.isFinite(x) || !Number.isFinite(y)) {
    throw usageError(`--prior "${spec}" is not understood`, ['--prior beta:5,17 (Beta(α, β) on c, the default)', '--prior logit-normal:-1.4,0.5 (normal on logit c)', '--prior none'])
  }
  if (m[1] === 'beta') {
    if (!(x > 0 && y > 0)) throw usageError(`--prior ${spec}: Beta parameters must be > 0`)
    return { type: 'beta', alpha: x, beta: y }
  }
  if (!(y > 0)) throw usageError(`--prior ${spec}: the standard deviation must be > 0`)
  return { type: 'logit-normal', mean: x, sd: y }
}

export interface DataSummary {
  file: string
  rows: number
  accepted: number
  nPersons: number
  nItems: number
  nObs: number
  rejected: BuildReport['rejected']
  duplicates: BuildReport['duplicates']
}

function loadResponses(file: string, duplicates: DuplicatePolicy, strict: boolean, logger: Logger): { data: ReturnType<typeof readResponsesCsv>['data']; summary: DataSummary } {
  const { data, report } = readResponsesCsv(file, { duplicates })
  const summary: DataSummary = { file, rows: report.rows, accepted: report.accepted, nPersons: data.nPersons, nItems: data.nItems, nObs: data.nObs, rejected: report.rejected, duplicates: report.duplicates }
  const rj = report.rejected
  if (rj.count) {
    const ex = rj.examples.slice(0, 3).map((e) => `row ${e.row} (${e.reason === 'empty_value' ? 'empty is_correct' : e.reason === 'invalid_value' ? `is_correct "${e.value}"` : e.reason.replace(/_/g, ' ')})`)
    const msg = `${file}: ${rj.count} row(s) rejected (${Object.entries(rj.byReason).map(([k, v]) => `${k} ${v}`).join(', ')}), e.g. ${ex.join(', ')}`
    if (strict) throw new SeedopsError(msg, { code: 'IRT_BAD_ROWS', data: { rejected: rj }, suggestions: ['is_correct must be exactly 0 or 1', 'Drop --strict to skip such rows with a warning'] })
    logger.warn(msg)
  }
  const dp = report.duplicates
  if (dp.count) {
    const msg = `${file}: ${dp.count} duplicate (user_id, item_id) row(s) (${dp.sameValue} same value, ${dp.conflicting} conflicting); kept the ${dp.policy} occurrence, e.g. row ${dp.examples[0].row} repeats row ${dp.examples[0].kept_row}`
    if (strict && dp.conflicting) throw new SeedopsError(msg, { code: 'IRT_DUPLICATES', data: { duplicates: dp }, suggestions: ['Resolve the conflicting rows, or drop --strict'] })
    logger.warn(msg)
  }
  if (data.nObs === 0) {
    throw new SeedopsError(`${file}: no usable responses (${report.rows} data row(s), ${rj.count} rejected)`, {
      code: 'IRT_NO_DATA',
      data: { rejected: rj },
      suggestions: ['The file needs rows user_id,item_id,is_correct with is_correct 0 or 1'],
    })
  }
  return { data, summary }
}

export interface CalibrateFileOptions {
  input: string
  model: IrtModel
  anchors?: string
  out?: string
  duplicates: DuplicatePolicy
  strict: boolean
  prior?: string
  tol: number
  maxCycles: number
  freeLatent: boolean
  se: boolean
  threads: number | 'auto'
  minResponses: number
  onCycle?: (c: CycleInfo) => void
}

/** Wall seconds per phase of an offline run: reading the CSV, the EM fit (with item fit), standard errors, writing the output. */
export interface PhaseTimings {
  read: number
  fit: number
  se: number | null
  write: number
  total: number
}

export interface CalibrateFileResult {
  data: DataSummary
  model: IrtModel
  fit: FitSummary
  items: CalibratedItem[]
  degenerate: DegenerateItem[]
  out: string | null
  timings: PhaseTimings
}

export const ITEM_COLUMNS = ['item_id', 'a', 'b', 'c', 'd', 'se_a', 'se_b', 'se_c', 'se_d', 'anchored', 'n', 'p_correct', 'infit', 'outfit'] as const

export async function calibrateFile(o: CalibrateFileOptions, logger: Logger): Promise<CalibrateFileResult> {
  const prior = o.prior !== undefined ? parsePrior(o.prior) : undefined
  if (prior !== undefined && o.model !== '3PL') throw usageError('--prior applies to the 3PL lower asymptote only', [`Use --model 3PL, or drop --prior`])
  const t0 = performance.now()
  const anchors = o.anchors ? readAnchorsCsv(o.anchors) : undefined
  const { data, summary } = loadResponses(o.input, o.duplicates, o.strict, logger)
  const tRead = performance.now()
  logger.info(`Calibrating ${o.model}: ${data.nPersons} persons, ${data.nItems} items, ${data.nObs} responses${anchors ? `, ${anchors.length} anchor(s)` : ''}`)
  const res = await calibrate(data, {
    model: o.model,
    anchors,
    prior,
    tol: o.tol,
    maxCycles: o.maxCycles,
    freeLatent: o.freeLatent,
    se: o.se,
    threads: o.threads,
    minResponses: o.minResponses,
    onCycle: o.onCycle,
  })
  const free = res.items.filter((it) => !it.anchored)
  if (!free.length) {
    // An empty table and exit 0 would read as success in CI; nothing was calibrated, so say why.
    const reasons = res.degenerate.slice(0, 5).map((d) => `${d.item_id} (${d.reason.replace(/_/g, ' ')}, n=${d.n})`)
    throw new SeedopsError(
      `${o.input}: no item could be calibrated: ${res.degenerate.length ? `${res.degenerate.length} item(s) excluded, e.g. ${reasons.join(', ')}` : 'every item is an anchor'}`,
      {
        code: 'IRT_NOTHING_CALIBRATED',
        data: { degenerate: res.degenerate },
        suggestions: [
          `An item needs at least --min-responses (${o.minResponses}) responses with both right and wrong answers`,
          'Add more responses (a longer lookback), or lower --min-responses',
        ],
      },
    )
  }
  const tFit = performance.now()
  for (const w of res.warnings) logger.warn(w)
  if (o.out) {
    writeFileSync(o.out, formatCsv([...ITEM_COLUMNS], res.items.map((it) => ITEM_COLUMNS.map((k) => it[k]))))
  }
  const tEnd = performance.now()
  const se = res.fit.seSeconds ?? null
  const fitS = (tFit - tRead) / 1000
  const timings: PhaseTimings = { read: (tRead - t0) / 1000, fit: se === null ? fitS : Math.max(0, fitS - se), se, write: (tEnd - tFit) / 1000, total: (tEnd - t0) / 1000 }
  return { data: summary, model: o.model, fit: res.fit, items: res.items, degenerate: res.degenerate, out: o.out ?? null, timings }
}

export interface ScoreFileOptions {
  params: string
  input: string
  method: ScoreMethod
  priorMean: number
  priorVariance: number
  duplicates: DuplicatePolicy
  strict: boolean
  out?: string
}

export interface PersonScore {
  user_id: string
  theta: number | null
  se: number | null
  n_responses: number
  extreme: boolean
}

export interface ScoreFileResult {
  data: DataSummary
  method: ScoreMethod
  prior: { mean: number; variance: number } | null
  nPersons: number
  unknownItems: string[]
  scores: PersonScore[]
  out: string | null
}

export function scoreFile(o: ScoreFileOptions, logger: Logger): ScoreFileResult {
  if (!(o.priorVariance > 0)) throw usageError(`--prior-variance must be > 0, got ${o.priorVariance}`)
  const items = readItemParamsCsv(o.params)
  const { data, summary } = loadResponses(o.input, o.duplicates, o.strict, logger)
  const s = score(items, data, { method: o.method, prior: { mean: o.priorMean, variance: o.priorVariance } })
  if (s.unknownItems.length) {
    const msg = `${s.unknownItems.length} item(s) in ${o.input} have no parameters in ${o.params} and were ignored: ${s.unknownItems.slice(0, 5).join(', ')}${s.unknownItems.length > 5 ? ', …' : ''}`
    if (s.unknownItems.length === data.nItems) throw new SeedopsError(`none of the items in ${o.input} has parameters in ${o.params}`, { code: 'IRT_NO_PARAMS', suggestions: ['Check that both files use the same item_id values'] })
    logger.warn(msg)
  }
  const fin = (v: number) => (Number.isFinite(v) ? v : null)
  const scores: PersonScore[] = (s.personIds ?? []).map((user_id, i) => ({ user_id, theta: fin(s.theta[i]), se: fin(s.se[i]), n_responses: s.nResponses[i], extreme: s.extreme[i] === 1 }))
  const nExtreme = scores.filter((x) => x.extreme).length
  if (nExtreme) logger.warn(`${nExtreme} person(s) have all-correct or all-wrong patterns: ML has no finite estimate; θ is set to the range bound (±6) with no SE (consider --method eap or map)`)
  if (o.out) writeFileSync(o.out, formatCsv(['user_id', 'theta', 'se', 'n_responses', 'extreme'], scores.map((x) => [x.user_id, x.theta, x.se, x.n_responses, x.extreme])))
  return { data: summary, method: o.method, prior: o.method === 'ml' ? null : { mean: o.priorMean, variance: o.priorVariance }, nPersons: scores.length, unknownItems: s.unknownItems, scores, out: o.out ?? null }
}
