// `seedops adopt`: take over the predecessor's namespace (plan, apply, rollback, prune).
export { adoptPlan, adoptApply, adoptRollback, adoptPrune, type AdoptResult } from './apply.js'
export { legacyStageOf } from './mapping.js'
export { runLogReader } from './runlog.js'
export { renderAdopt, adoptSummary } from './render.js'
