import { Flags } from '@oclif/core'
import { BaseCommand } from '../cli/base-command.js'
import { dbFlags, kubeFlags, kubeOptions } from '../cli/flags.js'
import { executeDoctor } from '../lib/doctor/command.js'
import { listChecks, renderReport } from '../lib/doctor/run.js'
import type { DoctorReport } from '../lib/doctor/types.js'
import { renderTable } from '../lib/output/index.js'

type Result = DoctorReport | { checks: ReturnType<typeof listChecks> }

export default class Doctor extends BaseCommand {
  static override summary = 'Diagnose the installation: cluster, database, storage, IRT service.'
  static override description = `Diagnose the seedops installation: the cluster (CronJobs present once with the expected image, command and schedule, the predecessor's CronJobs, CronJobs that did not fire; the IRT Deployment; image pull errors; stuck pods; jobs without pods; commands or modules missing from the image; OOMKilled containers; jobs held open by a sidecar; failed jobs; missing secrets and keys), the database (reachable, schema current, stages fresh), the object store and the R IRT service. With no kubeconfig the cluster checks are skipped (--require-cluster: fail).
One line per finding (failures first) with its cause and the command that fixes it. Exit 1 when any check fails. --fix applies the safe fixes (create missing secrets from the environment, delete an exact duplicate CronJob, reset a CronJob's image to the one seedops deploy recorded or --image) after asking, each only when a SelfSubjectAccessReview allows it; --yes for CI.`
  static override examples = [
    '<%= config.bin %> doctor',
    '<%= config.bin %> doctor -n seedtest-staging --only cronjobs.present,pods.image-pull',
    '<%= config.bin %> doctor --only db --require-db',
    'DATABASE_URL=… R_IRT_INTERNAL_TOKEN=… <%= config.bin %> doctor --fix --yes',
    '<%= config.bin %> doctor --list-checks',
    '<%= config.bin %> doctor --require-cluster --junit doctor.xml',
  ]
  static override flags = {
    ...kubeFlags,
    ...dbFlags,
    only: Flags.string({ description: 'Run only these checks (ids or categories: cluster, database/db, storage, irt; comma-separated or repeated).', multiple: true }),
    junit: Flags.string({ description: 'Also write a JUnit XML report to this file (for CI): a testsuite per category, a testcase per finding.' }),
    'list-checks': Flags.boolean({ description: 'List the checks (id, category, description) and exit.' }),
    fix: Flags.boolean({ description: 'Apply the safe fixes after a confirmation, then check again.' }),
    yes: Flags.boolean({ char: 'y', description: 'With --fix: do not ask (CI).' }),
    'require-db': Flags.boolean({ description: 'Fail (not warn) when no database is configured.', env: 'SEEDOPS_REQUIRE_DB' }),
    'require-cluster': Flags.boolean({ description: 'Fail (not skip the cluster checks) when no kubeconfig is found and seedops is not in a pod.', env: 'SEEDOPS_REQUIRE_CLUSTER' }),
    image: Flags.string({ description: 'The image the CronJobs should run (as given to seedops deploy --image; default: the overlay\'s).' }),
    'report-image': Flags.string({ description: 'The report CronJob\'s image (as seedops deploy --report-image).' }),
    manifests: Flags.string({ description: 'Kustomization dir the cluster was deployed from (default: k8s/overlays/production).' }),
  }

  async run(): Promise<Result> {
    const { flags } = await this.parse(Doctor)
    if (flags['list-checks']) return { checks: listChecks() }
    const options = {
      kube: kubeOptions(flags),
      only: flags.only,
      fix: flags.fix,
      yes: flags.yes,
      requireDb: flags['require-db'],
      requireCluster: flags['require-cluster'],
      databaseUrl: flags['database-url'],
      image: flags.image,
      reportImage: flags['report-image'],
      manifests: flags.manifests,
      junit: flags.junit,
    }
    const r = await executeDoctor(options, {
      logger: this.logger,
      interactive: Boolean(process.stdin.isTTY && process.stderr.isTTY),
      confirm: async (message) => {
        const { confirm } = await import('@inquirer/prompts')
        return confirm({ message, default: false }, { output: process.stderr })
      },
    })
    this.failed = r.summary.fail > 0
    return r
  }

  protected override render(r: Result): void {
    if (!('summary' in r)) {
      process.stdout.write(renderTable(['ID', 'CATEGORY', 'DESCRIPTION'], r.checks.map((c) => [c.id, c.category + (c.slow ? ' (slow)' : ''), c.description])) + '\n')
      return
    }
    process.stdout.write(renderReport(r))
  }
}
