import { Args, Flags } from '@oclif/core'
import { BaseCommand } from '../../cli/base-command.js'
import { kubeFlags, kubeOptions } from '../../cli/flags.js'
import { connect } from '../../lib/kube/connect.js'
import { patchCronJob, renderChange, type ScheduleChange } from '../../lib/kube/schedule.js'

export default class ScheduleSuspend extends BaseCommand {
  static override summary = 'Suspend a CronJob (running jobs continue).'
  static override description = 'Suspend a CronJob: no new runs until `schedule resume` (running jobs continue).'
  static override examples = ['<%= config.bin %> schedule suspend generate-report']
  static override args = { cronjob: Args.string({ required: true, description: 'CronJob name.' }) }
  static override flags = { ...kubeFlags, 'dry-run': Flags.boolean({ description: 'Let the server validate the change without storing it.' }) }

  async run(): Promise<ScheduleChange> {
    const { args, flags } = await this.parse(ScheduleSuspend)
    return patchCronJob(connect(kubeOptions(flags)), args.cronjob, { suspend: true }, { dryRun: flags['dry-run'] })
  }

  protected override render(c: ScheduleChange): void {
    renderChange(c)
  }
}
