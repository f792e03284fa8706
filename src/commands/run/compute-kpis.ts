import { Flags } from '@oclif/core'
import { BaseCommand } from '../../cli/base-command.js'
import { dbFlags, kpiFlags, kpiOptions, runPlan, stageFlags } from '../../cli/flags.js'
import computeKpisStage from '../../lib/kpi/stage.js'
import { executeStage, renderStageReport, type StageCommandResult } from '../../lib/stages/command.js'

export default class RunComputeKpis extends BaseCommand {
  static override summary = 'Weekly KPIs (I_t, E_t, R_t, A_t, P, S) per active learner.'
  static override description =
    'Compute the weekly KPIs (I_t, E_t, R_t, A_t, P, S) for every user active in the lookback, for the ISO week of --date (as of its Sunday), into weekly_kpi. The first run of a new week first finalises the previous week (its KPIs again, with all of Sunday). Idempotent, all-or-nothing, one run at a time.'
  static override examples = [
    '<%= config.bin %> run compute-kpis',
    '<%= config.bin %> run compute-kpis --date 2026-11-16 --bayesian --json',
    '<%= config.bin %> run compute-kpis --user learner-00042 --dry-run',
  ]
  static override flags = {
    ...dbFlags,
    ...stageFlags,
    ...kpiFlags,
    'lookback-days': Flags.integer({ description: 'Users with an attempt in this many days ending at as_of get KPIs [env KPI_LOOKBACK_DAYS, default 30].' }),
    user: Flags.string({ description: 'Only this user (repeatable).', multiple: true }),
  }

  async run(): Promise<StageCommandResult> {
    const { flags } = await this.parse(RunComputeKpis)
    const r = await executeStage(computeKpisStage, { ...kpiOptions(flags), lookbackDays: flags['lookback-days'] }, runPlan(flags), this.logger)
    this.failed = r.status === 'failed'
    return r
  }

  protected override render(r: StageCommandResult): void {
    renderStageReport(r)
  }
}
