import { Args, Flags } from '@oclif/core'
import { BaseCommand } from '../../cli/base-command.js'
import { kubeFlags, kubeOptions } from '../../cli/flags.js'
import { connect } from '../../lib/kube/connect.js'
import { patchCronJob, renderChange, type ScheduleChange } from '../../lib/kube/schedule.js'

export default class ScheduleResume extends BaseCommand {
  static override summary = 'Resume a suspended CronJob.'
  static override description = 'Resume a suspended CronJob (spec.suspend back to false): it fires again on its schedule. --dry-run lets the server validate the change without storing it.'
  static override examples = ['<%= config.bin %> schedule resume generate-report']
  static override args = { cronjob: Args.string({ required: true, description: 'CronJob name.' }) }
  static override flags = { ...kubeFlags, 'dry-run': Flags.boolean({ description: 'Let the server validate the change without storing it.' }) }

  async run(): Promise<ScheduleChange> {
    const { args, flags } = await this.parse(ScheduleResume)
    return patchCronJob(connect(kubeOptions(flags)), args.cronjob, { suspend: false }, { dryRun: flags['dry-run'] })
  }

  protected override render(c: ScheduleChange): void {
    renderChange(c)
  }
}
