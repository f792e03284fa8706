import { BaseCommand } from '../../lib/base-command.js'
import { dbFlags } from '../../lib/db/flags.js'
import { executeVerify, renderVerify, verifyFlags } from '../../lib/verify/command.js'
import { irtGroup } from '../../lib/verify/irt.js'
import type { VerifyReport } from '../../lib/verify/run.js'

export default class VerifyIrt extends BaseCommand<typeof VerifyIrt> {
  static override description = 'SQL checks on item parameters and the calibration: freshness, convergence, ranges, coverage of answered items. Exit 1 if any check fails.'
  static override examples = ['<%= config.bin %> verify irt', '<%= config.bin %> verify irt --json --junit verify-irt.xml']
  static override flags = { ...dbFlags, ...verifyFlags }

  async run(): Promise<VerifyReport> {
    const { flags } = await this.parse(VerifyIrt)
    const r = await executeVerify([irtGroup], flags, { stage: 'calibrate-irt' })
    this.failed = r.failed > 0
    return r
  }

  protected override render(r: VerifyReport): void {
    renderVerify(r)
  }
}
