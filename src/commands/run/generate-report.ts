import { Flags } from '@oclif/core'
import { BaseCommand } from '../../lib/base-command.js'
import { dbFlags } from '../../lib/db/flags.js'
import generateReport, { type ReportSummary } from '../../lib/reports/stage.js'
import { executeStage, renderStageReport, stageFlags } from '../../lib/stages/command.js'
import type { StageRunReport } from '../../lib/stages/types.js'

export default class RunGenerateReport extends BaseCommand<typeof RunGenerateReport> {
  static override description =
    'Render the weekly report of every learner with KPIs for the ISO week of --date (HTML, PDF via headless Chromium, or Quarto) into a local folder or S3, and record each in report_artifacts. Re-runs overwrite the same keys; --shard splits the learners for an Indexed Job. Exit 1 if any report failed.'
  static override examples = [
    '<%= config.bin %> run generate-report',
    '<%= config.bin %> run generate-report --date 2026-11-16 --user u-42 --out-dir ./reports',
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
    shard: Flags.string({ description: 'This run\'s share of the learners, i/n (0-based), by a stable hash of the user id [default: JOB_COMPLETION_INDEX/JOB_COMPLETION_COUNT, else 0/1].', helpGroup: 'SHARDING' }),
    'shard-count': Flags.integer({ description: 'Number of shards when the index comes from JOB_COMPLETION_INDEX [env JOB_COMPLETION_COUNT].', helpGroup: 'SHARDING' }),
    'batch-size': Flags.integer({ description: 'Learners whose data is read per set of queries [env REPORT_BATCH_SIZE, default 200].' }),
    concurrency: Flags.integer({ description: 'Reports rendered/uploaded at once [env REPORT_CONCURRENCY, default 4].' }),
  }

  async run(): Promise<StageRunReport<ReportSummary>> {
    const { flags } = await this.parse(RunGenerateReport)
    const r = await executeStage(generateReport, flags, this.logger)
    this.failed = r.status === 'failed' || (r.summary?.failedUsers ?? 0) > 0
    return r
  }

  protected override render(r: StageRunReport<ReportSummary>): void {
    renderStageReport(r)
    const s = r.summary
    if (!s) return
    for (const f of s.failures.slice(0, 10)) process.stdout.write(`failed: ${JSON.stringify(f.user_id)} ${f.format}: ${f.error}\n`)
    if (s.sample && !r.dryRun) process.stdout.write(`sample report: ${s.sample.path ?? s.sample.url}\n`)
  }
}
