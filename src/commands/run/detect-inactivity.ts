import { Flags } from '@oclif/core'
import { BaseCommand } from '../../cli/base-command.js'
import { dbFlags, kpiFlags, kpiOptions, runPlan, stageFlags } from '../../cli/flags.js'
import detectInactivityStage from '../../lib/kpi/inactivity.js'
import { executeStage, renderStageReport, type StageCommandResult } from '../../lib/stages/command.js'

export default class RunDetectInactivity extends BaseCommand {
  static override summary = 'Flag learners inactive in every source; recompute their P and S.'
  static override description =
    'Flag users with activity in the lookback but none in the last --threshold-days (ending at --date) in ANY source (exam_results, responses, features_topic_daily.last_seen_at, session.ended_at), and recompute their P and S for the week, keeping I/E/R/A. Lists who was flagged and why.'
  static override examples = [
    '<%= config.bin %> run detect-inactivity',
    '<%= config.bin %> run detect-inactivity --date 2026-11-20 --threshold-days 10 --json',
    'INACTIVITY_THRESHOLD_DAYS=14 <%= config.bin %> run detect-inactivity --dry-run',
  ]
  static override flags = {
    ...dbFlags,
    ...stageFlags,
    ...kpiFlags,
    'threshold-days': Flags.integer({ description: 'Flag users with no activity in this many days ending at --date [env INACTIVITY_THRESHOLD_DAYS, default 7].' }),
    'lookback-days': Flags.integer({ description: 'Only users with some activity in this many days ending at --date [env INACTIVITY_LOOKBACK_DAYS, default 56 = the S window].' }),
    user: Flags.string({ description: 'Only this user (repeatable).', multiple: true }),
  }

  async run(): Promise<StageCommandResult> {
    const { flags } = await this.parse(RunDetectInactivity)
    const r = await executeStage(
      detectInactivityStage,
      { ...kpiOptions(flags), thresholdDays: flags['threshold-days'], inactivityLookbackDays: flags['lookback-days'] },
      runPlan(flags),
      this.logger,
    )
    this.failed = r.status === 'failed'
    return r
  }

  protected override render(r: StageCommandResult): void {
    renderStageReport(r)
  }
}
