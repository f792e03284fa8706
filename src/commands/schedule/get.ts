import { Args } from '@oclif/core'
import { BaseCommand } from '../../cli/base-command.js'
import { kubeFlags, kubeOptions } from '../../cli/flags.js'
import { connect } from '../../lib/kube/connect.js'
import { getSchedules, type ScheduleInfo } from '../../lib/kube/schedule.js'
import { renderTable } from '../../lib/output/index.js'

export default class ScheduleGet extends BaseCommand {
  static override summary = 'Show CronJob schedules, time zones and the next 3 runs.'
  static override description = 'Show CronJob schedules: the schedule, its time zone, whether suspended, and the next 3 runs in UTC.'
  static override examples = ['<%= config.bin %> schedule get', '<%= config.bin %> schedule get generate-report --json']
  static override args = { cronjob: Args.string({ description: 'One CronJob (default: all in the namespace).' }) }
  static override flags = { ...kubeFlags }

  async run(): Promise<ScheduleInfo[]> {
    const { args, flags } = await this.parse(ScheduleGet)
    return getSchedules(connect(kubeOptions(flags)), args.cronjob)
  }

  protected override render(rows: ScheduleInfo[]): void {
    process.stdout.write(renderTable(['CRONJOB', 'SCHEDULE', 'TIMEZONE', 'SUSPENDED', 'LAST RUN', 'NEXT RUNS (UTC)'], rows.map((r) => [r.name, r.schedule, r.timeZone, r.suspend, r.lastScheduleTime, r.suspend ? '(suspended)' : r.nextRuns.join(', ')])) + '\n')
  }
}
