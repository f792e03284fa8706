import { redact, SeedopsError, translateError } from '../errors/index.js'
import { CheckSkipped, type Check, type CheckReport, type CheckResult, type CheckStatus, type CheckSummary, type Outcome } from './types.js'

export interface RunOptions<Ctx, Fix = unknown> {
  onProgress?: (id: string) => void
  /** Turns an error a check threw into a skip (e.g. no kubeconfig) or a result; default: a failure with the error. */
  onError?: (e: unknown, check: Check<Ctx, Fix>) => CheckSkipped | Outcome<Fix> | undefined
  /** Why a check that returned no results is skipped; default: "nothing to check". */
  emptyReason?: (id: string) => string
  /** Put before the message of a failure made from a thrown error (verify: "check could not run: "). */
  errorPrefix?: string
}

const RANK: Record<CheckStatus, number> = { fail: 0, warn: 1, ok: 2, skip: 3 }

function errorOutcome<Fix>(e: unknown, prefix = ''): Outcome<Fix> {
  const err = e instanceof SeedopsError ? e : translateError(e)
  return { status: 'fail', message: `${prefix}${err.message}${err.code !== 'INTERNAL' ? ` (${err.code})` : ''}`, ...(err.suggestions.length ? { fix: err.suggestions } : {}) }
}

/**
 * Runs the checks in the order given, one after the other (later checks reuse what earlier ones
 * read). A check whose `dependsOn` did not pass is skipped with that check's reason; a check
 * that throws fails with its error (or is skipped, as onError decides), never crashes the run.
 */
export async function runChecks<Ctx, Fix = unknown>(checks: Check<Ctx, Fix>[], ctx: Ctx, opts: RunOptions<Ctx, Fix> = {}): Promise<CheckReport<Fix>> {
  const results: CheckResult<Fix>[] = []
  // Why dependents of a check are skipped, for the checks that did not pass.
  const blocked = new Map<string, string>()
  const selected = new Set(checks.map((c) => c.id))
  const base = (c: Check<Ctx, Fix>) => ({ id: c.id, group: c.group, description: c.description })
  const skip = (c: Check<Ctx, Fix>, reason: string) => results.push({ ...base(c), status: 'skip', message: reason, numbers: {}, rows: [] })
  for (const c of checks) {
    if (c.dependsOn && selected.has(c.dependsOn) && blocked.has(c.dependsOn)) {
      const reason = blocked.get(c.dependsOn)!
      skip(c, reason)
      blocked.set(c.id, reason)
      continue
    }
    opts.onProgress?.(c.id)
    let out: Outcome<Fix>[]
    try {
      const r = await c.run(ctx)
      out = Array.isArray(r) ? r : [r]
    } catch (e) {
      const handled = opts.onError?.(e, c) ?? (e instanceof CheckSkipped ? e : errorOutcome<Fix>(e, opts.errorPrefix))
      if (handled instanceof CheckSkipped) {
        skip(c, handled.reason)
        blocked.set(c.id, handled.dependentsReason)
        continue
      }
      out = [handled]
    }
    if (!out.length) {
      const reason = opts.emptyReason?.(c.id) ?? 'nothing to check'
      skip(c, reason)
      blocked.set(c.id, `${c.id} did not run`)
      continue
    }
    const why = c.blocksDependents ? c.blocksDependents(out) : out.some((o) => o.status === 'fail') ? `${c.id} failed` : undefined
    if (why) blocked.set(c.id, why)
    for (const o of out) results.push(redactResult({ ...base(c), ...o, numbers: o.numbers ?? {}, rows: o.rows ?? [] }))
  }
  return { checks: orderResults(results, checks.map((c) => c.id)), summary: summarize(results, checks.length) }
}

/** Failures first, then warnings, ok and skipped; within a status, in the order of `ids` (run order), then as given. */
function orderResults<T extends CheckResult<unknown>>(results: T[], ids: string[] = []): T[] {
  const pos = new Map(ids.map((id, i) => [id, i]))
  return results
    .map((r, i) => ({ r, i }))
    .sort((a, b) => RANK[a.r.status] - RANK[b.r.status] || (pos.get(a.r.id) ?? 0) - (pos.get(b.r.id) ?? 0) || a.i - b.i)
    .map((x) => x.r)
}

function summarize(results: CheckResult<unknown>[], checks: number): CheckSummary {
  const count = (s: CheckStatus) => results.filter((r) => r.status === s).length
  const ids = (s: CheckStatus) => [...new Set(results.filter((r) => r.status === s).map((r) => r.id))]
  const failed = ids('fail')
  return { ok: count('ok'), warn: count('warn'), fail: count('fail'), skip: count('skip'), checks, failedChecks: failed, warnedChecks: ids('warn').filter((i) => !failed.includes(i)) }
}

/** Several reports (verify all: one per stage's as-of) as one. */
export function mergeReports<Fix>(reports: CheckReport<Fix>[]): CheckReport<Fix> {
  const all = reports.flatMap((r) => r.checks)
  const ids = [...new Set(all.map((r) => r.id))]
  return { checks: orderResults(all, ids), summary: summarize(all, reports.reduce((s, r) => s + r.summary.checks, 0)) }
}

/** Last line of defence: whatever a server echoed back, a registered secret never leaves. */
function redactResult<T extends CheckResult<unknown>>(r: T): T {
  return { ...r, message: redact(r.message), ...(r.details ? { details: r.details.map((d) => redact(d)) } : {}), ...(r.fix ? { fix: r.fix.map((d) => redact(d)) } : {}) }
}
