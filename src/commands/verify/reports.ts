import { Flags } from '@oclif/core'
import { BaseCommand } from '../../cli/base-command.js'
import { dbFlags, verifyFlags, verifyOptions } from '../../cli/flags.js'
import { executeVerify, renderVerify } from '../../lib/verify/command.js'
import { reportsGroup } from '../../lib/verify/reports.js'
import type { VerifyReport } from '../../lib/verify/run.js'

export default class VerifyReports extends BaseCommand {
  static override summary = 'Checks on the weekly reports and their stored objects.'
  static override description =
    'Checks on the weekly reports: generate-report fresh, a report_artifacts row per format for every user with KPIs for the ISO week, URLs well-formed, objects present (file:// always, s3:// with AWS configuration). Exit 1 if any check fails.'
  static override examples = ['<%= config.bin %> verify reports', '<%= config.bin %> verify reports --date 2026-11-16 --format both --junit verify-reports.xml']
  static override flags = {
    ...dbFlags,
    ...verifyFlags,
    format: Flags.string({ description: 'Formats every user must have: html, pdf or both (default: those of the week\'s last run, else html).', options: ['html', 'pdf', 'both'] }),
  }

  async run(): Promise<VerifyReport> {
    const { flags } = await this.parse(VerifyReports)
    const r = await executeVerify([reportsGroup({ formats: flags.format })], verifyOptions(flags), { stage: 'generate-report' })
    this.failed = r.summary.fail > 0
    return r
  }

  protected override render(r: VerifyReport): void {
    renderVerify(r)
  }
}
