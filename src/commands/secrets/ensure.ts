import { Flags } from '@oclif/core'
import { BaseCommand } from '../../cli/base-command.js'
import { kubeFlags, kubeOptions } from '../../cli/flags.js'
import { connect } from '../../lib/kube/connect.js'
import { ensureSecrets, readEnvFile, SECRET_SPECS, type EnsureResult, type Prompt } from '../../lib/kube/secrets.js'
import { renderTable } from '../../lib/output/index.js'

export default class SecretsEnsure extends BaseCommand {
  static override summary = 'Create the secrets and config map the workloads need (values never shown).'
  static override description = `Create the secrets and config map the seedops workloads need, when missing: ${SECRET_SPECS.map((s) => `${s.name} (${s.keys.map((k) => k.key).join(', ')})`).join('; ')}.
Values come from the environment, --from-env-file (KEY=VALUE lines; - reads stdin), or a prompt on a terminal; never from a flag, and they are never printed. Existing objects are left alone unless --update.`
  static override examples = [
    'DATABASE_URL=postgres://… R_IRT_INTERNAL_TOKEN=… <%= config.bin %> secrets ensure --only db --only irt',
    '<%= config.bin %> secrets ensure --from-env-file ./seedtest.env',
    'vault kv get -format=env secret/seedtest | <%= config.bin %> secrets ensure --from-env-file -',
    '<%= config.bin %> secrets ensure --dry-run client',
  ]
  static override flags = {
    ...kubeFlags,
    only: Flags.string({ description: 'Only these (repeatable).', options: ['db', 'irt', 's3', 'report-config'], multiple: true }),
    'dry-run': Flags.string({ description: 'client: print the manifests with values redacted; server: let the API server validate without writing.', options: ['none', 'client', 'server'], default: 'none' }),
    update: Flags.boolean({ description: 'Also write the given values into objects that exist (merge: other keys stay).' }),
    'from-env-file': Flags.string({ description: 'Read values from KEY=VALUE lines in this file; - for stdin.' }),
    'no-prompt': Flags.boolean({ description: 'Never prompt, even on a terminal (fail naming the missing variable instead).' }),
  }

  async run(): Promise<EnsureResult> {
    const { flags } = await this.parse(SecretsEnsure)
    const k = connect(kubeOptions(flags))
    const fromFile = flags['from-env-file'] ? readEnvFile(flags['from-env-file']) : {}
    const interactive = !flags['no-prompt'] && !this.jsonMode && Boolean(process.stdin.isTTY && process.stderr.isTTY) && flags['from-env-file'] !== '-'
    const prompt: Prompt | undefined = interactive
      ? async (q) => {
          const { input, password } = await import('@inquirer/prompts')
          return q.secret
            ? password({ message: q.message, mask: '*' }, { output: process.stderr })
            : input({ message: q.message, default: q.default }, { output: process.stderr })
        }
      : undefined
    const r = await ensureSecrets(k, {
      only: flags.only as ('db' | 'irt' | 's3' | 'report-config')[] | undefined,
      dryRun: flags['dry-run'] as 'none' | 'client' | 'server',
      update: flags.update,
      values: { ...process.env, ...fromFile },
      prompt,
    })
    for (const i of r.items) if (i.action === 'incomplete') this.logger.warn(`${i.kind} ${i.name} exists but lacks ${i.missingKeys.join(', ')}; add them with --update`)
    return r
  }

  protected override render(r: EnsureResult): void {
    if (r.manifests) process.stdout.write(r.manifests)
    else process.stdout.write(renderTable(['KIND', 'NAME', 'ACTION', 'KEYS WRITTEN'], r.items.map((i) => [i.kind, i.name, i.action, i.keys.join(', ') || '—'])) + '\n')
    this.logger.info(`namespace ${r.namespace}${r.dryRun !== 'none' ? ` (dry run: ${r.dryRun})` : ''}`)
  }
}
