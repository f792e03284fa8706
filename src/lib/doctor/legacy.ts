import type { V1Job } from '@kubernetes/client-node'
import { isSeedopsContainer } from '../kube/manifests.js'
import type { AdoptionRecord } from '../adopt/record.js'
import { isSeedopsCronJob } from './cluster-helpers.js'
import { ownerCronJob } from './snapshot.js'
import type { ClusterSnapshot } from './types.js'

/**
 * Runs of the predecessor that no longer matter as failures: jobs of a legacy CronJob that is
 * suspended (by `seedops adopt` or before it), and jobs a legacy CronJob started before adopt
 * replaced it in place with seedops' own. Their failures are history; their pods that still hold a
 * node (a sidecar, a pull back-off) are worth a warning, not a failure.
 */
export interface LegacyRun {
  cronjob: string
  /** The CronJob is still the predecessor's (suspended); false when seedops' replaced it in place. */
  suspended: boolean
  /** "legacy CronJob mirt-calibrate, suspended by seedops adopt on 2026-05-04" */
  text: string
}

const day = (iso: string) => iso.slice(0, 10)

/** How the adoption record (when readable) describes a legacy CronJob's suspension. */
export function suspensionText(name: string, record: AdoptionRecord | undefined): string {
  const r = record?.legacyCronJobs.find((l) => l.name === name)
  if (r?.suspendedByAdopt) return `suspended by seedops adopt on ${day(record!.adoptedAt)}`
  if (r) return `suspended before seedops adopt on ${day(record!.adoptedAt)}, which recorded it`
  return 'suspended'
}

/** A function telling, for a Job, whether it is such a legacy run (and how to say so). */
export async function legacyRuns(s: ClusterSnapshot): Promise<(job: V1Job | undefined) => LegacyRun | undefined> {
  const record = await s.adoption()
  return (job) => {
    const name = job ? ownerCronJob(job) : undefined
    const cj = name ? s.cronjobs.find((c) => c.metadata?.name === name) : undefined
    if (!job || !name || !cj) return undefined
    if (!isSeedopsCronJob(cj)) return cj.spec?.suspend ? { cronjob: name, suspended: true, text: `legacy CronJob ${name}, ${suspensionText(name, record)}` } : undefined
    // seedops' CronJob now, but this job ran the template it had before (the predecessor's, same name).
    const ran = job.spec?.template?.spec?.containers ?? []
    if (ran.some((c) => isSeedopsContainer(c))) return undefined
    const replaced = record?.replaced.find((r) => r.name === name)
    return { cronjob: name, suspended: false, text: `a run of the predecessor's ${name}, ${replaced ? `replaced by seedops adopt on ${day(record!.adoptedAt)}` : "since replaced by seedops' own"}` }
  }
}

/** The fix for a legacy run's leftover job: delete it now, or let --prune-legacy take it with its CronJob (deleted with propagation). */
export const legacyJobFix = (ns: string, job: string, l: LegacyRun) => [
  `kubectl -n ${ns} delete job ${job}`,
  ...(l.suspended ? [`or leave it: seedops adopt --prune-legacy -n ${ns} deletes the legacy CronJobs, and their jobs with them, once each stage has run`] : []),
]
