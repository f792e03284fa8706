import { Flags } from '@oclif/core'
import { BaseCommand } from '../../cli/base-command.js'
import { dbFlags, runPlan, stageFlags } from '../../cli/flags.js'
import aggregateFeatures from '../../lib/features/stage.js'
import { executeStage, renderStageReport, type StageCommandResult } from '../../lib/stages/command.js'

export default class RunAggregateFeatures extends BaseCommand {
  static override summary = 'Daily per user × topic features into features_topic_daily.'
  static override description =
    'Compute daily per user × topic features (features_topic_daily) for the lookback window ending at --date. Idempotent, all-or-nothing, one run at a time.'
  static override examples = [
    '<%= config.bin %> run aggregate-features',
    '<%= config.bin %> run aggregate-features --date 2026-11-20 --lookback-days 14 --json',
    'AGG_INCLUDE_THETA=true <%= config.bin %> run aggregate-features --dry-run',
  ]
  static override flags = {
    ...dbFlags,
    ...stageFlags,
    'lookback-days': Flags.integer({ description: 'Days to (re)compute, ending at --date [env AGG_LOOKBACK_DAYS, default 7].' }),
    'include-theta': Flags.boolean({ description: 'Also fill theta_estimate/theta_sd from item parameters [env AGG_INCLUDE_THETA].', allowNo: true }),
  }

  async run(): Promise<StageCommandResult> {
    const { flags } = await this.parse(RunAggregateFeatures)
    const r = await executeStage(aggregateFeatures, { lookbackDays: flags['lookback-days'], includeTheta: flags['include-theta'] }, runPlan(flags), this.logger)
    this.failed = r.status === 'failed'
    return r
  }

  protected override render(r: StageCommandResult): void {
    renderStageReport(r)
  }
}
