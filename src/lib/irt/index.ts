/**
 * Native IRT engine: the public surface used by the offline commands, the database stage and the
 * HTTP service. No I/O here (CSV reading lives in io.ts / offline.ts).
 *
 *   buildResponseMatrix(rows, {duplicates}) → sparse CSR data + rejection/duplicate report
 *   calibrate(data, {model, anchors, prior, tol, maxCycles, onCycle, …}) → items, fit, degenerate, scores
 *   score(items, responses, {method, prior}) → θ, SE
 *   priorPosterior / updatePosterior / posteriorSummary → online EAP, one response at a time
 */
export { buildResponseMatrix, buildFromIndexed, parseBinary, type ResponseMatrix, type ResponseRow, type BuildReport, type BuildOptions, type DuplicatePolicy } from './data.js'
export {
  calibrate,
  latentMoments,
  type AnchorItem,
  type CalibrateOptions,
  type CalibratedItem,
  type CalibrationResult,
  type CycleInfo,
  type DegenerateItem,
  type FitSummary,
} from './calibrate.js'
export { score, eapScores, itemArrays, priorPosterior, updatePosterior, posteriorSummary, type ScoreMethod, type ScoreOptions, type ScoreResult, type ScoringItem, type GridPosterior, type NormalPrior } from './score.js'
export { irf, sigmoid, logit, toIrt, fromIrt, MODELS, DEFAULT_GUESSING_PRIOR, type IrtModel, type ItemParams, type GuessingPrior } from './model.js'
export { makeGrid, normalWeights, logNormalWeights, DEFAULT_QUADPTS, DEFAULT_THETA_LIM, type Grid } from './grid.js'
