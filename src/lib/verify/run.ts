import { translateError } from '../errors/index.js'
import type { CheckGroup, CheckResult, VerifyContext } from './types.js'

export interface VerifyReport {
  asOf: string
  passed: number
  warned: number
  failed: number
  checks: CheckResult[]
}

const ORDER = { fail: 0, warn: 1, pass: 2 } as const

/** Runs every check of the groups; a check that throws is a failure with its error, not a crash. */
export async function runChecks(groups: CheckGroup[], ctx: VerifyContext): Promise<VerifyReport> {
  const checks: CheckResult[] = []
  for (const g of groups) {
    for (const c of g.checks) {
      try {
        const r = await c.run(ctx)
        checks.push({ id: `${g.id}.${c.id}`, group: g.id, description: c.description, ...r })
      } catch (e) {
        const err = translateError(e)
        checks.push({ id: `${g.id}.${c.id}`, group: g.id, description: c.description, status: 'fail', message: `check could not run: ${err.message}`, numbers: {} })
      }
    }
  }
  checks.sort((a, b) => ORDER[a.status] - ORDER[b.status])
  return {
    asOf: ctx.asOf,
    passed: checks.filter((c) => c.status === 'pass').length,
    warned: checks.filter((c) => c.status === 'warn').length,
    failed: checks.filter((c) => c.status === 'fail').length,
    checks,
  }
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')

/** JUnit XML for CI: one testsuite per group, failures as <failure>, warnings as <system-out>. */
export function toJUnit(r: VerifyReport): string {
  const groups = new Map<string, CheckResult[]>()
  for (const c of r.checks) groups.set(c.group, [...(groups.get(c.group) ?? []), c])
  const suites = [...groups].map(([g, cs]) => {
    const cases = cs
      .map((c) => {
        const body =
          c.status === 'fail'
            ? `<failure message="${esc(c.message)}">${esc(JSON.stringify({ numbers: c.numbers, examples: c.examples ?? [] }, null, 2))}</failure>`
            : c.status === 'warn'
              ? `<system-out>${esc('WARN: ' + c.message)}</system-out>`
              : ''
        return `    <testcase classname="seedops.verify.${esc(g)}" name="${esc(c.id)}">${body}</testcase>`
      })
      .join('\n')
    return `  <testsuite name="verify ${esc(g)}" tests="${cs.length}" failures="${cs.filter((c) => c.status === 'fail').length}">\n${cases}\n  </testsuite>`
  })
  return `<?xml version="1.0" encoding="UTF-8"?>\n<testsuites name="seedops verify" tests="${r.checks.length}" failures="${r.failed}">\n${suites.join('\n')}\n</testsuites>\n`
}
