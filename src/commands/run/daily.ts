import { BaseCommand } from '../../cli/base-command.js'
import { dbFlags, runPlan, stageFlags } from '../../cli/flags.js'
import { withDb } from '../../lib/db/index.js'
import { runDaily, type DailyReport } from '../../lib/stages/chain.js'
import { asOfDays, renderStageReport } from '../../lib/stages/command.js'

export default class RunDaily extends BaseCommand {
  static override summary = 'Run the daily chain of stages in order, as the CronJobs do.'
  static override description =
    "Run the daily chain as the CronJobs do, in dependency order: aggregate-features → calibrate-irt → compute-kpis → detect-inactivity, and on a Monday generate-report for the week that just ended. Each stage takes its CronJob's configuration from the environment. With --from/--to, the chain for each day of an outage, in order. Stops at the first failure unless --keep-going."
  static override examples = [
    '<%= config.bin %> run daily',
    '<%= config.bin %> run daily --date 2026-11-23',
    '<%= config.bin %> run daily --from 2026-11-18 --to 2026-11-24   # after an outage',
    '<%= config.bin %> run daily --from 2026-11-18 --keep-going --json',
  ]
  static override flags = { ...dbFlags, ...stageFlags }

  async run(): Promise<DailyReport> {
    const { flags } = await this.parse(RunDaily)
    const plan = runPlan(flags)
    const days = asOfDays(plan)
    const r = await withDb({ databaseUrl: flags['database-url'] }, (db) => runDaily(db, { days, keepGoing: Boolean(flags['keep-going']), dryRun: Boolean(flags['dry-run']), logger: this.logger, env: process.env, runnerOptions: plan.runnerOptions }))
    this.failed = r.status === 'failed'
    return r
  }

  protected override render(r: DailyReport): void {
    renderStageReport({ stage: 'daily', from: r.from, to: r.to, dryRun: r.dryRun, status: r.status, runs: r.runs, failures: r.failures, notRun: [] })
    if (r.notRun.length) process.stdout.write(`not run: ${r.notRun.length} stage run(s), from ${r.notRun[0]!.stage} as of ${r.notRun[0]!.asOf}; fix the failure and re-run with --from ${r.notRun[0]!.asOf}, or use --keep-going\n`)
  }
}
