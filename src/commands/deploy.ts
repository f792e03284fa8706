import { Flags } from '@oclif/core'
import { BaseCommand } from '../cli/base-command.js'
import { kubeFlags, kubeOptions } from '../cli/flags.js'
import { deploy, type DeployResult } from '../lib/kube/deploy.js'
import { connect } from '../lib/kube/connect.js'
import { renderTable } from '../lib/output/index.js'

export default class Deploy extends BaseCommand {
  static override summary = 'Apply k8s/ by server-side apply: CronJobs, the IRT service, RBAC.'
  static override description = 'Apply the manifests in k8s/ (server-side apply, field manager "seedops"): CronJobs for every stage, the IRT service, ServiceAccounts and RBAC. --image pins one image on every seedops workload (the report CronJob gets <tag>-report). Idempotent: a second run changes nothing.'
  static override examples = ['<%= config.bin %> deploy --image ghcr.io/seedtest/seedops:1.4.0', '<%= config.bin %> deploy --dry-run client > rendered.yaml', '<%= config.bin %> deploy -n seedtest-staging --manifests k8s/overlays/staging --dry-run server', { description: 'After `schedule set` or `kubectl patch` changed a field the manifests set, deploy exits 1 naming it; make the manifests win:', command: '<%= config.bin %> deploy --force-conflicts' }]
  static override flags = {
    ...kubeFlags,
    image: Flags.string({ description: 'Image to pin on every seedops container, with a tag or digest (default: the overlay\'s).' }),
    'report-image': Flags.string({ description: 'Image for the report CronJob (default: --image with "-report" appended to the tag).' }),
    manifests: Flags.string({ description: 'Kustomization dir or YAML file (default: k8s/overlays/production of this package).' }),
    'dry-run': Flags.string({ description: 'client: print the objects; server: let the API server validate them without storing.', options: ['none', 'client', 'server'], default: 'none' }),
    'force-conflicts': Flags.boolean({ description: 'Take over fields another field manager last set (e.g. a schedule changed by `schedule set` or `kubectl patch`) and set them to the manifests\' values, as kubectl apply --force-conflicts. Without it such a conflict is listed and deploy exits 1.' }),
  }

  async run(): Promise<DeployResult> {
    const { flags } = await this.parse(Deploy)
    const k = connect(kubeOptions(flags))
    return deploy(k, { dir: flags.manifests, image: flags.image, reportImage: flags['report-image'], namespace: flags.namespace, dryRun: flags['dry-run'] as 'none', force: flags['force-conflicts'] })
  }

  protected override render(r: DeployResult): void {
    if (r.manifests !== undefined) {
      process.stdout.write(r.manifests)
      return
    }
    process.stdout.write(renderTable(['KIND', 'NAME', 'ACTION', 'IMAGES'], r.items.map((i) => [i.kind, i.name, i.action + (r.dryRun === 'server' ? ' (server dry run)' : ''), i.images.join(', ') || '—'])) + '\n')
    const changed = r.items.filter((i) => i.action !== 'unchanged').length
    this.logger.info(changed ? `${changed} of ${r.items.length} objects created or changed in ${r.namespace}` : `Nothing to change: ${r.items.length} objects up to date in ${r.namespace}`)
  }
}
