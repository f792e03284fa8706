import type { CheckReport, CheckResult } from './types.js'

// XML 1.0 allows no control characters but tab and newlines (log lines may carry colour codes).
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/g
const esc = (s: string) => s.replace(CONTROL, '').replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')

const caseName = (c: CheckResult) => (c.subject ? `${c.id} ${c.subject}` : c.id)

function body(c: CheckResult): string {
  const detail = JSON.stringify({ numbers: c.numbers, rows: c.rows, ...(c.details?.length ? { details: c.details } : {}), ...(c.fix?.length ? { fix: c.fix } : {}) }, null, 2)
  if (c.status === 'fail') return `<failure message="${esc(c.message)}">${esc(detail)}</failure>`
  if (c.status === 'warn') return `<system-out>${esc(`WARN: ${c.message}\n${detail}`)}</system-out>`
  if (c.status === 'skip') return `<skipped message="${esc(c.message)}"/>`
  return ''
}

/**
 * JUnit XML for CI (one file for verify and doctor): a testsuite per group, a testcase per
 * result (doctor: per subject), failures as <failure>, skips as <skipped>, warnings as
 * <system-out> (a warning does not fail a CI run, as it does not fail the command).
 */
export function toJUnit(r: CheckReport, o: { name: string; classPrefix: string }): string {
  const groups = new Map<string, CheckResult[]>()
  for (const c of r.checks) groups.set(c.group, [...(groups.get(c.group) ?? []), c])
  const suites = [...groups].map(([g, cs]) => {
    const cases = cs.map((c) => `    <testcase classname="${esc(`${o.classPrefix}.${g}`)}" name="${esc(caseName(c))}">${body(c)}</testcase>`).join('\n')
    const n = (s: string) => cs.filter((c) => c.status === s).length
    return `  <testsuite name="${esc(`${o.name.replace(/^seedops /, '')} ${g}`)}" tests="${cs.length}" failures="${n('fail')}" errors="0" skipped="${n('skip')}">\n${cases}\n  </testsuite>`
  })
  return `<?xml version="1.0" encoding="UTF-8"?>\n<testsuites name="${esc(o.name)}" tests="${r.checks.length}" failures="${r.summary.fail}" errors="0" skipped="${r.summary.skip}">\n${suites.join('\n')}\n</testsuites>\n`
}
