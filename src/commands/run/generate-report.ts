import { Flags } from '@oclif/core'
import { BaseCommand } from '../../cli/base-command.js'
import { dbFlags, runPlan, stageFlags } from '../../cli/flags.js'
import generateReport, { type ReportSummary } from '../../lib/reports/stage.js'
import { executeStage, isRange, renderStageReport, type StageCommandResult } from '../../lib/stages/command.js'

export default class RunGenerateReport extends BaseCommand {
  static override summary = 'Render and store the weekly report of every learner.'
  static override description =
    'Render the weekly report of every learner with KPIs for the last complete ISO week (on Monday: the week that just ended; its KPIs are finalised first), or the week of --week/--date (HTML, PDF via headless Chromium, or Quarto) into a local folder or S3, and record each in report_artifacts. Re-runs overwrite the same keys; --shard splits the learners for an Indexed Job. Exit 1 if any report failed.'
  static override examples = [
    '<%= config.bin %> run generate-report',
    '<%= config.bin %> run generate-report --week 2026-W47 --user u-42 --out-dir ./reports',
    '<%= config.bin %> run generate-report --require-final-kpis   # refuse instead of finalising the week\'s KPIs',
    'S3_BUCKET=seedtest-reports AWS_REGION=eu-central-1 <%= config.bin %> run generate-report --format both',
    '<%= config.bin %> run generate-report --shard 2/4 --json',
    'JOB_COMPLETION_INDEX=1 <%= config.bin %> run generate-report --shard-count 4 --dry-run',
  ]
  static override flags = {
    ...dbFlags,
    ...stageFlags,
    format: Flags.string({ description: 'html, pdf or both [env REPORT_FORMAT, default html]. PDF needs chromium (or Quarto).', options: ['html', 'pdf', 'both'] }),
    renderer: Flags.string({ description: 'auto (Quarto when on PATH, else built-in), builtin or quarto [env REPORT_RENDERER, default auto].', options: ['auto', 'builtin', 'quarto'] }),
    store: Flags.string({ description: 'local or s3 [env REPORT_STORE]; default: s3 when S3_BUCKET is set, else local.', options: ['local', 's3'], helpGroup: 'STORE' }),
    'out-dir': Flags.string({ description: 'Local folder for reports [env REPORT_OUT_DIR, default $SEEDOPS_HOME/reports].', helpGroup: 'STORE' }),
    bucket: Flags.string({ description: 'S3 bucket [env S3_BUCKET]; region from AWS_REGION, endpoint from AWS_ENDPOINT_URL / S3_ENDPOINT, credentials from the AWS env chain.', helpGroup: 'STORE' }),
    user: Flags.string({ description: 'Only this learner (repeatable).', multiple: true }),
    week: Flags.string({ description: 'The ISO week to report, YYYY-Www (default: the last complete week before the as-of day; --date D: the week holding D).', helpGroup: 'STAGE' }),
    'require-final-kpis': Flags.boolean({ description: 'For the default week: refuse when its KPIs are not final (computed after the week ended) instead of computing them first.', helpGroup: 'STAGE' }),
    shard: Flags.string({ description: 'This run\'s share of the learners, i/n (0-based), by a stable hash of the user id [default: JOB_COMPLETION_INDEX/JOB_COMPLETION_COUNT, else 0/1].', helpGroup: 'SHARDING' }),
    'shard-count': Flags.integer({ description: 'Number of shards when the index comes from JOB_COMPLETION_INDEX [env JOB_COMPLETION_COUNT].', helpGroup: 'SHARDING' }),
    'batch-size': Flags.integer({ description: 'Learners whose data is read per set of queries [env REPORT_BATCH_SIZE, default 200].' }),
    concurrency: Flags.integer({ description: 'Reports rendered/uploaded at once [env REPORT_CONCURRENCY, default 4].' }),
  }

  async run(): Promise<StageCommandResult<ReportSummary>> {
    const { flags } = await this.parse(RunGenerateReport)
    const r = await executeStage(
      generateReport,
      {
        format: flags.format,
        renderer: flags.renderer,
        store: flags.store,
        outDir: flags['out-dir'],
        bucket: flags.bucket,
        shard: flags.shard,
        shardCount: flags['shard-count'],
        users: flags.user,
        batchSize: flags['batch-size'],
        concurrency: flags.concurrency,
        // --date D reports the ISO week holding D.
        week: flags.week ?? flags.date,
        requireFinalKpis: flags['require-final-kpis'],
      },
      runPlan(flags),
      this.logger,
    )
    this.failed = r.status === 'failed' || (!isRange(r) && (r.summary?.failedUsers ?? 0) > 0)
    return r
  }

  protected override render(r: StageCommandResult<ReportSummary>): void {
    renderStageReport(r as StageCommandResult)
    if (isRange(r)) return
    const s = r.summary
    if (!s) return
    for (const f of s.failures.slice(0, 10)) process.stdout.write(`failed: ${JSON.stringify(f.user_id)} ${f.format}: ${f.error}\n`)
    if (s.sample && !r.dryRun) process.stdout.write(`sample report: ${s.sample.path ?? s.sample.url}\n`)
  }
}
