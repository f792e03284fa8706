import { BaseCommand } from '../../cli/base-command.js'
import { dbFlags, verifyFlags, verifyOptions } from '../../cli/flags.js'
import { executeVerify, renderVerify } from '../../lib/verify/command.js'
import { thetaGroup } from '../../lib/verify/irt.js'
import type { VerifyReport } from '../../lib/verify/run.js'

export default class VerifyTheta extends BaseCommand {
  static override summary = 'SQL checks on learner abilities.'
  static override description = 'SQL checks on learner abilities: coverage of active learners, ranges in mirt_ability and the ability history. Exit 1 if any check fails.'
  static override examples = ['<%= config.bin %> verify theta', '<%= config.bin %> verify theta --json --junit verify-theta.xml']
  static override flags = { ...dbFlags, ...verifyFlags }

  async run(): Promise<VerifyReport> {
    const { flags } = await this.parse(VerifyTheta)
    const r = await executeVerify([thetaGroup], verifyOptions(flags), { stage: 'calibrate-irt' })
    this.failed = r.summary.fail > 0
    return r
  }

  protected override render(r: VerifyReport): void {
    renderVerify(r)
  }
}
