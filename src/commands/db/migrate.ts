import { Flags } from '@oclif/core'
import { BaseCommand } from '../../cli/base-command.js'
import { dbFlags } from '../../cli/flags.js'
import { withDb } from '../../lib/db/index.js'
import { migrate, type MigrateResult } from '../../lib/db/migrate.js'

export default class DbMigrate extends BaseCommand {
  static override summary = 'Create or adopt seedops\' schema in one transaction (--dry-run: the plan).'
  static override description =
    'Create what seedops needs in the database (derived tables, the attempt view, ability history, run log) and adopt what another system left there (the predecessor\'s attempt view, derived tables in an older shape), in one transaction. Idempotent; never touches platform rows; derived rows that must be merged are archived in seedops_archive first.'
  static override examples = [
    '<%= config.bin %> db migrate --dry-run',
    '<%= config.bin %> db migrate',
    'DATABASE_URL=postgres://… <%= config.bin %> db migrate --json',
  ]
  static override flags = {
    ...dbFlags,
    'dry-run': Flags.boolean({ description: 'Print the plan (every statement, with the reason) and apply nothing.' }),
  }

  async run(): Promise<MigrateResult> {
    const { flags } = await this.parse(DbMigrate)
    return withDb({ databaseUrl: flags['database-url'] }, (db) => migrate(db, this.logger, { dryRun: flags['dry-run'] }))
  }

  protected override render(r: MigrateResult): void {
    const out = (s: string) => process.stdout.write(s + '\n')
    if (r.dryRun) {
      if (!r.plan.length) {
        out(`Nothing to do: ${r.target} is at schema version ${r.version} and every seedops object has its expected shape.`)
        return
      }
      out(`Plan for ${r.target} (dry run: nothing applied), ${r.plan.length} step(s), one transaction:`)
      r.plan.forEach((s, i) => out(`\n-- ${i + 1}. ${s.object}: ${s.why}\n${s.statement.trimEnd()}${s.statement.trimEnd().endsWith(';') || s.statement.startsWith('--') ? '' : ';'}`))
    } else {
      const adopted = r.plan.length - r.ran.length
      out(
        r.ran.length || adopted
          ? `Applied ${r.ran.length} migration(s)${r.ran.length ? ` (${r.ran.join(', ')})` : ''} and ${adopted} adoption step(s) to ${r.target}. Schema version ${r.version}.`
          : `Nothing to do: ${r.target} is at schema version ${r.version}.`,
      )
    }
    for (const c of r.rowChanges) out(`${c.table}: ${c.note}; the table as it was ${r.dryRun ? 'will be' : 'is'} in ${c.archive}`)
    for (const n of r.notes) out(`note: ${n}`)
  }
}
