import { Flags } from '@oclif/core'
import { BaseCommand } from '../../cli/base-command.js'
import { dbFlags, runPlan, stageFlags } from '../../cli/flags.js'
import calibrateIrt from '../../lib/irt-stage/calibrate-stage.js'
import { executeStage, renderStageReport, type StageCommandResult } from '../../lib/stages/command.js'

export default class RunCalibrateIrt extends BaseCommand {
  static override summary = 'Calibrate item parameters and abilities over the lookback window.'
  static override description =
    'Calibrate IRT item parameters and learner abilities (native MML-EM engine) over the lookback window ending at --date; writes mirt_item_params, mirt_ability (+ history) and mirt_fit_meta.'
  static override examples = [
    '<%= config.bin %> run calibrate-irt',
    '<%= config.bin %> run calibrate-irt --model 3PL --lookback-days 60 --json',
    'IRT_MODEL=1PL <%= config.bin %> run calibrate-irt --anchor-mode linking --dry-run',
  ]
  static override flags = {
    ...dbFlags,
    ...stageFlags,
    'lookback-days': Flags.integer({ description: 'Days of responses to calibrate on [env IRT_CALIB_LOOKBACK_DAYS or MIRT_LOOKBACK_DAYS, default 30].' }),
    model: Flags.string({ description: 'IRT model: 1PL, Rasch, 2PL or 3PL [env IRT_MODEL or MIRT_MODEL, default 2PL].' }),
    'max-cycles': Flags.integer({ description: 'EM cycle limit; a fit that has not converged by then is recorded (converged=false) and its estimates are not written [env IRT_MAX_CYCLES, default 500].', min: 1 }),
    'anchor-mode': Flags.string({ description: 'Anchors from question.meta: fixed (held at their parameters), linking (mean/sigma afterwards) or none [env IRT_ANCHOR_MODE, default fixed].', options: ['fixed', 'linking', 'none'] }),
    'write-back': Flags.boolean({ description: 'Also write calibrated parameters into question.meta.irt [env IRT_WRITE_BACK].', allowNo: true }),
    'min-responses': Flags.integer({ description: 'Items with fewer responses are reported, not calibrated [env IRT_MIN_RESPONSES, default 5].' }),
    'allow-non-converged': Flags.boolean({ description: 'Write the estimates even if EM did not converge.' }),
    engine: Flags.string({ description: 'native (default) or r-plumber: the R service at R_IRT_BASE_URL with bearer R_IRT_INTERNAL_TOKEN [env IRT_ENGINE].', options: ['native', 'r-plumber'] }),
    timeout: Flags.integer({ description: 'r-plumber: seconds per attempt [env R_IRT_TIMEOUT_SECONDS, default 300].' }),
    retries: Flags.integer({ description: 'r-plumber: retries with exponential backoff on network errors and 5xx [env R_IRT_RETRIES, default 3].' }),
  }

  async run(): Promise<StageCommandResult> {
    const { flags } = await this.parse(RunCalibrateIrt)
    const r = await executeStage(
      calibrateIrt,
      {
        lookbackDays: flags['lookback-days'],
        model: flags.model,
        maxCycles: flags['max-cycles'],
        anchorMode: flags['anchor-mode'],
        writeBack: flags['write-back'],
        minResponses: flags['min-responses'],
        allowNonConverged: flags['allow-non-converged'],
        engine: flags.engine,
        timeoutSeconds: flags.timeout,
        retries: flags.retries,
      },
      runPlan(flags),
      this.logger,
    )
    this.failed = r.status === 'failed'
    return r
  }

  protected override render(r: StageCommandResult): void {
    renderStageReport(r)
  }
}
