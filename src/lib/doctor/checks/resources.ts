import { kc } from '../cluster-helpers.js'
import { legacyRuns } from '../legacy.js'
import { currentPods, jobOfPod, ownerCronJob } from '../snapshot.js'
import type { DoctorCheck, Finding } from '../types.js'

/** Resources family: OOMKilled containers, their memory limit and the one to set. */

const UNITS: Record<string, number> = { '': 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, Ti: 1024 ** 4 }

/** Kubernetes memory quantity → bytes (`512Mi`, `2Gi`, `1G`, `1e9`). */
export function parseMemory(q: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?(?:e\d+)?)([KMGT]i?|k)?$/.exec(q.trim())
  if (!m) return undefined
  return Number(m[1]) * (UNITS[m[2] ?? ''] ?? 1)
}

/** Double the limit, in Mi/Gi: 2Gi → 4Gi, 768Mi → 1536Mi. */
export function suggestMemory(limit: string | undefined): string {
  const b = limit ? parseMemory(limit) : undefined
  if (!b) return '1Gi'
  const mi = Math.ceil((b * 2) / 1024 ** 2)
  return mi % 1024 === 0 ? `${mi / 1024}Gi` : `${mi}Mi`
}

export const podsOomKilled: DoctorCheck = {
  id: 'pods.oomkilled',
  group: 'cluster',
  description: 'No container of a recent job was OOMKilled',
  dependsOn: 'cluster.reachable',
  async run(ctx) {
    const s = await ctx.cluster()
    const ns = ctx.namespace
    const out: Finding[] = []
    const seen = new Set<string>()
    const legacy = await legacyRuns(s)
    const history: string[] = []
    for (const p of currentPods(s)) {
      for (const st of p.status?.containerStatuses ?? []) {
        const t = st.state?.terminated?.reason === 'OOMKilled' ? st.state.terminated : st.lastState?.terminated?.reason === 'OOMKilled' ? st.lastState.terminated : undefined
        if (!t) continue
        const job = jobOfPod(s, p)
        const cronjob = job ? ownerCronJob(job) : undefined
        // A suspended or replaced legacy CronJob will not run that container again: history, not a limit to raise.
        if (legacy(job)) {
          history.push(`${p.metadata!.name} (${legacy(job)!.text})`)
          continue
        }
        const key = `${cronjob ?? job?.metadata?.name ?? p.metadata!.name}/${st.name}`
        if (seen.has(key)) continue
        seen.add(key)
        const containers = p.spec?.containers ?? []
        const idx = containers.findIndex((c) => c.name === st.name)
        const limit = containers[idx]?.resources?.limits?.memory
        const next = suggestMemory(limit)
        const path = `/spec/jobTemplate/spec/template/spec/containers/${idx}/resources/limits/memory`
        out.push({
          status: 'fail',
          subject: cronjob ?? p.metadata!.name,
          message: `container ${st.name} of ${cronjob ? `cronjob ${cronjob}` : `pod ${p.metadata!.name}`} was OOMKilled (exit ${t.exitCode}); memory limit ${limit ?? 'none'}, suggest ${next}`,
          details: [`pod ${p.metadata!.name}`],
          fix: cronjob
            ? [
                `${kc(ns)} patch cronjob ${cronjob} --type=json -p '[{"op":"${limit ? 'replace' : 'add'}","path":"${path}","value":"${next}"}]'`,
                `and set resources.limits.memory: ${next} in k8s/base/cronjob-${cronjob}.yaml so the next seedops deploy keeps it`,
              ]
            : [`raise resources.limits.memory of container ${st.name} to ${next}`],
        })
      }
    }
    if (!out.length) out.push({ status: 'ok', message: `no OOMKilled containers in the latest jobs${history.length ? ` (not counted: ${history.join('; ')})` : ''}` })
    return out
  },
}
