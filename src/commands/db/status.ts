import { BaseCommand } from '../../cli/base-command.js'
import { dbFlags } from '../../cli/flags.js'
import { withDb } from '../../lib/db/index.js'
import { schemaStatus, type SchemaStatus } from '../../lib/db/migrate.js'
import { renderTable } from '../../lib/output/index.js'

export default class DbStatus extends BaseCommand {
  static override summary = 'Show the database target, applied and pending migrations, and shape drift.'
  static override description =
    'Show the database target, the applied seedops migrations, what is pending, and every seedops-owned table or view whose live shape differs from the expected one.'
  static override examples = ['<%= config.bin %> db status', 'DATABASE_URL=postgres://… <%= config.bin %> db status --json']
  static override flags = { ...dbFlags }

  async run(): Promise<SchemaStatus> {
    const { flags } = await this.parse(DbStatus)
    return withDb({ databaseUrl: flags['database-url'] }, (db) => schemaStatus(db))
  }

  protected override render(r: SchemaStatus): void {
    process.stdout.write(`database: ${r.target}\nschema version: ${r.version ?? '(none)'}${r.pending.length ? ` — ${r.pending.length} pending` : ' — current'}\n`)
    process.stdout.write(renderTable(['migration', 'state', 'run at'], [
      ...r.applied.map((m) => [m.name, 'applied', m.runOn]),
      ...r.pending.map((n) => [n, 'pending', null]),
    ]) + '\n')
    process.stdout.write(`attempts read from: ${r.attempts.source ?? '(no source)'}${r.attempts.skipped.length && r.attempts.source !== 'attempt' ? ` (${r.attempts.skipped.join('; ')})` : ''}\n`)
    if (!r.drift.length) process.stdout.write('every seedops-owned table and view has its expected shape\n')
    else {
      process.stdout.write(`\n${r.drift.length} difference(s) from the expected shape (fix: seedops db migrate --dry-run, then seedops db migrate):\n`)
      process.stdout.write(renderTable(['object', 'kind', 'difference'], r.drift.map((d) => [d.object, d.kind, d.problem])) + '\n')
    }
  }
}
