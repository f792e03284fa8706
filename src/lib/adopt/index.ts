// `seedops adopt`: take over the predecessor's namespace (plan, apply, rollback, prune).
export { adoptPlan, adoptApply, adoptRollback, adoptPrune, stageEvidence, type AdoptResult, type StageEvidence } from './apply.js'
export { buildPlan, covers, type PlanRow, type RowAction } from './plan.js'
export { legacyStageOf, isSeedopsObject } from './mapping.js'
export { readRecord, RECORD_NAME, type AdoptionRecord } from './record.js'
export { runLogReader } from './runlog.js'
export { renderAdopt, adoptSummary } from './render.js'
