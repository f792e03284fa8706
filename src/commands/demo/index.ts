import { BaseCommand } from '../../cli/base-command.js'
import { dbFlags, seedFlags, stageFlags } from '../../cli/flags.js'
import { resolveDate } from '../../lib/config/index.js'
import { withDb } from '../../lib/db/index.js'
import { runDemo, type DemoResult } from '../../lib/demo/pipeline.js'
import { renderTable } from '../../lib/output/index.js'

export default class Demo extends BaseCommand {
  static override summary = 'Run the whole pipeline on demo data in the embedded database.'
  static override description =
    'The whole pipeline on demo data: migrate, seed demo data if the database is empty, run every stage, print a summary. Uses the embedded database unless DATABASE_URL is set.'
  static override examples = ['<%= config.bin %> demo', '<%= config.bin %> demo --learners 1000 --json', 'SEEDOPS_HOME=/tmp/demo <%= config.bin %> demo']
  static override flags = { ...dbFlags, ...seedFlags, date: stageFlags.date }

  async run(): Promise<DemoResult> {
    const { flags } = await this.parse(Demo)
    const asOf = resolveDate(flags.date)
    const r = await withDb({ databaseUrl: flags['database-url'] }, (db) =>
      runDemo(db, { seed: { learners: flags.learners, items: flags.items, days: flags.days, seed: flags.seed }, asOf, logger: this.logger }),
    )
    this.failed = r.stages.some((s) => s.status !== 'succeeded')
    return r
  }

  protected override render(r: DemoResult): void {
    const out = process.stdout
    out.write(`\nseedops demo on ${r.target}, as of ${r.asOf}\n`)
    if (r.seeded) out.write(`seeded ${r.seeded.learners} learners, ${r.seeded.sessions} sessions, ${r.seeded.answered} answered questions (${r.seeded.from}..${r.seeded.to})\n`)
    out.write('\n' + renderTable(['stage', 'status', 'seconds', 'rows'], r.stages.map((s) => [s.stage, s.status, s.durationMs / 1000, s.error ?? Object.entries(s.rows).map(([k, v]) => `${k}=${v}`).join(' ')])) + '\n')
    out.write('\n' + renderTable(['table', 'rows'], Object.entries(r.tables)) + '\n')
    if (r.sampleReport) out.write(`\nOpen a sample report: ${r.sampleReport}\n`)
    out.write('\nNext: seedops verify all · seedops status · seedops db status\n')
  }
}
