import { renderTable } from '../output/index.js'
import type { AdoptResult } from './apply.js'

/** The plan (or what was done) as a table on stdout; the summary line is the caller's, on stderr. */
export function renderAdopt(r: AdoptResult): string {
  const out = [renderTable(['LEGACY', 'SEEDOPS', 'ACTION', 'NOTE'], r.rows.map((x) => [x.legacy, x.seedops, x.action, x.note]))]
  if (r.done.length) out.push('', ...r.done.map((d) => `  ✓ ${d}`))
  return out.join('\n') + '\n'
}

export function adoptSummary(r: AdoptResult): string {
  const ns = r.namespace
  switch (r.mode) {
    case 'plan':
      return r.changes ? `${r.changes} change(s) planned in ${ns}. Apply them: seedops adopt --yes -n ${ns} (undo: seedops adopt --rollback -n ${ns})` : `Nothing to do: ${ns} is adopted`
    case 'apply':
      return r.done.length ? `Adopted ${ns}: ${r.done.length - 1} step(s) done and recorded. Next: seedops jobs trigger <stage> --wait, then seedops adopt --prune-legacy -n ${ns}` : `Nothing to do: ${ns} is adopted`
    case 'rollback':
      return `Rolled back the adoption of ${ns}`
    case 'prune':
      return `Pruned ${r.changes} legacy CronJob(s) in ${ns}; from now on --rollback is no longer possible`
  }
}
