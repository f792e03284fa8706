import { resolveDate } from '../config/index.js'
import { withDb } from '../db/index.js'
import { usageError } from '../errors/index.js'
import type { Logger } from '../output/index.js'
import { renderTable } from '../output/index.js'
import { resolveRunSettings, resolveStageParams, type RunnerOptions } from './options.js'
import { explainFailure } from './runner.js'
import { dayRange, runRange, runWithPrerequisites, type RangeReport } from './chain.js'
import type { Stage, StageRunReport } from './types.js'

/** A single run (with the runs that had to come first, e.g. a finalised KPI week), or a --from/--to range. */
export type StageCommandResult<S = unknown> = (StageRunReport<S> & { before?: StageRunReport[] }) | RangeReport<S>

export const isRange = <S>(r: StageCommandResult<S>): r is RangeReport<S> => 'runs' in r

/** How a `run <stage>` command runs, whatever the stage: which days, dry or not, which database. */
export interface RunPlan {
  databaseUrl?: string
  /** As-of day (YYYY-MM-DD, `today`, `yesterday`); default today UTC. Exclusive with `from`. */
  date?: string
  /** Recovery: every as-of day from..to (default today), one run each. */
  from?: string
  to?: string
  keepGoing?: boolean
  dryRun?: boolean
  /** The runner's options as given (`30s`, `2m`; see resolveRunSettings): else their env twins, else the defaults. */
  runnerOptions?: RunnerOptions
}

/** The as-of days of a command: from..to, else the one date (default today UTC). */
export function asOfDays(plan: Pick<RunPlan, 'date' | 'from' | 'to'>): string[] {
  if (!plan.from) return [resolveDate(plan.date)]
  if (plan.date) throw usageError('--date and --from are exclusive', ['One day: --date D; a range: --from D1 --to D2'])
  return dayRange(resolveDate(plan.from), resolveDate(plan.to))
}

/**
 * What a thin `run <stage>` command calls: the stage's params from the options it was given (its
 * flags), the environment and the defaults, then the database, then the run(s) under the runner.
 */
export async function executeStage<P, S>(stage: Stage<P, S>, given: Record<string, unknown>, plan: RunPlan, logger: Logger, env: NodeJS.ProcessEnv = process.env): Promise<StageCommandResult<S>> {
  const days = asOfDays(plan)
  const params = resolveStageParams(stage, given, env)
  // Checked before connecting: a bad value is a usage error (exit 2), not a failed run.
  const runnerOptions = plan.runnerOptions ?? {}
  const settings = resolveRunSettings(stage.id, runnerOptions, env)
  const dryRun = Boolean(plan.dryRun)
  return withDb({ databaseUrl: plan.databaseUrl }, async (db) => {
    try {
      if (plan.from) return await runRange(db, stage, params, { days, keepGoing: Boolean(plan.keepGoing), dryRun, logger, env, runnerOptions })
      const { before, report } = await runWithPrerequisites(db, stage, params, { asOf: days[0]!, dryRun, logger, env, runnerOptions })
      return before.length ? { ...report, before } : report
    } catch (e) {
      // A refused connection before the run (prerequisites read first) names the server as the runner does.
      throw explainFailure(e, stage.id, db, settings, 'connect') ?? e
    }
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
