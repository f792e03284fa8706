import { Flags } from '@oclif/core'
import { BaseCommand } from '../../cli/base-command.js'
import { kubeFlags, kubeOptions } from '../../cli/flags.js'
import { connect } from '../../lib/kube/connect.js'
import { listJobs, type JobRow } from '../../lib/kube/jobs.js'
import { renderTable } from '../../lib/output/index.js'

function age(iso?: string): string {
  if (!iso) return '—'
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000))
  return s < 120 ? `${s}s` : s < 7200 ? `${Math.round(s / 60)}m` : s < 172800 ? `${Math.round(s / 3600)}h` : `${Math.round(s / 86400)}d`
}

export default class JobsList extends BaseCommand {
  static override summary = 'List jobs, newest first, with their CronJob, state and duration.'
  static override description = 'List jobs in the namespace, newest first: the CronJob they came from, state, completions, duration.'
  static override examples = ['<%= config.bin %> jobs list', '<%= config.bin %> jobs list --failed -o wide', '<%= config.bin %> jobs list -o json']
  static override flags = {
    ...kubeFlags,
    failed: Flags.boolean({ description: 'Only failed jobs.' }),
    cronjob: Flags.string({ description: 'Only jobs of this CronJob.' }),
    output: Flags.string({ char: 'o', description: 'wide: add image and failure reason; json: the rows as a JSON array.', options: ['wide', 'json'] }),
  }

  private output?: string

  async run(): Promise<JobRow[]> {
    const { flags } = await this.parse(JobsList)
    this.output = flags.output
    return listJobs(connect(kubeOptions(flags)), { failed: flags.failed, cronjob: flags.cronjob })
  }

  protected override render(rows: JobRow[]): void {
    if (this.output === 'json') {
      process.stdout.write(JSON.stringify(rows, null, 2) + '\n')
      return
    }
    const wide = this.output === 'wide'
    const head = ['NAME', 'CRONJOB', 'STATE', 'COMPLETIONS', 'DURATION', 'AGE', ...(wide ? ['MANUAL', 'REASON', 'IMAGE'] : [])]
    const body = rows.map((r) => [r.name, r.cronjob, r.state, r.completions, r.durationSeconds !== undefined ? `${r.durationSeconds}s` : '—', age(r.startTime), ...(wide ? [r.manual ? 'yes' : 'no', r.reason, r.image] : [])])
    if (!rows.length) this.logger.info('No jobs found.')
    else process.stdout.write(renderTable(head, body) + '\n')
  }
}
