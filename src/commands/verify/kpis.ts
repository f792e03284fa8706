import { Flags } from '@oclif/core'
import { BaseCommand } from '../../cli/base-command.js'
import { dbFlags, verifyFlags, verifyOptions } from '../../cli/flags.js'
import { KpiParams } from '../../lib/kpi/stage.js'
import { resolveOptions } from '../../lib/stages/options.js'
import { executeVerify, renderVerify } from '../../lib/verify/command.js'
import { kpisGroup, maxNullOptions } from '../../lib/verify/kpis.js'
import type { VerifyReport } from '../../lib/verify/run.js'

export default class VerifyKpis extends BaseCommand {
  static override summary = 'SQL checks on weekly_kpi for one ISO week.'
  static override description =
    'SQL checks on weekly_kpi for the ISO week of --date (default: the last compute-kpis run): freshness, coverage of active users, value ranges, null rate per KPI. Exit 1 if any check fails.'
  static override examples = [
    '<%= config.bin %> verify kpis',
    '<%= config.bin %> verify kpis --date 2026-11-16 --json --junit verify-kpis.xml',
    '<%= config.bin %> verify kpis --max-null P=0.9 --min-coverage 99.5',
  ]
  static override flags = {
    ...dbFlags,
    ...verifyFlags,
    'min-coverage': Flags.integer({ description: 'Coverage: minimum % of active users with a row for the week.', default: 100, min: 0, max: 100 }),
    'max-null': Flags.string({ description: 'Maximum null rate for a KPI, KPI=rate (repeatable). Defaults: I_t=0.6 E_t=0.7 R_t=0.9 A_t=0.1 P=0.5 S=0.05.', multiple: true }),
    'lookback-days': Flags.integer({ description: 'Active-user lookback when no compute-kpis run recorded one [env KPI_LOOKBACK_DAYS, default 30].' }),
  }

  async run(): Promise<VerifyReport> {
    const { flags } = await this.parse(VerifyKpis)
    // compute-kpis' own option, so KPI_LOOKBACK_DAYS means the same here.
    const lookback = resolveOptions(KpiParams.pick({ lookbackDays: true }), { lookbackDays: flags['lookback-days'] }, process.env, 'verify kpis').options.lookbackDays
    const r = await executeVerify([kpisGroup], verifyOptions(flags), {
      stage: 'compute-kpis',
      extraOptions: { minCoveragePct: flags['min-coverage'], lookbackDays: lookback, ...maxNullOptions(flags['max-null']) },
    })
    this.failed = r.summary.fail > 0
    return r
  }

  protected override render(r: VerifyReport): void {
    renderVerify(r)
  }
}
