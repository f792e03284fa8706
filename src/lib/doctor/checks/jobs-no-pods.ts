import type { CoreV1Event } from '@kubernetes/client-node'
import { redact } from '../../errors/index.js'
import { jobState } from '../../kube/jobs.js'
import { adoptFix, kc } from '../cluster-helpers.js'
import { legacyRuns } from '../legacy.js'
import { latestJobs, ownerCronJob, ownerJob } from '../snapshot.js'
import type { DoctorCheck, Finding } from '../types.js'
import { isSeedopsCronJobName } from './module-path.js'

/** Jobs without pods family: FailedCreate by quota, Pod Security or a missing ServiceAccount. */

/** The job controller's FailedCreate message, classified. */
export function failedCreateCause(msg: string): { kind: 'quota' | 'pod-security' | 'service-account' | 'other'; detail: string } {
  let m = /exceeded quota: ([\w.-]+)/.exec(msg)
  if (m) return { kind: 'quota', detail: m[1] }
  m = /violates PodSecurity "([^"]+)": (.*)$/.exec(msg)
  if (m) return { kind: 'pod-security', detail: `${m[1]}: ${m[2]}` }
  m = /serviceaccount "([^"]+)" not found/.exec(msg)
  if (m) return { kind: 'service-account', detail: m[1] }
  return { kind: 'other', detail: msg }
}

export const jobsNotCreated: DoctorCheck = {
  id: 'jobs.no-pods',
  group: 'cluster',
  description: 'Every running job got its pods (no FailedCreate: quota, Pod Security, missing ServiceAccount)',
  dependsOn: 'cluster.reachable',
  async run(ctx) {
    const s = await ctx.cluster()
    const ns = ctx.namespace
    const out: Finding[] = []
    const legacy = await legacyRuns(s)
    const podless = latestJobs(s).filter((j) => jobState(j) !== 'succeeded' && !legacy(j) && !s.pods.some((p) => ownerJob(p) === j.metadata!.name))
    const events = podless.length ? await s.events().catch(() => [] as CoreV1Event[]) : []
    for (const j of podless) {
      const name = j.metadata!.name!
      const ev = events.filter((e) => e.involvedObject?.kind === 'Job' && e.involvedObject.name === name && e.reason === 'FailedCreate').at(-1)
      if (!ev) continue
      const cronjob = ownerCronJob(j)
      const msg = redact(ev.message ?? '')
      const c = failedCreateCause(msg)
      const target = cronjob ? `cronjob ${cronjob}` : `job ${name}`
      const fix =
        c.kind === 'quota'
          ? [`${kc(ns)} describe resourcequota ${c.detail}`, `lower the requests/limits of ${target}, or raise the quota ${c.detail}`]
          : c.kind === 'pod-security'
            ? [`make ${target}'s pod meet the namespace's Pod Security level (${c.detail.split(': ')[0]}): set what the message lists in its securityContext (seedops' own CronJobs do: seedops deploy -n ${ns})`, `${kc(ns)} get namespace ${ns} --show-labels   # pod-security.kubernetes.io/enforce`]
            : c.kind === 'service-account'
              ? [c.detail === 'seedops-runner' ? `seedops deploy -n ${ns}   # creates the ServiceAccount seedops-runner` : `${kc(ns)} create serviceaccount ${c.detail}`, ...(cronjob && !isSeedopsCronJobName(s, cronjob) ? adoptFix(ns).slice(0, 1).map((x) => `or replace the legacy CronJob: ${x}`) : [])]
              : [`${kc(ns)} describe job ${name}`]
      const label = { quota: 'a ResourceQuota is exceeded', 'pod-security': 'Pod Security rejects the pod', 'service-account': `its ServiceAccount ${c.detail} does not exist`, other: 'the job controller cannot create it' }[c.kind]
      out.push({ status: 'fail', subject: name, message: `job ${name}${cronjob ? ` (cronjob ${cronjob})` : ''} never got a pod: ${label}`, details: [`job-controller: ${msg}`], fix })
    }
    if (!out.length) out.push({ status: 'ok', message: 'every running job has its pods' })
    return out
  },
}
