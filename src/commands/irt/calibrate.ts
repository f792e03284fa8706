import { Flags } from '@oclif/core'
import { BaseCommand } from '../../cli/base-command.js'
import { usageError } from '../../lib/errors/index.js'
import { calibrateFile, type CalibrateFileResult } from '../../lib/irt/offline.js'
import { MODELS, type IrtModel } from '../../lib/irt/model.js'
import { cycleReporter } from '../../lib/irt/progress.js'
import { renderTable } from '../../lib/output/index.js'

export default class IrtCalibrate extends BaseCommand {
  static override summary = 'Calibrate item parameters from a responses CSV (offline, no database).'
  static override description =
    'Calibrate item parameters (1PL, Rasch, 2PL, 3PL) by marginal maximum likelihood (EM, Bock–Aitkin) from long-format responses user_id,item_id,is_correct. Offline: no database.'
  static override examples = [
    '<%= config.bin %> irt calibrate --input responses.csv --model 2PL',
    '<%= config.bin %> irt calibrate --input responses.csv --model 3PL --prior beta:5,17 --out params.csv',
    '<%= config.bin %> irt calibrate --input new.csv --model 2PL --anchors bank.csv --free-latent --json',
  ]
  static override flags = {
    input: Flags.string({ char: 'i', description: 'Responses CSV with header user_id,item_id,is_correct.', required: true, env: 'SEEDOPS_IRT_INPUT' }),
    model: Flags.string({ char: 'm', description: 'Item response model. "1PL" is mirt\'s: a = 1 and N(0,1) fixed; "Rasch" also estimates the latent variance.', options: [...MODELS], default: '2PL', env: 'SEEDOPS_IRT_MODEL' }),
    anchors: Flags.string({ description: 'CSV item_id,a,b[,c] of items held fixed; the others are calibrated on their scale.', env: 'SEEDOPS_IRT_ANCHORS' }),
    out: Flags.string({ char: 'o', description: 'Write the item parameters to this CSV file.' }),
    prior: Flags.string({ description: '3PL prior on c: beta:ALPHA,BETA (default beta:5,17), logit-normal:MEAN,SD, or none.' }),
    duplicates: Flags.string({ description: 'Repeated (user_id, item_id) rows: keep the first or last in file order, or refuse.', options: ['first', 'last', 'error'], default: 'first' }),
    strict: Flags.boolean({ description: 'Fail (exit 1) on any rejected row or conflicting duplicate instead of warning.', default: false }),
    tol: Flags.string({ description: 'Convergence: largest absolute parameter change between EM cycles.', default: '1e-4' }),
    'max-cycles': Flags.integer({ description: 'Maximum EM cycles.', default: 500, min: 1 }),
    'free-latent': Flags.boolean({ description: 'Estimate the latent mean and variance (use with --anchors to put new items on the anchors\' scale).', default: false }),
    se: Flags.boolean({ description: 'Compute item standard errors (observed information).', default: true, allowNo: true }),
    'min-responses': Flags.integer({ description: 'Items with fewer responses are reported as degenerate and not calibrated.', default: 5, min: 1 }),
    threads: Flags.string({ description: 'E-step worker threads: a number or "auto" (workers only when the data are large).', default: 'auto', env: 'SEEDOPS_IRT_THREADS' }),
  }

  async run(): Promise<CalibrateFileResult> {
    const { flags } = await this.parse(IrtCalibrate)
    const tol = Number(flags.tol)
    if (!(tol > 0)) throw usageError(`--tol must be a positive number, got "${flags.tol}"`)
    const threads = flags.threads === 'auto' ? 'auto' : Number(flags.threads)
    if (threads !== 'auto' && !(Number.isInteger(threads) && threads >= 1)) throw usageError(`--threads must be a positive integer or "auto", got "${flags.threads}"`)
    const progress = cycleReporter(flags['max-cycles'], this.logger, { quiet: flags.quiet, json: this.jsonMode })
    try {
      return await calibrateFile(
        {
          input: flags.input,
          model: flags.model as IrtModel,
          anchors: flags.anchors,
          out: flags.out,
          duplicates: flags.duplicates as 'first' | 'last' | 'error',
          strict: flags.strict,
          prior: flags.prior,
          tol,
          maxCycles: flags['max-cycles'],
          freeLatent: flags['free-latent'],
          se: flags.se,
          threads,
          minResponses: flags['min-responses'],
          onCycle: progress.onCycle,
        },
        this.logger,
      )
    } finally {
      progress.stop()
    }
  }

  protected override render(r: CalibrateFileResult): void {
    const f = r.fit
    const out: string[] = []
    if (!r.out) {
      const three = r.model === '3PL'
      const head = ['item_id', 'a', 'b', ...(three ? ['c'] : []), 'se_a', 'se_b', ...(three ? ['se_c'] : []), 'infit', 'outfit', '']
      const fmt = (v: number | null) => (v === null ? '' : v.toFixed(4))
      out.push(
        renderTable(
          head,
          r.items.map((it) => [it.item_id, fmt(it.a), fmt(it.b), ...(three ? [fmt(it.c)] : []), fmt(it.se_a), fmt(it.se_b), ...(three ? [fmt(it.se_c)] : []), fmt(it.infit), fmt(it.outfit), [it.anchored ? 'anchor' : '', ...it.flags].filter(Boolean).join(' ')]),
        ),
        '',
      )
    } else out.push(`Wrote ${r.items.length} item(s) to ${r.out}`)
    out.push(
      `${r.model}: ${f.nPersons} persons, ${f.nItems} items, ${f.nObs} responses`,
      `logLik ${f.logLik.toFixed(4)}${f.logPrior ? `  logPrior ${f.logPrior.toFixed(4)}` : ''}  AIC ${f.AIC.toFixed(2)}  BIC ${f.BIC.toFixed(2)}  parameters ${f.nParameters}`,
      `${f.converged ? 'converged' : 'NOT converged'} after ${f.iterations} EM cycles (max change ${f.maxChange.toExponential(2)}, tol ${f.tol}) in ${f.seconds.toFixed(2)} s` +
        (f.groupPars.estimated ? `; latent mean ${f.groupPars.mean.toFixed(4)}, variance ${f.groupPars.variance.toFixed(4)}` : ''),
    )
    const t = r.timings
    out.push(`time ${t.total.toFixed(2)} s: read ${t.read.toFixed(2)} s, fit ${t.fit.toFixed(2)} s${t.se === null ? '' : `, standard errors ${t.se.toFixed(2)} s`}, write ${t.write.toFixed(2)} s`)
    if (r.degenerate.length) out.push(`Not calibrated: ${r.degenerate.map((d) => `${d.item_id} (${d.reason}, n=${d.n})`).join(', ')}`)
    process.stdout.write(out.join('\n') + '\n')
  }
}
