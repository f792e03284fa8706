import { Flags } from '@oclif/core'
import { BaseCommand } from '../../cli/base-command.js'
import { dbFlags, verifyFlags, verifyOptions } from '../../cli/flags.js'
import { executeVerify, renderVerify } from '../../lib/verify/command.js'
import { driftOptions, irtGroup } from '../../lib/verify/irt.js'
import type { VerifyReport } from '../../lib/verify/run.js'

export default class VerifyIrt extends BaseCommand {
  static override summary = 'SQL checks on item parameters, convergence and drift.'
  static override description =
    'SQL checks on item parameters and the calibration: freshness, convergence, ranges, coverage of answered items, drift since the previous calibration version. Exit 1 if any check fails.'
  static override examples = [
    '<%= config.bin %> verify irt',
    '<%= config.bin %> verify irt --json --junit verify-irt.xml',
    '<%= config.bin %> verify irt --drift-b 0.5 --drift-a 0.3 --drift-z 2 --drift-fail-count 20',
  ]
  static override flags = {
    ...dbFlags,
    ...verifyFlags,
    'drift-b': Flags.string({ description: 'Drift: flag items whose difficulty b moved more than this (absolute) since the previous version.', default: '0.3', env: 'SEEDOPS_DRIFT_B' }),
    'drift-a': Flags.string({ description: 'Drift: flag items whose discrimination a moved more than this share of its previous value.', default: '0.25', env: 'SEEDOPS_DRIFT_A' }),
    'drift-z': Flags.string({ description: 'Drift: a move must also exceed this many standard errors of the difference (where both SEs are known); 0: the thresholds alone.', default: '3', env: 'SEEDOPS_DRIFT_Z' }),
    'drift-fail-count': Flags.integer({ description: 'Drift: fail (not just warn) when more items than this are flagged (default: 10% of the compared items).', min: 0, env: 'SEEDOPS_DRIFT_FAIL_COUNT' }),
  }

  async run(): Promise<VerifyReport> {
    const { flags } = await this.parse(VerifyIrt)
    const r = await executeVerify([irtGroup], verifyOptions(flags), {
      stage: 'calibrate-irt',
      extraOptions: driftOptions({ driftB: flags['drift-b'], driftA: flags['drift-a'], driftZ: flags['drift-z'], driftFailCount: flags['drift-fail-count'] }),
    })
    this.failed = r.summary.fail > 0
    return r
  }

  protected override render(r: VerifyReport): void {
    renderVerify(r)
  }
}
