import { writeFileSync } from 'node:fs'
import { resolveDate } from '../config/index.js'
import { withDb } from '../db/index.js'
import { assertMigrated } from '../db/migrate.js'
import { color, renderTable } from '../output/index.js'
import { runChecks, toJUnit, type VerifyReport } from './run.js'
import type { CheckGroup } from './types.js'

/** As-of for window checks: --date, else the last successful run of `stage`, else today. */
async function defaultAsOf(q: { query: (s: string, p: unknown[]) => Promise<{ rows: { as_of: string }[] }> }, stage: string | undefined, flag: string | undefined): Promise<string> {
  if (flag) return resolveDate(flag)
  if (stage) {
    const r = await q.query(`SELECT as_of FROM seedops_stage_runs WHERE stage = $1 AND status = 'succeeded' AND NOT dry_run ORDER BY finished_at DESC LIMIT 1`, [stage])
    if (r.rows[0]?.as_of) return r.rows[0].as_of
  }
  return resolveDate(undefined)
}

export interface VerifyPart {
  groups: CheckGroup[]
  /** The stage whose last successful run sets the default as-of. */
  stage?: string
  extraOptions?: Record<string, number>
}

type VerifyCliFlags = { 'database-url'?: string; date?: string; junit?: string; 'max-age-hours': number; days: number }

export async function executeVerify(groups: CheckGroup[], flags: VerifyCliFlags, opts: { stage?: string; extraOptions?: Record<string, number> } = {}): Promise<VerifyReport> {
  return executeVerifyParts([{ groups, ...opts }], flags)
}

/** Runs several groups on one connection, each with its own default as-of, as one report. */
export async function executeVerifyParts(parts: VerifyPart[], flags: VerifyCliFlags): Promise<VerifyReport> {
  return withDb(flags, async (db) => {
    await assertMigrated(db)
    const reports: VerifyReport[] = []
    for (const part of parts) {
      const asOf = await defaultAsOf(db.pool as never, part.stage, flags.date)
      reports.push(
        await runChecks(part.groups, {
          q: db.pool,
          asOf,
          now: new Date(),
          options: { maxAgeHours: flags['max-age-hours'], days: flags.days, ...part.extraOptions },
        }),
      )
    }
    const checks = reports.flatMap((r) => r.checks).sort((a, b) => ORDER[a.status] - ORDER[b.status])
    const report: VerifyReport = {
      asOf: [...new Set(reports.map((r) => r.asOf))].join(', '),
      passed: checks.filter((c) => c.status === 'pass').length,
      warned: checks.filter((c) => c.status === 'warn').length,
      failed: checks.filter((c) => c.status === 'fail').length,
      checks,
    }
    if (flags.junit) writeFileSync(flags.junit, toJUnit(report))
    return report
  })
}

const ORDER = { fail: 0, warn: 1, pass: 2 } as const

const BADGE = { pass: () => color.green('ok  '), warn: () => color.yellow('warn'), fail: () => color.red('FAIL') }

export function renderVerify(r: VerifyReport): void {
  process.stdout.write(renderTable(['', 'check', 'result'], r.checks.map((c) => [BADGE[c.status](), c.id, c.message])) + '\n')
  // Warnings list their rows too (verify irt's drift: the items that moved, with both values).
  for (const c of r.checks.filter((x) => x.status !== 'pass' && x.examples?.length)) {
    const head = Object.keys(c.examples![0]!)
    process.stdout.write(`\n${c.id}: ${c.status === 'fail' ? 'offending' : 'flagged'} rows (first ${c.examples!.length})\n` + renderTable(head, c.examples!.map((e) => head.map((h) => e[h]))) + '\n')
  }
  process.stdout.write(`\n${r.failed ? color.red(`${r.failed} failed`) : 'all passed'}, ${r.warned} warning(s), ${r.passed} passed (as of ${r.asOf})\n`)
}
