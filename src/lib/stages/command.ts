import { resolveDate } from '../config/index.js'
import { withDb } from '../db/index.js'
import { usageError } from '../errors/index.js'
import type { Logger } from '../output/index.js'
import { renderTable } from '../output/index.js'
import { dayRange, runRange, runWithPrerequisites, type RangeReport } from './chain.js'
import type { Stage, StageRunReport } from './types.js'

/** A single run (with the runs that had to come first, e.g. a finalised KPI week), or a --from/--to range. */
export type StageCommandResult<S = unknown> = (StageRunReport<S> & { before?: StageRunReport[] }) | RangeReport<S>

export const isRange = <S>(r: StageCommandResult<S>): r is RangeReport<S> => 'runs' in r

export type StageFlagValues = Record<string, unknown> & { 'database-url'?: string; date?: string; 'dry-run'?: boolean; from?: string; to?: string; 'keep-going'?: boolean }

/** The as-of days of a command: --from..--to, else the one --date (default today UTC). */
export function asOfDays(flags: StageFlagValues): string[] {
  if (!flags.from) return [resolveDate(flags.date)]
  if (flags.date) throw usageError('--date and --from are exclusive', ['One day: --date D; a range: --from D1 --to D2'])
  return dayRange(resolveDate(flags.from), resolveDate(flags.to))
}

/** What a thin `run <stage>` command calls: open the database, parse params, run under the runner. */
export async function executeStage<P, S>(stage: Stage<P, S>, flags: StageFlagValues, logger: Logger): Promise<StageCommandResult<S>> {
  const days = asOfDays(flags)
  const params = stage.parseParams(flags, process.env)
  const dryRun = Boolean(flags['dry-run'])
  return withDb(flags, async (db) => {
    if (flags.from) return runRange(db, stage, params, { days, keepGoing: Boolean(flags['keep-going']), dryRun, logger })
    const { before, report } = await runWithPrerequisites(db, stage, params, { asOf: days[0]!, dryRun, logger })
    return before.length ? { ...report, before } : report
  })
}

function runLine(r: StageRunReport): string {
  const counts = Object.entries(r.rows)
    .map(([k, v]) => `${k}=${v}`)
    .join(', ')
  return `${r.stage} ${r.dryRun ? 'dry run' : 'run #' + r.runId} as of ${r.asOf}: ${r.status} in ${(r.durationMs / 1000).toFixed(1)} s${counts ? ` (${counts})` : ''}`
}

export function renderStageReport(r: StageCommandResult): void {
  if (isRange(r)) {
    for (const x of r.runs) process.stdout.write(runLine(x) + '\n')
    for (const f of r.failures) process.stdout.write(`${f.stage} as of ${f.asOf}: FAILED (${f.code}) ${f.message}\n`)
    if (r.notRun.length) process.stdout.write(`not run: ${r.notRun[0]}..${r.notRun.at(-1)} (${r.notRun.length} day(s)); fix the failure and re-run with --from ${r.notRun[0]}, or use --keep-going\n`)
    return
  }
  for (const b of r.before ?? []) process.stdout.write(runLine(b) + '\n')
  process.stdout.write(runLine(r) + '\n')
  if (r.table && r.table.rows.length) process.stdout.write(renderTable(r.table.head, r.table.rows) + '\n')
}
