import { BaseCommand } from '../../cli/base-command.js'
import { dbFlags, verifyFlags, verifyOptions } from '../../cli/flags.js'
import { executeVerify, renderVerify } from '../../lib/verify/command.js'
import { featuresGroup } from '../../lib/verify/features.js'
import type { VerifyReport } from '../../lib/verify/run.js'

export default class VerifyFeatures extends BaseCommand {
  static override summary = 'SQL checks on features_topic_daily.'
  static override description = 'SQL checks on features_topic_daily: freshness, coverage against attempts, value ranges, malformed source rows. Exit 1 if any check fails.'
  static override examples = ['<%= config.bin %> verify features', '<%= config.bin %> verify features --json --junit verify-features.xml']
  static override flags = { ...dbFlags, ...verifyFlags }

  async run(): Promise<VerifyReport> {
    const { flags } = await this.parse(VerifyFeatures)
    const r = await executeVerify([featuresGroup], verifyOptions(flags), { stage: 'aggregate-features' })
    this.failed = r.summary.fail > 0
    return r
  }

  protected override render(r: VerifyReport): void {
    renderVerify(r)
  }
}
