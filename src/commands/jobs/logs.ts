import { Args, Flags } from '@oclif/core'
import { BaseCommand } from '../../cli/base-command.js'
import { kubeFlags, kubeOptions } from '../../cli/flags.js'
import { connect } from '../../lib/kube/connect.js'
import { jobLogs } from '../../lib/kube/logs.js'
import { redact } from '../../lib/errors/index.js'

export default class JobsLogs extends BaseCommand {
  static override summary = 'Print a job\'s logs from every pod; -f follows.'
  static override description = 'Print a job\'s logs (every pod, retries included): lines on stdout, `+ pod › container` on stderr. -f follows until the job finishes, resuming dropped streams.'
  static override examples = ['<%= config.bin %> jobs logs calibrate-irt-manual-x7k2p -f', '<%= config.bin %> jobs logs compute-kpis-29410530 --tail 50']
  static override args = { job: Args.string({ required: true, description: 'Job name (see seedops jobs list).' }) }
  static override flags = {
    ...kubeFlags,
    follow: Flags.boolean({ char: 'f', description: 'Follow until the job finishes.' }),
    tail: Flags.integer({ description: 'Only the last N lines of each container.' }),
  }

  async run(): Promise<{ job: string; pods: string[]; lines: string[] }> {
    const { args, flags } = await this.parse(JobsLogs)
    const k = connect(kubeOptions(flags))
    const lines: string[] = []
    const r = await jobLogs(k, args.job, {
      line: (t) => {
        const s = redact(t)
        if (this.jsonMode) lines.push(s)
        else process.stdout.write(s + '\n')
      },
      marker: (t) => this.logger.info(t),
    }, { follow: flags.follow, tail: flags.tail })
    if (!r.pods.length) this.logger.warn(`job ${args.job} has no pods (yet)`)
    return { job: args.job, pods: r.pods, lines }
  }
}
