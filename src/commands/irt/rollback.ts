import { Flags } from '@oclif/core'
import { BaseCommand } from '../../cli/base-command.js'
import { dbFlags } from '../../cli/flags.js'
import { withDb } from '../../lib/db/index.js'
import { rollbackItemParams, type RollbackSummary } from '../../lib/irt-stage/rollback.js'
import { renderStageReport } from '../../lib/stages/command.js'
import type { StageRunReport } from '../../lib/stages/types.js'

export default class IrtRollback extends BaseCommand {
  static override summary = 'Make an earlier calibration version current again.'
  static override description =
    'Make an earlier calibration version current again: mirt_item_params becomes what it was right after that version was calibrated (from the item-parameter history). One transaction, recorded in the run log as irt-rollback, never at the same time as calibrate-irt. Undo: roll back to the version that was current (printed). Unknown version: exit 2 with the known ones.'
  static override examples = ['<%= config.bin %> irt history', '<%= config.bin %> irt rollback --to 2026-06-29.2PL --dry-run', '<%= config.bin %> irt rollback --to 2026-06-29.2PL']
  static override flags = {
    ...dbFlags,
    to: Flags.string({ description: 'The version to make current (see: seedops irt history).', required: true }),
    'dry-run': Flags.boolean({ description: 'Show what would change, write nothing (the transaction is rolled back).' }),
  }

  async run(): Promise<StageRunReport<RollbackSummary>> {
    const { flags } = await this.parse(IrtRollback)
    return withDb({ databaseUrl: flags['database-url'] }, (db) => rollbackItemParams(db, flags.to, { dryRun: Boolean(flags['dry-run']), logger: this.logger }))
  }

  protected override render(r: StageRunReport<RollbackSummary>): void {
    renderStageReport(r)
    const s = r.summary!
    process.stdout.write(`${r.dryRun ? 'would make' : 'made'} ${s.to} current (was ${s.from ?? 'none'}): ${s.changed} item(s) changed, ${s.removed} removed, ${s.items} in mirt_item_params\n`)
    if (!r.dryRun && s.from && s.from !== s.to) process.stdout.write(`undo: seedops irt rollback --to ${s.from}\n`)
  }
}
