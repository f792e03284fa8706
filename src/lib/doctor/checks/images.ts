import type { V1Pod } from '@kubernetes/client-node'
import { redact } from '../../errors/index.js'
import { kc } from '../cluster-helpers.js'
import { legacyJobFix, legacyRuns } from '../legacy.js'
import { currentPods, jobOfPod, ownerCronJob } from '../snapshot.js'
import type { DoctorCheck, Finding } from '../types.js'
import { wantedImage } from './cronjob-spec.js'

/** Images family: pods that cannot pull their image, why (not found vs unauthorized), and the images that do run here. */

/**
 * Why a pull fails, from what containerd and the kubelet write (the event, and since 1.32 the
 * back-off message too). Docker Hub answers a missing repository and a private one alike ("pull
 * access denied, repository does not exist or may require authorization"): that is both.
 */
export type PullCause = 'unauthorized' | 'not-found' | 'not-found-or-unauthorized' | 'unknown'
export function pullCause(text: string): PullCause {
  if (/pull access denied|repository does not exist or may require|requested access to the resource is denied/i.test(text)) return 'not-found-or-unauthorized'
  if (/\b401\b|unauthorized|authorization failed|no basic auth credentials|\b403\b|forbidden|denied/i.test(text)) return 'unauthorized'
  if (/not found|manifest unknown|NotFound|does not exist|name unknown/i.test(text)) return 'not-found'
  return 'unknown'
}

/** Images that did start in the namespace (running or ran), the candidates for a failing one. */
function runningImages(pods: V1Pod[]): string[] {
  const out = new Set<string>()
  for (const p of pods) {
    const spec = new Map([...(p.spec?.containers ?? []), ...(p.spec?.initContainers ?? [])].map((c) => [c.name, c.image]))
    for (const st of [...(p.status?.containerStatuses ?? []), ...(p.status?.initContainerStatuses ?? [])]) {
      if (st.state?.running || st.state?.terminated || st.lastState?.terminated) {
        const img = spec.get(st.name) ?? st.image
        if (img) out.add(img)
      }
    }
  }
  return [...out].sort()
}

const registryOf = (image: string) => {
  const first = image.split('/')[0]
  return image.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost') ? first : 'docker.io'
}

