import type { V1ConfigMap, V1CronJob, CoreV1Event, V1Deployment, V1Job, V1NetworkPolicy, V1Pod, V1Secret, V1Service } from '@kubernetes/client-node'
import type { KubeClients } from '../kube/client.js'
import type { ExpectedCronJob } from '../kube/expected.js'
import type { Db } from '../db/index.js'
import type { AdoptionRecord } from '../adopt/record.js'
import { CheckSkipped, type Check, type CheckReport, type CheckResult, type CheckStatus, type Outcome } from '../checks/index.js'

/**
 * `seedops doctor`: a registry of named checks (brew/flutter doctor, popeye, `sf doctor`) on the
 * common check model (lib/checks). A check returns one or more results; each is ok/warn/fail
 * with the cause and the exact commands that fix it, and, when the fix is safe to apply
 * unattended, a `SafeFix` for `--fix`.
 */
export type DoctorStatus = Exclude<CheckStatus, 'skip'>

export type Category = 'cluster' | 'database' | 'storage' | 'irt'

/** Fixes `--fix` may apply: they only add what is missing or undo drift from k8s/. */
export type SafeFix =
  | { kind: 'ensure-secret'; only: 'db' | 'irt' | 's3' | 'report-config'; object: string; missingKeys?: string[] }
  | { kind: 'delete-cronjob'; name: string; duplicateOf: string }
  | { kind: 'set-image'; cronjob: string; container: string; image: string; source: 'deployed' | 'flag' }

/** What a doctor check returns: a verdict with its subject, details and fix (the common outcome). */
export type Finding = Outcome<SafeFix> & { status: DoctorStatus }

/** One line of the report: the check's id and category (group), the verdict, or a skip with its reason. */
export type CheckFinding = CheckResult<SafeFix>

export interface ClusterSnapshot {
  k: KubeClients
  cronjobs: V1CronJob[]
  jobs: V1Job[]
  pods: V1Pod[]
  events(): Promise<CoreV1Event[]>
  /** Read on demand (the IRT service check); each may throw KUBE_FORBIDDEN. */
  deployments(): Promise<V1Deployment[]>
  services(): Promise<V1Service[]>
  networkPolicies(): Promise<V1NetworkPolicy[]>
  /** The server's version (GET /version), e.g. { major: 1, minor: 28 }; undefined when unreadable. */
  serverVersion(): Promise<{ major: number; minor: number; gitVersion: string } | undefined>
  /** GET by name (the doctor Role may read only the named objects); undefined when absent. */
  object(kind: 'Secret' | 'ConfigMap', name: string): Promise<V1Secret | V1ConfigMap | undefined>
  /** What `seedops adopt` recorded (ConfigMap seedops-adoption); undefined when absent or not readable. */
  adoption(): Promise<AdoptionRecord | undefined>
}

export interface DoctorContext {
  namespace: string
  env: NodeJS.ProcessEnv
  expected: ExpectedCronJob[]
  /** Connects (once) and reads the namespace's workloads; throws the translated error when unreachable. */
  cluster(): Promise<ClusterSnapshot>
  /** The snapshot when cluster() was already called in this run (its result or error), else undefined. */
  clusterIfRead(): Promise<ClusterSnapshot | undefined>
  /** The database (once), or undefined when none is configured. Throws when it cannot be opened. */
  db(): Promise<Db | undefined>
  /** What `db()` would open, for messages ("postgres://…", "embedded (…)"), or undefined. */
  dbTarget?: string
  requireDb: boolean
  /** --require-cluster: no kubeconfig is a failure, not a reason to skip the cluster checks. */
  requireCluster: boolean
  /** The images `--image`/`--report-image` name explicitly (the only ones --fix may set besides the deployed ones). */
  explicitImages: boolean
  now: Date
}

export { CheckSkipped }

export interface DoctorCheck extends Check<DoctorContext, SafeFix> {
  group: Category
  run(ctx: DoctorContext): Promise<Finding[]>
}

export interface FixOutcome {
  fix: SafeFix
  ok: boolean
  message: string
  /** Set when the SelfSubjectAccessReview said no: the permissions missing (the call was not attempted). */
  missing?: { verb: string; resource: string; name?: string; canI: string }[]
}

/** `doctor --json`: the common check report (results ordered failures first, skips last) for the namespace. */
export interface DoctorReport extends CheckReport<SafeFix> {
  namespace: string
  /** With --fix: what was applied (the results are then those of the run after the fixes). */
  fixes?: FixOutcome[]
}
