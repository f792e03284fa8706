import { Flags } from '@oclif/core'
import { resolveDate } from '../config/index.js'
import { withDb } from '../db/flags.js'
import type { Logger } from '../output/index.js'
import { renderTable } from '../output/index.js'
import { runStage } from './runner.js'
import type { Stage, StageRunReport } from './types.js'

/** Flags every `seedops run <stage>` command has. */
export const stageFlags = {
  date: Flags.string({ description: 'As-of date, YYYY-MM-DD in UTC (default: today UTC).', helpGroup: 'STAGE' }),
  'dry-run': Flags.boolean({ description: 'Compute and report, write nothing (the transaction is rolled back).', helpGroup: 'STAGE' }),
}

/** What a thin `run <stage>` command calls: open the database, parse params, run under the runner. */
export async function executeStage<P, S>(
  stage: Stage<P, S>,
  flags: Record<string, unknown> & { 'database-url'?: string; date?: string; 'dry-run'?: boolean },
  logger: Logger,
): Promise<StageRunReport<S>> {
  const asOf = resolveDate(flags.date)
  const params = stage.parseParams(flags, process.env)
  return withDb(flags, (db) => runStage(db, stage, params, { asOf, dryRun: Boolean(flags['dry-run']), logger }))
}

export function renderStageReport(r: StageRunReport): void {
  const counts = Object.entries(r.rows)
    .map(([k, v]) => `${k}=${v}`)
    .join(', ')
  process.stdout.write(
    `${r.stage} ${r.dryRun ? 'dry run' : 'run #' + r.runId} as of ${r.asOf}: ${r.status} in ${(r.durationMs / 1000).toFixed(1)} s${counts ? ` (${counts})` : ''}\n`,
  )
  if (r.table && r.table.rows.length) process.stdout.write(renderTable(r.table.head, r.table.rows) + '\n')
}
