import { redact } from '../errors/index.js'
import { color, renderTable } from '../output/index.js'
import type { CheckReport, CheckSummary } from './types.js'

const plural = (n: number, w: string) => `${n} ${w}${n === 1 ? '' : 's'}`

/** The last line: "No issues found: …" or "Found issues in N checks: …" (brew/flutter doctor). */
function summaryLine(s: CheckSummary): string {
  const skipped = s.skip ? `, ${s.skip} skipped` : ''
  if (!s.fail && !s.warn) return `No issues found: ${plural(s.ok, 'check')} ok${skipped}.`
  return `Found issues in ${plural(s.failedChecks.length + s.warnedChecks.length, 'check')}: ${plural(s.fail, 'failure')}, ${plural(s.warn, 'warning')}, ${s.ok} ok${skipped}.`
}

export interface RenderOptions {
  /** Said after the results that carry a safe fix (doctor: "(seedops doctor --fix applies this)"). */
  safeFixNote?: string
  /** Lines between the results and the summary (doctor --fix: what was applied). */
  after?: string[]
  /** Appended to the summary line (verify: " (as of 2026-11-16)"). */
  summarySuffix?: string
}

/**
 * The terminal report of verify and doctor: one line per result (failures, warnings, ok,
 * skipped) with its cause, details and fix; the offending rows of each failure or warning as a
 * table; the summary last.
 */
export function renderChecks(r: CheckReport, o: RenderOptions = {}): string {
  const tag = { fail: color.red('FAIL'), warn: color.yellow('WARN'), ok: color.green('ok  '), skip: color.dim('skip') }
  const width = Math.max(16, ...r.checks.map((c) => c.id.length))
  const pad = ' '.repeat(6 + width + 2)
  const lines: string[] = []
  for (const c of r.checks) {
    lines.push(`${tag[c.status]}  ${c.id.padEnd(width)}  ${c.status === 'skip' ? color.dim(c.message) : c.message}`)
    for (const d of c.details ?? []) lines.push(`${pad}${color.dim(d)}`)
    if (c.status === 'fail' || c.status === 'warn') {
      for (const [i, x] of (c.fix ?? []).entries()) lines.push(`${pad}${i === 0 ? 'fix: ' : '     '}${x}`)
      if (c.safeFix && o.safeFixNote) lines.push(`${pad}${color.dim(o.safeFixNote)}`)
    }
  }
  // Warnings list their rows too (verify irt's drift: the items that moved, with both values).
  for (const c of r.checks.filter((x) => (x.status === 'fail' || x.status === 'warn') && x.rows.length)) {
    const head = [...new Set(c.rows.flatMap((row) => Object.keys(row)))]
    lines.push('', `${c.id}${c.subject ? ` ${c.subject}` : ''}: ${c.status === 'fail' ? 'offending' : 'flagged'} rows (first ${c.rows.length})`, renderTable(head, c.rows.map((row) => head.map((h) => row[h]))))
  }
  lines.push(...(o.after ?? []), '', summaryLine(r.summary) + (o.summarySuffix ?? ''))
  return redact(lines.join('\n')) + '\n'
}
