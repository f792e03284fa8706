import { Flags } from '@oclif/core'
import { BaseCommand } from '../../cli/base-command.js'
import { dbFlags, verifyFlags, verifyOptions } from '../../cli/flags.js'
import { executeVerifyParts, renderVerify } from '../../lib/verify/command.js'
import { featuresGroup } from '../../lib/verify/features.js'
import { irtGroup, thetaGroup } from '../../lib/verify/irt.js'
import { kpisGroup } from '../../lib/verify/kpis.js'
import { reportsGroup } from '../../lib/verify/reports.js'
import type { VerifyReport } from '../../lib/verify/run.js'

export default class VerifyAll extends BaseCommand {
  static override summary = 'Every verify group in one report.'
  static override description =
    'Every verify group (features, kpis, irt, theta, reports) in one report, each at the as-of of its stage\'s last successful run (or --date). Exit 1 if any check fails.'
  static override examples = ['<%= config.bin %> verify all', '<%= config.bin %> verify all --json --junit verify.xml']
  static override flags = { ...dbFlags, ...verifyFlags, 'min-coverage': Flags.integer({ description: 'KPI coverage: minimum % of active users with a row.', default: 100 }) }

  async run(): Promise<VerifyReport> {
    const { flags } = await this.parse(VerifyAll)
    const r = await executeVerifyParts(
      [
        { groups: [featuresGroup], stage: 'aggregate-features' },
        { groups: [kpisGroup], stage: 'compute-kpis', extraOptions: { minCoveragePct: flags['min-coverage'], lookbackDays: 30 } },
        { groups: [irtGroup, thetaGroup], stage: 'calibrate-irt' },
        // Each stage's freshness limit comes from its CronJob schedule (weekly for reports) unless --max-age-hours is given.
        { groups: [reportsGroup({})], stage: 'generate-report' },
      ],
      verifyOptions(flags),
    )
    this.failed = r.summary.fail > 0
    return r
  }

  protected override render(r: VerifyReport): void {
    renderVerify(r)
  }
}
