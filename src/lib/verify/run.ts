import { runChecks as runAll, type Check as CommonCheck, type CheckReport } from '../checks/index.js'
import type { CheckGroup, VerifyContext } from './types.js'

/** `verify … --json`: the as-of(s) the window checks used, and the common check report. */
export interface VerifyReport extends CheckReport {
  asOf: string
}

/** A group's checks as common checks: ids `group.check`. */
export function groupChecks(groups: CheckGroup[]): CommonCheck<VerifyContext>[] {
  return groups.flatMap((g) => g.checks.map((c) => ({ id: `${g.id}.${c.id}`, group: g.id, description: c.description, run: (ctx: VerifyContext) => c.run(ctx) })))
}

/** Runs every check of the groups; a check that throws is a failure with its error, not a crash. */
export async function runChecks(groups: CheckGroup[], ctx: VerifyContext): Promise<VerifyReport> {
  return { asOf: ctx.asOf, ...(await runAll(groupChecks(groups), ctx, { errorPrefix: 'check could not run: ' })) }
}
