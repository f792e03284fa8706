import { podProblems } from '../../kube/jobs.js'
import { kc } from '../cluster-helpers.js'
import { legacyJobFix, legacyRuns } from '../legacy.js'
import { currentPods, jobOfPod, ownerCronJob } from '../snapshot.js'
import type { DoctorCheck, Finding } from '../types.js'

/** Sidecars family: jobs that never complete because a sidecar keeps running. */

export const jobsSidecar: DoctorCheck = {
  id: 'jobs.sidecar',
  group: 'cluster',
  description: 'No job is kept running by a sidecar after its main container finished',
  dependsOn: 'cluster.reachable',
  async run(ctx) {
    const s = await ctx.cluster()
    const ns = ctx.namespace
    const out: Finding[] = []
    const legacy = await legacyRuns(s)
    for (const p of currentPods(s)) {
      for (const pr of podProblems([p]).filter((x) => x.reason === 'SidecarStillRunning')) {
        const job = jobOfPod(s, p)
        const cronjob = job ? ownerCronJob(job) : undefined
        const old = legacy(job)
        if (old && job) {
          out.push({ status: 'warn', subject: job.metadata!.name!, message: `job ${job.metadata!.name} (${old.text}) is still held open: ${pr.message}; a leftover, nothing will run it again`, fix: legacyJobFix(ns, job.metadata!.name!, old) })
          continue
        }
        const image = p.spec?.containers?.find((c) => c.name === pr.container)?.image
        out.push({
          status: 'fail',
          subject: job?.metadata?.name ?? p.metadata!.name,
          message: `job ${job?.metadata?.name ?? '?'}${cronjob ? ` (cronjob ${cronjob})` : ''} never completes: ${pr.message}${image ? ` (sidecar image ${image})` : ''}`,
          fix: [
            `make ${pr.container} a native sidecar: move it to initContainers with restartPolicy: Always (Kubernetes ≥ 1.29), as k8s/overlays/db-proxy does; then seedops deploy -n ${ns}`,
            ...(job ? [`then delete the stuck job: ${kc(ns)} delete job ${job.metadata!.name}`] : []),
          ],
        })
      }
    }
    if (!out.length) out.push({ status: 'ok', message: 'no job held open by a sidecar' })
    return out
  },
}
