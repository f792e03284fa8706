import { Args, Flags } from '@oclif/core'
import { BaseCommand } from '../../cli/base-command.js'
import { kubeFlags, kubeOptions } from '../../cli/flags.js'
import { connect, parseDuration } from '../../lib/kube/connect.js'
import { deleteJob, jobFailure, triggerJob, waitForJob, type WaitResult } from '../../lib/kube/jobs.js'
import { jobLogs } from '../../lib/kube/logs.js'
import { EXIT, redact, SeedopsError } from '../../lib/errors/index.js'

export interface TriggerResult {
  job: string
  cronjob: string
  namespace: string
  dryRun: boolean
  outcome?: WaitResult
}

export default class JobsTrigger extends BaseCommand {
  static override summary = 'Run a CronJob now as a Job; --wait or --follow for its outcome.'
  static override description = 'Run a CronJob now: create a Job from its template (as `kubectl create job --from=cronjob/…`). With --wait or --follow the exit code is the job\'s outcome: 0 succeeded, 1 failed, timed out or stuck.'
  static override examples = ['<%= config.bin %> jobs trigger calibrate-irt --follow', '<%= config.bin %> jobs trigger compute-kpis --wait --timeout 30m --json']
  static override args = { cronjob: Args.string({ required: true, description: 'CronJob to run.' }) }
  static override flags = {
    ...kubeFlags,
    wait: Flags.boolean({ description: 'Wait for the job to finish.' }),
    follow: Flags.boolean({ char: 'f', description: 'Stream the logs (lines on stdout, `+ pod › container` on stderr); implies --wait.' }),
    timeout: Flags.string({ description: 'Give up waiting after this long (e.g. 30m, 2h).', default: '1h' }),
    name: Flags.string({ description: 'Job name (default <cronjob>-manual-<random>).' }),
    'dry-run': Flags.boolean({ description: 'Let the server validate the Job without creating it.' }),
    'delete-on-interrupt': Flags.boolean({ description: 'On Ctrl-C (SIGINT) or SIGTERM while waiting, delete the Job too (default: stop following, the Job keeps running).' }),
  }

  async run(): Promise<TriggerResult> {
    const { args, flags } = await this.parse(JobsTrigger)
    const k = connect(kubeOptions(flags))
    const timeoutMs = parseDuration(flags.timeout, '--timeout')
    const job = await triggerJob(k, args.cronjob, { name: flags.name, dryRun: flags['dry-run'] })
    const name = job.metadata!.name!
    const result: TriggerResult = { job: name, cronjob: args.cronjob, namespace: k.namespace, dryRun: Boolean(flags['dry-run']) }
    this.logger.info(`job.batch/${name} ${flags['dry-run'] ? 'validated (dry run)' : 'created'} from cronjob/${args.cronjob} in ${k.namespace}`)
    if (flags['dry-run'] || !(flags.wait || flags.follow)) return result
    const stop = new AbortController()
    // Ctrl-C / SIGTERM: stop following and waiting; the Job is the cluster's and keeps running
    // unless --delete-on-interrupt. Exit 130/143.
    let interrupted: 'SIGINT' | 'SIGTERM' | undefined
    const onSignal = (sig: 'SIGINT' | 'SIGTERM') => {
      interrupted ??= sig
      stop.abort()
    }
    const onInt = () => onSignal('SIGINT')
    const onTerm = () => onSignal('SIGTERM')
    process.on('SIGINT', onInt)
    process.on('SIGTERM', onTerm)
    let outcome: WaitResult
    try {
      // A log stream that gives up (after its own resumes) must not decide the exit code, which is the
      // Job's outcome, but it must be said: lines may be missing from what was printed.
      let logFailure: unknown
      const logs = flags.follow
        ? jobLogs(k, name, { line: (t) => !this.jsonMode && process.stdout.write(redact(t) + '\n'), marker: (t) => this.logger.info(t) }, { follow: true, signal: stop.signal }).catch(
            (e: unknown) => {
              if (!stop.signal.aborted) logFailure = e
            },
          )
        : undefined
      outcome = await waitForJob(k, name, { timeoutMs, signal: stop.signal })
      if (!interrupted && (outcome.state === 'succeeded' || outcome.state === 'failed')) await logs
      stop.abort()
      await logs
      if (logFailure !== undefined) {
        const why = logFailure instanceof Error ? logFailure.message : String(logFailure)
        this.logger.warn(`following the logs of job ${name} stopped early (${redact(why)}); lines may be missing above. Read them all with: seedops jobs logs ${name} -n ${k.namespace}`)
      }
    } finally {
      process.off('SIGINT', onInt)
      process.off('SIGTERM', onTerm)
    }
    if (interrupted) {
      const deleted = flags['delete-on-interrupt'] ? await deleteJob(k, name).then(() => true) : false
      throw new SeedopsError(`${interrupted}: stopped following job ${name}; ${deleted ? 'the Job was deleted (--delete-on-interrupt)' : 'the Job keeps running in the cluster'}`, {
        code: 'INTERRUPTED',
        exitCode: interrupted === 'SIGINT' ? EXIT.SIGINT : EXIT.SIGTERM,
        suggestions: deleted ? [] : [`Follow it again: seedops jobs logs ${name} -f -n ${k.namespace}`, `Stop it: kubectl -n ${k.namespace} delete job ${name}`],
      })
    }
    result.outcome = outcome
    if (outcome.state !== 'succeeded') throw jobFailure(outcome, k.namespace)
    this.logger.info(`job ${name} succeeded${outcome.durationSeconds !== undefined ? ` in ${outcome.durationSeconds}s` : ''}`)
    return result
  }

  protected override render(r: TriggerResult): void {
    if (!r.outcome) process.stdout.write(`${r.job}\n`)
  }
}