export const podsImagePull: DoctorCheck = {
  id: 'pods.image-pull',
  group: 'cluster',
  description: 'No pod is stuck in ImagePullBackOff/ErrImagePull (image not found vs unauthorized)',
  dependsOn: 'cluster.reachable',
  async run(ctx) {
    const s = await ctx.cluster()
    const ns = ctx.namespace
    const pods = currentPods(s)
    const candidatesAll = runningImages(s.pods)
    const legacy = await legacyRuns(s)
    const out: Finding[] = []
    for (const p of pods) {
      const spec = [...(p.spec?.containers ?? []), ...(p.spec?.initContainers ?? [])]
      for (const st of [...(p.status?.containerStatuses ?? []), ...(p.status?.initContainerStatuses ?? [])]) {
        const w = st.state?.waiting
        if (!w || !['ImagePullBackOff', 'ErrImagePull', 'InvalidImageName'].includes(w.reason ?? '')) continue
        const image = spec.find((c) => c.name === st.name)?.image ?? st.image ?? '?'
        const podName = p.metadata!.name!
        const evs = (await s.events()).filter((ev) => ev.involvedObject?.name === podName && ev.reason === 'Failed' && /pull/i.test(ev.message ?? ''))
        const evidence = [w.message ?? '', ...evs.map((ev) => ev.message ?? '')].join('\n')
        const cause = w.reason === 'InvalidImageName' ? 'invalid' : pullCause(evidence)
        const job = jobOfPod(s, p)
        const cronjob = job ? ownerCronJob(job) : undefined
        const old = legacy(job)
        if (old && job) {
          // Nothing will run that image again; the pod only holds its reservation until the job goes.
          out.push({ status: 'warn', subject: podName, message: `pod ${podName} (${old.text}) is still trying to pull ${image} [${w.reason}]: a leftover, nothing will run it again`, fix: legacyJobFix(ns, job.metadata!.name!, old) })
          continue
        }
        const expected = ctx.expected.find((e) => e.name === cronjob)
        const liveCj = s.cronjobs.find((c) => c.metadata?.name === cronjob)
        const want = expected && liveCj ? wantedImage(ctx, expected, liveCj) : undefined
        const candidates = candidatesAll.filter((i) => i !== image)
        const why =
          cause === 'unauthorized'
            ? `the registry ${registryOf(image)} refused the pull (unauthorized)`
            : cause === 'not-found'
              ? 'the image does not exist (not found)'
              : cause === 'not-found-or-unauthorized'
                ? `not found or unauthorized: ${registryOf(image)} says the same for a repository that does not exist and one that needs credentials`
                : cause === 'invalid'
                  ? 'the image name is invalid'
                  : 'the pull fails'
        const lastEvent = evs.at(-1)?.message ?? w.message
        const details = [...(lastEvent ? [`kubelet: ${redact(lastEvent)}`] : []), `images running in ${ns}: ${candidates.length ? candidates.join(', ') : '(none)'}`]
        const fix: string[] = []
        let safeFix: Finding['safeFix']
        const target = cronjob ? `cronjob/${cronjob}` : job ? `job/${job.metadata!.name}` : `pod/${podName}`
        const sa = p.spec?.serviceAccountName ?? 'default'
        if (cause === 'not-found-or-unauthorized') {
          const cand = want && want.image !== image ? want.image : (candidates.find((c) => c.split(':')[0] === image.split(':')[0]) ?? candidates[0])
          fix.push(
            cand ? `if the image name is wrong: ${kc(ns)} set image ${target} ${st.name}=${cand}` : `if the image name is wrong: seedops deploy -n ${ns} --image <registry>/seedops:<tag>`,
            `if the repository is private: ${kc(ns)} create secret docker-registry regcred --docker-server=${registryOf(image)} --docker-username=<user> --docker-password=<token>`,
            `  and: ${kc(ns)} patch serviceaccount ${sa} -p '{"imagePullSecrets":[{"name":"regcred"}]}'`,
          )
        } else if (cause === 'unauthorized') {
          fix.push(
            `${kc(ns)} create secret docker-registry regcred --docker-server=${registryOf(image)} --docker-username=<user> --docker-password=<token>`,
            `${kc(ns)} patch serviceaccount ${sa} -p '{"imagePullSecrets":[{"name":"regcred"}]}'`,
          )
        } else if (want && want.image !== image) {
          fix.push(`${kc(ns)} set image ${target} ${st.name}=${want.image}`)
          safeFix = { kind: 'set-image', cronjob: cronjob!, container: st.name, image: want.image, source: want.source }
        } else {
          const cand = candidates.find((c) => c.split(':')[0] === image.split(':')[0]) ?? candidates[0]
          fix.push(cand ? `${kc(ns)} set image ${target} ${st.name}=${cand}` : `push ${image}, or pin an existing tag: seedops deploy -n ${ns} --image <registry>/seedops:<tag>`)
          if (cand && cronjob) fix.push(`or pin it for every CronJob: seedops deploy -n ${ns} --image ${cand}`)
        }
        if (job) fix.push(`then clear the stuck job: ${kc(ns)} delete job ${job.metadata!.name}`)
        out.push({ status: 'fail', subject: podName, message: `pod ${podName}${cronjob ? ` (cronjob ${cronjob})` : ''} cannot pull ${image}: ${why} [${w.reason}]`, details, fix, safeFix })
      }
    }
    if (!out.length) out.push({ status: 'ok', message: `no image pull errors in ${pods.length} current pods` })
    return out
  },
}
