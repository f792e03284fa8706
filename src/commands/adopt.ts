import { Flags } from '@oclif/core'
import { BaseCommand } from '../cli/base-command.js'
import { dbFlags, kubeFlags, kubeOptions } from '../cli/flags.js'
import { adoptApply, adoptPlan, adoptPrune, adoptRollback, adoptSummary, renderAdopt, runLogReader, type AdoptResult } from '../lib/adopt/index.js'
import { usageError } from '../lib/errors/index.js'
import { connect } from '../lib/kube/connect.js'

export default class Adopt extends BaseCommand {
  static override summary = 'Take over the predecessor\'s namespace: plan, --yes, --rollback, --prune-legacy.'
  static override description = `Take over the predecessor's namespace. Without flags: the plan, one row per object — legacy CronJobs mapped to seedops stages (by name, label or python module path), secrets and config map keys copied to the names and keys seedops reads (values never shown), the r-irt-plumber Service pointed at seedops irt serve — and nothing changes.
--yes applies it: deploys seedops' objects (server-side apply), copies the keys, suspends the legacy CronJobs (never deletes them), and records every change in the ConfigMap seedops-adoption. Idempotent. --rollback undoes exactly what was recorded. --prune-legacy deletes the legacy CronJobs once every replacing stage has a successful run.`
  static override examples = [
    '<%= config.bin %> adopt -n seedtest',
    '<%= config.bin %> adopt -n seedtest --yes --image ghcr.io/seedtest/seedops:1.4.0',
    '<%= config.bin %> adopt -n seedtest --rollback',
    'DATABASE_URL=… <%= config.bin %> adopt -n seedtest --prune-legacy',
  ]
  static override flags = {
    ...kubeFlags,
    ...dbFlags,
    yes: Flags.boolean({ char: 'y', description: 'Apply the plan.' }),
    rollback: Flags.boolean({ description: 'Undo what adopt --yes recorded: resume the CronJobs it suspended, restore the Service, delete what it created.' }),
    'prune-legacy': Flags.boolean({ description: 'Delete the legacy CronJobs, once each replacing stage has succeeded (a completed Job, lastSuccessfulTime, or the run log when a database is configured).' }),
    image: Flags.string({ description: 'Image to pin on every seedops container, as seedops deploy --image.' }),
    'report-image': Flags.string({ description: 'Image for the report CronJob (default: --image with "-report" appended to the tag).' }),
    manifests: Flags.string({ description: 'Kustomization dir or YAML file (default: k8s/overlays/production of this package).' }),
  }

  async run(): Promise<AdoptResult> {
    const { flags } = await this.parse(Adopt)
    const modes = [flags.yes && '--yes', flags.rollback && '--rollback', flags['prune-legacy'] && '--prune-legacy'].filter(Boolean)
    if (modes.length > 1) throw usageError(`${modes.join(' and ')} cannot be combined`, ['Plan first: seedops adopt', 'Then one of: --yes, --rollback, --prune-legacy'])
    const k = connect(kubeOptions(flags))
    const opts = { dir: flags.manifests, image: flags.image, reportImage: flags['report-image'] }
    const r = flags.rollback ? await adoptRollback(k) : flags['prune-legacy'] ? await adoptPrune(k, { dir: flags.manifests, runLog: runLogReader(flags['database-url'], process.env) }) : flags.yes ? await adoptApply(k, opts) : await adoptPlan(k, opts)
    for (const w of r.warnings) this.logger.warn(w)
    return r
  }

  protected override render(r: AdoptResult): void {
    process.stdout.write(renderAdopt(r))
    this.logger.info(adoptSummary(r))
  }
}
