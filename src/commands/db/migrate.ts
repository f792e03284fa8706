import { BaseCommand } from '../../lib/base-command.js'
import { dbFlags, withDb } from '../../lib/db/flags.js'
import { migrate, type MigrateResult } from '../../lib/db/migrate.js'

export default class DbMigrate extends BaseCommand<typeof DbMigrate> {
  static override description =
    'Create what seedops needs in the database (derived tables, the attempt view, ability history, run log). Idempotent; never drops or rewrites platform data.'
  static override examples = ['<%= config.bin %> db migrate', 'DATABASE_URL=postgres://… <%= config.bin %> db migrate --json']
  static override flags = { ...dbFlags }

  async run(): Promise<MigrateResult> {
    const { flags } = await this.parse(DbMigrate)
    return withDb(flags, (db) => migrate(db, this.logger))
  }

  protected override render(r: MigrateResult): void {
    process.stdout.write(
      r.ran.length
        ? `Applied ${r.ran.length} migration(s) to ${r.target}: ${r.ran.join(', ')}. Schema version ${r.version}.\n`
        : `Nothing to do: ${r.target} is at schema version ${r.version}.\n`,
    )
  }
}
