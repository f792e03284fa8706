import { Flags } from '@oclif/core'
import { BaseCommand } from '../cli/base-command.js'
import { dbFlags, kubeFlags, kubeOptions } from '../cli/flags.js'
import { lazyConnect } from '../lib/kube/connect.js'
import { collectStatus, renderStatus, type StatusResult } from '../lib/status/index.js'

export default class Status extends BaseCommand {
  static override summary = 'The CronJobs, the IRT service and each stage\'s last run, at a glance.'
  static override description = 'At a glance: the CronJobs (schedule, suspended, last schedule, last success, active jobs), the IRT service Deployments (seedops-irt, and the predecessor\'s r-irt-plumber if present: ready/desired replicas, restarts over their pods, image) and, from the database, each stage\'s last run (status, as-of, duration, rows, error) and last success with its age. Works with only the cluster or only the database; exit 1 only when neither is available.'
  static override examples = ['<%= config.bin %> status', '<%= config.bin %> status -n seedtest-staging --json', 'DATABASE_URL=… <%= config.bin %> status']
  static override flags = {
    ...kubeFlags,
    ...dbFlags,
    manifests: Flags.string({ description: 'Kustomization dir the cluster was deployed from (for the list of stages; default: k8s/overlays/production).' }),
  }

  async run(): Promise<StatusResult> {
    const { flags } = await this.parse(Status)
    const conn = lazyConnect(kubeOptions(flags))
    const r = await collectStatus({ namespace: conn.namespace, connect: conn.connect, databaseUrl: flags['database-url'], manifests: flags.manifests })
    if (!r.cluster.available) this.logger.warn(`cluster unavailable: ${r.cluster.reason}`)
    else if (!r.irt.available) this.logger.warn(`IRT service unavailable: ${r.irt.reason}`)
    if (!r.database.available) this.logger.warn(`database unavailable: ${r.database.reason}`)
    return r
  }

  protected override render(r: StatusResult): void {
    process.stdout.write(renderStatus(r))
  }
}
