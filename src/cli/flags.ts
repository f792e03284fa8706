/**
 * Every oclif flag definition of seedops, in one place: the only module besides commands and the
 * base command that imports @oclif/core. Commands spread these into their `flags` and map the
 * parsed values to the typed option objects that src/lib takes.
 */
import { Flags } from '@oclif/core'
import { DEFAULT_NAMESPACE, type KubeConnectOptions } from '../lib/kube/connect.js'
import type { RunPlan } from '../lib/stages/command.js'
import type { VerifyOptions } from '../lib/verify/command.js'

/** The database every database command talks to. */
export const dbFlags = {
  'database-url': Flags.string({
    description: 'PostgreSQL URL (default: env DATABASE_URL, else the embedded database in SEEDOPS_HOME). Prefer the env var: flag values show in `ps`.',
    helpGroup: 'DATABASE',
  }),
}

/** Flags every `seedops run <stage>` command has. */
export const stageFlags = {
  date: Flags.string({ description: 'As-of date, YYYY-MM-DD in UTC (default: today UTC).', helpGroup: 'STAGE' }),
  'dry-run': Flags.boolean({ description: 'Compute and report, write nothing (the transaction is rolled back).', helpGroup: 'STAGE' }),
  from: Flags.string({ description: 'Recovery: run for each as-of day from this date (YYYY-MM-DD) to --to, in order, one run each.', helpGroup: 'RECOVERY', exclusive: ['date'] }),
  to: Flags.string({ description: 'Last as-of day of a --from range (default: today UTC).', helpGroup: 'RECOVERY', dependsOn: ['from'] }),
  'keep-going': Flags.boolean({ description: 'With --from: go on after a failed day (default: stop there).', helpGroup: 'RECOVERY', dependsOn: ['from'] }),
  'lock-wait': Flags.string({
    description: "When the stage's lock is held by a run whose process is gone (killed; its backend still finishing a statement), wait this long for it: 60s, 2m [env SEEDOPS_<STAGE>_LOCK_WAIT, SEEDOPS_LOCK_WAIT, default 60s]. A live holder is refused at once.",
    helpGroup: 'STAGE',
  }),
  'statement-timeout': Flags.string({ description: "The stage session's statement_timeout: 30s, 10m, 0 for none [env SEEDOPS_<STAGE>_STATEMENT_TIMEOUT, SEEDOPS_STATEMENT_TIMEOUT, default the server's].", helpGroup: 'STAGE' }),
  'lock-timeout': Flags.string({ description: "The stage session's lock_timeout: 10s, 1m, 0 for none [env SEEDOPS_<STAGE>_LOCK_TIMEOUT, SEEDOPS_LOCK_TIMEOUT, default the server's].", helpGroup: 'STAGE' }),
}

/** KPI knobs shared by compute-kpis and detect-inactivity (P and S use the same ones). */
export const kpiFlags = {
  target: Flags.string({ description: 'Default goal θ for P when a user has no interest_goal [env METRICS_DEFAULT_TARGET, default 0.0]. Negative: --target=-0.5.' }),
  bayesian: Flags.boolean({ description: 'Posterior-predictive P (σ² = se² + τ²·h), stores kpis.P_ci and kpis.sigma [env METRICS_USE_BAYESIAN].', allowNo: true }),
  'goal-weeks': Flags.string({ description: 'h, weeks to the goal date for the Bayesian P [env METRICS_GOAL_WEEKS, default 1].' }),
  'churn-horizon-days': Flags.integer({ description: 'H in the churn risk S [env METRICS_CHURN_HORIZON_DAYS, default 14].' }),
}

/** The demo data generator (demo, demo seed). */
export const seedFlags = {
  learners: Flags.integer({ description: 'Learners to generate.', default: 300 }),
  items: Flags.integer({ description: 'Questions in the bank.', default: 160 }),
  days: Flags.integer({ description: 'Days of activity, ending at --date.', default: 60 }),
  seed: Flags.integer({ description: 'Random seed (same seed, same data).', default: 42 }),
}

/** kubectl's connection flags, shared by every cluster command (secrets, schedule, jobs, deploy, doctor, status). */
export const kubeFlags = {
  kubeconfig: Flags.string({ description: 'Path to the kubeconfig file (default: $KUBECONFIG, ~/.kube/config, or the in-cluster service account).', env: 'KUBECONFIG', helpGroup: 'KUBERNETES' }),
  context: Flags.string({ description: 'The kubeconfig context to use (default: its current-context).', env: 'SEEDOPS_KUBE_CONTEXT', helpGroup: 'KUBERNETES' }),
  namespace: Flags.string({ char: 'n', description: `Namespace (default: the in-cluster namespace when run in a pod, else ${DEFAULT_NAMESPACE}).`, env: 'SEEDOPS_NAMESPACE', helpGroup: 'KUBERNETES' }),
  'request-timeout': Flags.string({ description: 'Time to wait for one API request: 30s, 1m, 500ms; 0 for no limit.', default: '30s', helpGroup: 'KUBERNETES' }),
}

/** The connection options of kubeFlags. */
export function kubeOptions(flags: { kubeconfig?: string; context?: string; namespace?: string; 'request-timeout'?: string }): KubeConnectOptions {
  return { kubeconfig: flags.kubeconfig, context: flags.context, namespace: flags.namespace, requestTimeout: flags['request-timeout'] }
}

/** The `seedops verify <group>` flags. */
export const verifyFlags = {
  date: Flags.string({ description: 'As-of date YYYY-MM-DD (UTC) for window checks (default: the as-of of the last successful run of the stage, else today).' }),
  junit: Flags.string({ description: 'Also write a JUnit XML report to this file (for CI).' }),
  'max-age-hours': Flags.integer({ description: "Freshness: the last successful run must be younger than this (default: from the stage's CronJob schedule, the interval between fires plus a grace: daily 26 h, weekly 192 h).", min: 0 }),
  days: Flags.integer({ description: 'Window length in days for coverage and range checks.', default: 7, min: 1, max: 366 }),
}

/** The verify options of dbFlags and verifyFlags. */
export function verifyOptions(flags: { 'database-url'?: string; date?: string; junit?: string; 'max-age-hours'?: number; days: number }): VerifyOptions {
  return { databaseUrl: flags['database-url'], date: flags.date, junit: flags.junit, maxAgeHours: flags['max-age-hours'], days: flags.days }
}

/** The run plan of a `run <stage>` command (days, dry run, database) from its dbFlags and stageFlags. */
export function runPlan(flags: { 'database-url'?: string; date?: string; from?: string; to?: string; 'keep-going'?: boolean; 'dry-run'?: boolean; 'lock-wait'?: string; 'statement-timeout'?: string; 'lock-timeout'?: string }): RunPlan {
  return {
    databaseUrl: flags['database-url'],
    date: flags.date,
    from: flags.from,
    to: flags.to,
    keepGoing: flags['keep-going'],
    dryRun: flags['dry-run'],
    runnerOptions: { lockWait: flags['lock-wait'], statementTimeout: flags['statement-timeout'], lockTimeout: flags['lock-timeout'] },
  }
}

/** compute-kpis' and detect-inactivity's P and S options from kpiFlags. */
export function kpiOptions(flags: { target?: string; bayesian?: boolean; 'goal-weeks'?: string; 'churn-horizon-days'?: number; user?: string[] }) {
  return { target: flags.target, bayesian: flags.bayesian, horizonWeeks: flags['goal-weeks'], churnHorizonDays: flags['churn-horizon-days'], users: flags.user }
}
