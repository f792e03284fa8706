import type { V1ConfigMap, V1CronJob, CoreV1Event, V1Deployment, V1Job, V1NetworkPolicy, V1Pod, V1Secret, V1Service } from '@kubernetes/client-node'
import type { KubeClients } from '../kube/client.js'
import type { ExpectedCronJob } from '../kube/expected.js'
import type { Db } from '../db/index.js'
import type { AdoptionRecord } from '../adopt/record.js'

/**
 * `seedops doctor`: a registry of named checks (brew/flutter doctor, popeye, `sf doctor`). A
 * check returns one or more findings; each finding is ok/warn/fail with the cause and the exact
 * commands that fix it, and, when the fix is safe to apply unattended, a `SafeFix` for `--fix`.
 */
export type DoctorStatus = 'ok' | 'warn' | 'fail'

export type Category = 'cluster' | 'database' | 'storage' | 'irt'

/** Fixes `--fix` may apply: they only add what is missing or undo drift from k8s/. */
export type SafeFix =
  | { kind: 'ensure-secret'; only: 'db' | 'irt' | 's3' | 'report-config'; object: string; missingKeys?: string[] }
  | { kind: 'delete-cronjob'; name: string; duplicateOf: string }
  | { kind: 'set-image'; cronjob: string; container: string; image: string; source: 'deployed' | 'flag' }

export interface Finding {
  status: DoctorStatus
  /** What the finding is about (a CronJob, a pod, a stage, a secret), when not the whole check. */
  subject?: string
  /** The cause, one line. */
  message: string
  /** Supporting lines (log lines, candidate images), already safe to print. */
  details?: string[]
  /** Commands (or steps) that fix it, most direct first. */
  fix?: string[]
  safeFix?: SafeFix
}

export interface CheckFinding extends Finding {
  check: string
  category: Category
}

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

/** Thrown by a check that cannot run here (no cluster configured): listed as skipped, with the reason. */
export class CheckSkipped extends Error {
  constructor(
    readonly reason: string,
    /** What the checks depending on this one are told. */
    readonly dependentsReason = reason,
  ) {
    super(reason)
  }
}

export interface DoctorCheck {
  id: string
  category: Category
  description: string
  /** Network round trips outside the cluster, or many reads: run after the fast checks. */
  slow?: boolean
  /** Skipped (not failed) when this check of the same run failed. */
  dependsOn?: string
  run(ctx: DoctorContext): Promise<Finding[]>
}

export interface SkippedCheck {
  check: string
  reason: string
}

export interface FixOutcome {
  fix: SafeFix
  ok: boolean
  message: string
  /** Set when the SelfSubjectAccessReview said no: the permissions missing (the call was not attempted). */
  missing?: { verb: string; resource: string; name?: string; canI: string }[]
}

export interface DoctorReport {
  namespace: string
  findings: CheckFinding[]
  skipped: SkippedCheck[]
  summary: { fail: number; warn: number; ok: number; skipped: number; checks: number; failedChecks: string[]; warnedChecks: string[] }
  /** With --fix: what was applied (the findings are then those of the run after the fixes). */
  fixes?: FixOutcome[]
}
