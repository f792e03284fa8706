import { ageHours, lastSuccess, type StageRun } from '../stages/run-log.js'
import type { VerifyContext } from './types.js'

/**
 * The stage's last successful real run against the freshness limit (ctx.options.maxAgeHours:
 * --max-age-hours, else the stage's cadence from its CronJob schedule; see stages/run-log.ts).
 */
export async function stageFreshness(ctx: VerifyContext, stage: string, fallbackHours: number) {
  const run = await lastSuccess(ctx.q, stage)
  const maxAgeH = ctx.options.maxAgeHours ?? fallbackHours
  const ageH = ageHours(run, ctx.now)
  const numbers = { last_success_age_hours: ageH, max_age_hours: maxAgeH, limit_from: ctx.limitSource ?? 'default', last_as_of: run?.asOf ?? null }
  // Compared unrounded: a run that finished a minute ago is stale under --max-age-hours 0.
  const rawH = run?.finishedAt ? (ctx.now.getTime() - run.finishedAt.getTime()) / 3_600_000 : null
  const verdict = rawH === null ? 'never' : rawH > maxAgeH ? 'stale' : 'fresh'
  return { run, ageH, maxAgeH, numbers, verdict } as { run: StageRun | undefined; ageH: number | null; maxAgeH: number; numbers: typeof numbers; verdict: 'never' | 'stale' | 'fresh' }
}
