import { Flags } from '@oclif/core'
import { BaseCommand } from '../../cli/base-command.js'
import { dbFlags, runPlan, stageFlags } from '../../cli/flags.js'
import updateThetaStage from '../../lib/irt-stage/update-theta.js'
import { executeStage, renderStageReport, type StageCommandResult } from '../../lib/stages/command.js'

export default class RunUpdateTheta extends BaseCommand {
  static override summary = 'Update one learner\'s θ after a session (online EAP).'
  static override description = "Update one learner's θ after a session (online EAP from the previous estimate); writes mirt_ability and the ability history."
  static override examples = ['<%= config.bin %> run update-theta --user learner-00042', '<%= config.bin %> run update-theta --user learner-00042 --session demo-42-42-59 --json']
  static override flags = {
    ...dbFlags,
    ...stageFlags,
    user: Flags.string({ description: 'The learner (exam_results.user_id).', required: true }),
    session: Flags.string({ description: "The session (exam_results.session_id); default the learner's latest." }),
    'lookback-days': Flags.integer({ description: 'How far back to look for the session [env THETA_LOOKBACK_DAYS, default 30].' }),
  }

  async run(): Promise<StageCommandResult> {
    const { flags } = await this.parse(RunUpdateTheta)
    const r = await executeStage(updateThetaStage, { user: flags.user, session: flags.session, lookbackDays: flags['lookback-days'] }, runPlan(flags), this.logger)
    this.failed = r.status === 'failed'
    return r
  }

  protected override render(r: StageCommandResult): void {
    renderStageReport(r)
  }
}
