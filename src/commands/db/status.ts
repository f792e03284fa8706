import { BaseCommand } from '../../lib/base-command.js'
import { dbFlags, withDb } from '../../lib/db/flags.js'
import { migrationStatus, type MigrationStatus } from '../../lib/db/migrate.js'
import { renderTable } from '../../lib/output/index.js'

export default class DbStatus extends BaseCommand<typeof DbStatus> {
  static override description = 'Show the database target, the applied seedops migrations and what is pending.'
  static override examples = ['<%= config.bin %> db status', 'DATABASE_URL=postgres://… <%= config.bin %> db status --json']
  static override flags = { ...dbFlags }

  async run(): Promise<MigrationStatus> {
    const { flags } = await this.parse(DbStatus)
    return withDb(flags, (db) => migrationStatus(db))
  }

  protected override render(r: MigrationStatus): void {
    process.stdout.write(`database: ${r.target}\nschema version: ${r.version ?? '(none)'}${r.pending.length ? ` — ${r.pending.length} pending` : ' — current'}\n`)
    process.stdout.write(renderTable(['migration', 'state', 'run at'], [
      ...r.applied.map((m) => [m.name, 'applied', m.runOn]),
      ...r.pending.map((n) => [n, 'pending', null]),
    ]) + '\n')
  }
}
