/**
 * One check model for `seedops verify` and `seedops doctor` (dbt tests, brew doctor, popeye): a
 * check returns results, each ok/warn/fail/skip with a one-line message, the numbers that
 * decided it and a few offending rows. Doctor's extras (subject, details, fix lines, a safe fix
 * for --fix) are optional fields of the same result.
 */
export type CheckStatus = 'ok' | 'warn' | 'fail' | 'skip'

export type Numbers = Record<string, number | string | null>

export interface CheckResult<Fix = unknown> {
  /** The check's id: `kpis.freshness`, `cronjobs.present`. */
  id: string
  /** verify: the group (kpis, irt…); doctor: the category (cluster, database, storage, irt). */
  group: string
  status: CheckStatus
  /** The cause or verdict, one line; for a skip, why. */
  message: string
  numbers: Numbers
  /** A few offending rows (dbt style: a check is a query whose rows are the failures). */
  rows: Record<string, unknown>[]
  description?: string
  /** What the result is about (a CronJob, a pod, a stage), when not the whole check. */
  subject?: string
  /** Supporting lines (log lines, candidate images), already safe to print. */
  details?: string[]
  /** Commands or steps that fix it, most direct first. */
  fix?: string[]
  /** A fix that may be applied unattended (doctor --fix). */
  safeFix?: Fix
}

/** What a check's run returns: the verdict; id, group and description come from the check. */
export type Outcome<Fix = unknown> = Omit<CheckResult<Fix>, 'id' | 'group' | 'description' | 'numbers' | 'rows'> & {
  numbers?: Numbers
  rows?: Record<string, unknown>[]
}

export interface Check<Ctx, Fix = unknown> {
  id: string
  group: string
  description: string
  /** Slow (network, many reads): the caller lists these last. */
  slow?: boolean
  /** Skipped, with that check's reason, when this check (run before it) did not pass. */
  dependsOn?: string
  /** Why the checks depending on this one are skipped, given its results; default: "<id> failed" when one failed. */
  blocksDependents?(results: Outcome<Fix>[]): string | undefined
  run(ctx: Ctx): Promise<Outcome<Fix> | Outcome<Fix>[]>
}

export interface CheckSummary {
  ok: number
  warn: number
  fail: number
  skip: number
  /** How many checks ran (a check may give several results). */
  checks: number
  /** Checks with a failing result, and checks with a warning but no failure, in run order. */
  failedChecks: string[]
  warnedChecks: string[]
}

export interface CheckReport<Fix = unknown> {
  /** Failures first, then warnings, ok and skipped; ties in run order. */
  checks: CheckResult<Fix>[]
  summary: CheckSummary
}

/** Thrown by a check that cannot run here (no cluster configured): a skip with the reason. */
export class CheckSkipped extends Error {
  constructor(
    readonly reason: string,
    /** What the checks depending on this one are told. */
    readonly dependentsReason = reason,
  ) {
    super(reason)
  }
}
