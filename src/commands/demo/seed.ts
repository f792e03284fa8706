import { BaseCommand } from '../../cli/base-command.js'
import { dbFlags, seedFlags, stageFlags } from '../../cli/flags.js'
import { resolveDate } from '../../lib/config/index.js'
import { withTransaction } from '../../lib/db/index.js'
import { withDb } from '../../lib/db/index.js'
import { assertMigrated } from '../../lib/db/migrate.js'
import { seedDemo, type SeedSummary } from '../../lib/demo/seed.js'

export default class DemoSeed extends BaseCommand {
  static override summary = 'Write deterministic demo platform data (learners, answers, goals).'
  static override description =
    'Write realistic demo platform data (questions, exam_results from a true 2PL model, goals, churners, a few malformed rows). Deterministic for a seed; true parameters go to seedops_demo_truth.'
  static override examples = ['<%= config.bin %> demo seed --learners 500 --items 200 --days 60 --seed 7', '<%= config.bin %> demo seed --learners 20000 --days 60 --json']
  static override flags = { ...dbFlags, ...seedFlags, date: stageFlags.date }

  async run(): Promise<SeedSummary> {
    const { flags } = await this.parse(DemoSeed)
    const endDate = resolveDate(flags.date)
    return withDb({ databaseUrl: flags['database-url'] }, async (db) => {
      await assertMigrated(db)
      return withTransaction(db.pool, (c) =>
        seedDemo(c, { learners: flags.learners, items: flags.items, days: flags.days, seed: flags.seed, endDate }, this.logger),
      )
    })
  }

  protected override render(r: SeedSummary): void {
    process.stdout.write(`Seeded ${r.learners} learners, ${r.items} items, ${r.sessions} sessions (${r.answered} answered questions), ${r.malformed} malformed rows, ${r.goals} goals; ${r.from}..${r.to}.\n`)
  }
}
