export * from './types.js'
export { mergeReports, orderResults, runChecks, summarize, type RunOptions } from './run.js'
export { renderChecks, summaryLine, type RenderOptions } from './render.js'
export { toJUnit } from './junit.js'
