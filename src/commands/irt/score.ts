import { Flags } from '@oclif/core'
import { BaseCommand } from '../../cli/base-command.js'
import { formatCsv } from '../../lib/irt/io.js'
import { scoreFile, type ScoreFileResult } from '../../lib/irt/offline.js'
import type { ScoreMethod } from '../../lib/irt/score.js'

export default class IrtScore extends BaseCommand {
  static override summary = 'Score persons (θ, SE) from responses with fixed item parameters.'
  static override description =
    'Score persons (θ and its standard error) from long-format responses with fixed item parameters: EAP (default), MAP or ML. Writes CSV user_id,theta,se,n_responses,extreme to stdout or --out.'
  static override examples = [
    '<%= config.bin %> irt score --params params.csv --input responses.csv > scores.csv',
    '<%= config.bin %> irt score --params params.csv --input responses.csv --method ml --out scores.csv',
  ]
  static override flags = {
    params: Flags.string({ char: 'p', description: 'Item parameters CSV item_id,a,b[,c] (or a,d) — e.g. the --out of irt calibrate.', required: true, env: 'SEEDOPS_IRT_PARAMS' }),
    input: Flags.string({ char: 'i', description: 'Responses CSV with header user_id,item_id,is_correct.', required: true, env: 'SEEDOPS_IRT_INPUT' }),
    method: Flags.string({ description: 'EAP (posterior mean on the 61-point grid), MAP (posterior mode) or ML.', options: ['eap', 'map', 'ml'], default: 'eap' }),
    'prior-mean': Flags.string({ description: 'Mean of the normal prior (EAP/MAP).', default: '0' }),
    'prior-variance': Flags.string({ description: 'Variance of the normal prior (EAP/MAP).', default: '1' }),
    duplicates: Flags.string({ description: 'Repeated (user_id, item_id) rows: keep the first or last in file order, or refuse.', options: ['first', 'last', 'error'], default: 'first' }),
    strict: Flags.boolean({ description: 'Fail (exit 1) on any rejected row or conflicting duplicate instead of warning.', default: false }),
    out: Flags.string({ char: 'o', description: 'Write the scores to this CSV file instead of stdout.' }),
  }

  async run(): Promise<ScoreFileResult> {
    const { flags } = await this.parse(IrtScore)
    return scoreFile(
      {
        params: flags.params,
        input: flags.input,
        method: flags.method as ScoreMethod,
        priorMean: Number(flags['prior-mean']),
        priorVariance: Number(flags['prior-variance']),
        duplicates: flags.duplicates as 'first' | 'last' | 'error',
        strict: flags.strict,
        out: flags.out,
      },
      this.logger,
    )
  }

  protected override render(r: ScoreFileResult): void {
    if (r.out) {
      process.stdout.write(`Wrote ${r.nPersons} ${r.method.toUpperCase()} score(s) to ${r.out}\n`)
      return
    }
    process.stdout.write(formatCsv(['user_id', 'theta', 'se', 'n_responses', 'extreme'], r.scores.map((x) => [x.user_id, x.theta, x.se, x.n_responses, x.extreme])))
  }
}
