import { Args, Flags } from '@oclif/core'
import { BaseCommand } from '../../cli/base-command.js'
import { kubeFlags, kubeOptions } from '../../cli/flags.js'
import { connect } from '../../lib/kube/connect.js'
import { patchCronJob, renderChange, resolveSchedule, type ScheduleChange } from '../../lib/kube/schedule.js'

export default class ScheduleSet extends BaseCommand {
  static override summary = 'Change a CronJob\'s schedule (validated, before/after shown).'
  static override description = 'Change a CronJob\'s schedule (validated first, merge patch), and show before/after with the next runs. SCHEDULE: 5-field cron, @daily/@weekly/@hourly/@monthly, daily/weekly/hourly/monthly, or default (the schedule in k8s/).'
  static override examples = ['<%= config.bin %> schedule set generate-report daily', '<%= config.bin %> schedule set calibrate-irt "30 2 * * *"', '<%= config.bin %> schedule set generate-report default']
  static override args = {
    cronjob: Args.string({ required: true, description: 'CronJob name.' }),
    schedule: Args.string({ required: true, description: 'Cron expression, macro, preset or "default".' }),
  }
  static override flags = { ...kubeFlags, 'dry-run': Flags.boolean({ description: 'Let the server validate the change without storing it.' }) }

  async run(): Promise<ScheduleChange> {
    const { args, flags } = await this.parse(ScheduleSet)
    const schedule = resolveSchedule(args.schedule, args.cronjob)
    return patchCronJob(connect(kubeOptions(flags)), args.cronjob, { schedule }, { dryRun: flags['dry-run'] })
  }

  protected override render(c: ScheduleChange): void {
    renderChange(c)
  }
}
