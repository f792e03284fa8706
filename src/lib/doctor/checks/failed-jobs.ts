import { jobState, podProblems } from '../../kube/jobs.js'
import { lastLogLines, someAsync } from '../cluster-helpers.js'
import { legacyRuns } from '../legacy.js'
import { jobOfPod, latestJobs, ownerCronJob } from '../snapshot.js'
import type { DoctorCheck, Finding } from '../types.js'
import { missingModule } from './module-path.js'

/** Failed jobs family: the latest job of each CronJob failed, with its reason, exit code and last log lines. */

export const jobsFailed: DoctorCheck = {
  id: 'jobs.failed',
  group: 'cluster',
  description: "The latest job of each CronJob did not fail (with its last log lines)",
  dependsOn: 'cluster.reachable',
  async run(ctx) {
    const s = await ctx.cluster()
    const ns = ctx.namespace
    const out: Finding[] = []
    const latest = latestJobs(s)
    const legacy = await legacyRuns(s)
    const notCounted: string[] = []
    for (const j of latest.filter((x) => jobState(x) === 'failed')) {
      const name = j.metadata!.name!
      const cronjob = ownerCronJob(j)
      const old = legacy(j)
      if (old) {
        notCounted.push(`${name} (${old.text})`)
        continue
      }
      const cond = j.status?.conditions?.find((c) => c.type === 'Failed' && c.status === 'True')
      const pods = s.pods.filter((p) => jobOfPod(s, p) === j).sort((a, b) => String(a.metadata?.creationTimestamp).localeCompare(String(b.metadata?.creationTimestamp)) || a.metadata!.name!.localeCompare(b.metadata!.name!))
      const last = pods.at(-1)
      const main = last?.spec?.containers?.[0]?.name
      const probs = last ? podProblems([last]) : []
      const exit = probs.find((x) => x.exitCode !== undefined)
      const lines = last && main ? await lastLogLines(s, last.metadata!.name!, main, 5) : []
      // A missing module is jobs.module-path's finding (with the fix); saying "failed" again adds nothing.
      if (await someAsync(pods, (p) => missingModule(s, p))) {
        notCounted.push(`${name} (module path mismatch, see jobs.module-path)`)
        continue
      }
      out.push({
        status: 'fail',
        subject: name,
        message: `job ${name}${cronjob ? ` (cronjob ${cronjob})` : ''} failed${cond?.reason ? ` (${cond.reason})` : ''}${exit ? `: ${exit.container} ${exit.reason === 'OOMKilled' ? 'was OOMKilled' : `exited ${exit.exitCode}`}` : ''}`,
        details: lines.length ? lines.map((l) => `| ${l}`) : ['(no log lines)'],
        fix: [`seedops jobs logs ${name} -n ${ns}`, ...(cronjob ? [`after fixing the cause: seedops jobs trigger ${cronjob} -n ${ns} --wait`] : [])],
      })
    }
    if (!out.length) out.push({ status: 'ok', message: `no failed job among the latest ${latest.length}${notCounted.length ? ` (not counted: ${notCounted.join('; ')})` : ''}` })
    return out
  },
}
