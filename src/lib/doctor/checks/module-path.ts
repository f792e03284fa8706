import type { V1Container, V1ContainerStatus, V1CronJob, V1Pod } from '@kubernetes/client-node'
import { redact } from '../../errors/index.js'
import { adoptFix, commandOf, isSeedopsCronJob, lastLogLines, legacyEntrypoint, stageOf } from '../cluster-helpers.js'
import { legacyRuns } from '../legacy.js'
import { jobOfPod, latestJobs, ownerCronJob } from '../snapshot.js'
import type { ClusterSnapshot, DoctorCheck, Finding } from '../types.js'

/** Module path family: a legacy command or Python module that is not in the image. */

export function isSeedopsCronJobName(s: ClusterSnapshot, name: string): boolean {
  const cj = s.cronjobs.find((c) => c.metadata?.name === name)
  return cj ? isSeedopsCronJob(cj) : false
}

/** What the runtime or Python says when a command or module is not in the image. */
export function missingEntrypoint(text: string): string | undefined {
  const m =
    /exec: "([^"]+)": (?:executable file not found in \$PATH|stat [^:]+: no such file or directory|no such file or directory)/.exec(text) ??
    /No module named '([^']+)'/.exec(text) ??
    /can't open file '([^']+)': \[Errno 2\] No such file or directory/.exec(text) ??
    /(\S+): No such file or directory/.exec(text)
  return m?.[0]
}

export const jobsModulePath: DoctorCheck = {
  id: 'jobs.module-path',
  group: 'cluster',
  description: "No job's command or Python module is missing from its image (StartError, ModuleNotFoundError)",
  dependsOn: 'cluster.reachable',
  async run(ctx) {
    const s = await ctx.cluster()
    const ns = ctx.namespace
    const out: Finding[] = []
    const stages = ctx.expected.map((e) => e.stage)
    const seen = new Set<string>()
    // A suspended or replaced legacy CronJob will not run that command again (adopt's fix is already applied).
    const legacy = await legacyRuns(s)
    for (const j of latestJobs(s)) {
      const cronjob = ownerCronJob(j)
      const key = cronjob ?? j.metadata!.name!
      if (seen.has(key)) continue
      if (legacy(j)) continue
      const pods = s.pods.filter((p) => jobOfPod(s, p) === j)
      for (const p of pods) {
        const found = await missingModule(s, p)
        if (!found) continue
        const { c0, t, evidence } = found
        seen.add(key)
        const live: V1CronJob | undefined = cronjob ? s.cronjobs.find((c) => c.metadata?.name === cronjob) : undefined
        const stage = live ? stageOf(live, stages) : undefined
        const cmd = commandOf(c0)
        const entry = legacyEntrypoint(cmd) ?? cmd.filter((x) => !['/bin/sh', '-c', 'sh', 'bash'].includes(x)).join(' ').split('\n').find((l) => l.trim())?.trim() ?? '(image default)'
        out.push({
          status: 'fail',
          subject: key,
          message: `${cronjob ? `CronJob ${cronjob}` : `job ${j.metadata!.name}`}: module path mismatch: ${entry} is not in image ${c0.image} (${redact(evidence)}, exit ${t.exitCode}${t.reason && t.reason !== 'Error' ? ` ${t.reason}` : ''})`,
          details: [`pod ${p.metadata!.name}`],
          fix: stage
            ? [...adoptFix(ns).map((x, i) => (i === 1 ? `${x.split('   #')[0]}   # replaces it with \`seedops run ${stage}\`` : x))]
            : [`fix the command of ${cronjob ? `cronjob ${cronjob}` : `job ${j.metadata!.name}`} to a module the image has (list them: kubectl -n ${ns} debug … python3 -c 'help("modules")')`],
        })
        break
      }
    }
    if (!out.length) out.push({ status: 'ok', message: 'no job failed for a missing command or module' })
    return out
  },
}

/** The main container of a pod that exited because its command or module is not in the image, with the runtime's or Python's words. */
export async function missingModule(s: ClusterSnapshot, p: V1Pod): Promise<{ c0: V1Container; t: NonNullable<ReturnType<typeof terminated>>; evidence: string } | undefined> {
  const c0 = p.spec?.containers?.[0]
  const st = p.status?.containerStatuses?.find((x) => x.name === c0?.name)
  const t = terminated(st)
  if (!c0 || !t || t.exitCode === 0) return undefined
  let evidence = t.reason === 'StartError' || t.reason === 'ContainerCannotRun' ? missingEntrypoint(t.message ?? '') : undefined
  if (!evidence) evidence = missingEntrypoint((await lastLogLines(s, p.metadata!.name!, c0.name, 10)).join('\n'))
  return evidence ? { c0, t, evidence } : undefined
}

function terminated(st: V1ContainerStatus | undefined) {
  return st?.state?.terminated ?? st?.lastState?.terminated
}
