export * from './types.js'
export { mergeReports, runChecks } from './run.js'
export { renderChecks } from './render.js'
export { toJUnit } from './junit.js'
