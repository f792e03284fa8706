import type { V1Container, V1CronJob, V1Pod } from '@kubernetes/client-node'
import { redact, SeedopsError } from '../errors/index.js'
import { refsOf, type ExpectedCronJob } from '../kube/expected.js'
import { DEPLOYED_IMAGE_ANNOTATION } from '../kube/deploy.js'
import { jobState, podProblems } from '../kube/jobs.js'
import { isSeedopsContainer, type KubeObject } from '../kube/manifests.js'
import { SECRET_SPECS } from '../kube/secrets.js'
import { currentPods, jobOfPod, latestJobs, ownerCronJob, readNamespace } from './snapshot.js'
import { legacyJobFix, legacyRuns, suspensionText } from './legacy.js'
import { keyAliases, PREDECESSOR_SECRETS } from '../adopt/mapping.js'
import { missingModule } from './workload-checks.js'
import { CheckSkipped, type ClusterSnapshot, type DoctorCheck, type DoctorContext, type Finding } from './types.js'

export const kc = (ns: string) => `kubectl -n ${ns}`

export function mainContainer(cj: V1CronJob): { c: V1Container; index: number } | undefined {
  const cs = cj.spec?.jobTemplate?.spec?.template?.spec?.containers ?? []
  const index = Math.max(0, cs.findIndex((c) => isSeedopsContainer(c)))
  return cs[index] ? { c: cs[index], index } : undefined
}

export const commandOf = (c?: V1Container) => [...(c?.command ?? []), ...(c?.args ?? [])]

/**
 * The predecessor's words for seedops' stages, in module paths (`python3 -m
 * seedtest_api.jobs.aggregate_features_daily`, `apps.seedtest_api.jobs.mirt_calibrate`), script
 * paths (`/app/generate_weekly_report.py`) and CronJob names (`compute-daily-kpis`).
 */
const LEGACY_STAGE_WORDS: Record<string, RegExp> = {
  'aggregate-features': /aggregate[_-]features/,
  'compute-kpis': /compute[_-](daily[_-])?kpis/,
  'calibrate-irt': /mirt[_-]calibrate|calibrate[_-]irt/,
  'detect-inactivity': /detect[_-]inactivity/,
  'generate-report': /generate[_-](weekly[_-])?report/,
}

/** The stage a live CronJob runs: its label, else the stage its command names (seedops' or the predecessor's), else its name. */
export function stageOf(cj: V1CronJob, stages: string[]): string | undefined {
  const label = cj.metadata?.labels?.['seedops.io/stage']
  if (label) return label
  const cs = cj.spec?.jobTemplate?.spec?.template?.spec?.containers ?? []
  const text = cs.map((c) => commandOf(c).join(' ')).join(' ')
  const dashed = text.replace(/_/g, '-')
  const exact = stages.find((s) => new RegExp(`(^|[^a-z-])${s}($|[^a-z-])`).test(dashed))
  if (exact) return exact
  const byWords = (t: string) => stages.find((s) => LEGACY_STAGE_WORDS[s]?.test(t))
  return byWords(text) ?? byWords(cj.metadata?.name ?? '')
}

/** A CronJob seedops made (its command is `seedops run …`), as opposed to the predecessor's. */
export function isSeedopsCronJob(cj: V1CronJob): boolean {
  return (cj.spec?.jobTemplate?.spec?.template?.spec?.containers ?? []).some((c) => isSeedopsContainer(c))
}

/** The module or script a legacy command runs (`seedtest_api.jobs.aggregate_features_daily`, `/app/generate_weekly_report.py`). */
export function legacyEntrypoint(command: string[]): string | undefined {
  const text = command.join(' ')
  const mods = [...text.matchAll(/python3?\s+-m\s+([\w.]+)/g)].map((m) => m[1])
  if (mods.length) return mods.join(' | ')
  return /python3?\s+(\/?[\w./-]+\.py)/.exec(text)?.[1]
}

export const scheduleText = (cj: V1CronJob) => `"${cj.spec?.schedule}"${cj.spec?.timeZone ? ` ${cj.spec.timeZone}` : ''}${cj.spec?.suspend ? ', suspended' : ''}`

/** `seedops adopt` (plan, then apply) replaces legacy CronJobs with seedops' own, suspending (never deleting) the old ones. */
export const adoptFix = (ns: string) => [`seedops adopt -n ${ns}   # shows the plan`, `seedops adopt -n ${ns} --yes   # deploys seedops' CronJob, suspends the legacy one (--rollback undoes it)`]

export const clusterReachable: DoctorCheck = {
  id: 'cluster.reachable',
  category: 'cluster',
  description: 'The cluster answers and the namespace exists',
  async run(ctx) {
    let s: ClusterSnapshot
    try {
      s = await ctx.cluster()
    } catch (e) {
      const err = e instanceof SeedopsError ? e : new SeedopsError(String(e), { code: 'KUBE_ERROR' })
      if (err.code === 'KUBE_NO_CONFIG') {
        const how = 'point seedops at a cluster with --kubeconfig PATH, --context NAME or KUBECONFIG'
        if (ctx.requireCluster) return [{ status: 'fail', message: `${err.message} (--require-cluster)`, fix: err.suggestions }]
        throw new CheckSkipped(`${err.message}: cluster checks skipped; ${how} (--require-cluster makes this a failure)`, 'no cluster configured')
      }
      if (err.code === 'KUBE_NAMESPACE_NOT_FOUND') return [{ status: 'fail', message: `namespace ${ctx.namespace} does not exist`, fix: [`seedops deploy -n ${ctx.namespace}`, 'Or pick another namespace with -n/--namespace'] }]
      return [{ status: 'fail', message: `${err.message} (${err.code})`, fix: err.suggestions }]
    }
    const nsState = await readNamespace(s.k)
    if (!nsState.present) return [{ status: 'fail', message: `namespace ${ctx.namespace} does not exist on ${s.k.server}`, fix: [`kubectl create namespace ${ctx.namespace}`, `then: seedops deploy -n ${ctx.namespace}`, 'Or pick another namespace with -n/--namespace'] }]
    return [{ status: 'ok', message: `${s.k.server} (context ${s.k.context}) answers; namespace ${ctx.namespace}${nsState.verifiable ? ' exists' : ' (existence not verifiable: no permission to get namespaces)'}` }]
  },
}

export const cronjobsPresent: DoctorCheck = {
  id: 'cronjobs.present',
  category: 'cluster',
  description: 'Every expected CronJob exists, and exactly one CronJob runs each stage',
  dependsOn: 'cluster.reachable',
  async run(ctx) {
    const s = await ctx.cluster()
    const ns = ctx.namespace
    const out: Finding[] = []
    const stages = ctx.expected.map((e) => e.stage)
    const legacyOf = (stage: string) => s.cronjobs.filter((c) => !isSeedopsCronJob(c) && stageOf(c, stages) === stage)
    // Not deployed at all: one finding, not one per missing CronJob (the predecessor's namespace before adopt).
    if (!ctx.expected.some((e) => s.cronjobs.some((c) => c.metadata?.name === e.name && isSeedopsCronJob(c)))) {
      const running = ctx.expected.map((e) => ({ stage: e.stage, legacy: legacyOf(e.stage) })).filter((x) => x.legacy.length)
      const none = ctx.expected.filter((e) => !legacyOf(e.stage).length).map((e) => e.stage)
      out.push(
        running.length
          ? {
              status: 'fail',
              subject: ns,
              message: `seedops is not deployed in ${ns}; the predecessor's CronJobs run ${running.map((x) => `${x.stage} (${x.legacy.map((o) => o.metadata!.name).join(', ')})`).join(', ')}${none.length ? `; nothing runs ${none.join(', ')}` : ''}: seedops adopt -n ${ns} shows the plan`,
              fix: adoptFix(ns),
            }
          : { status: 'fail', subject: ns, message: `seedops is not deployed in ${ns}: none of its ${ctx.expected.length} CronJobs (${ctx.expected.map((e) => e.name).join(', ')}) exists`, fix: [`seedops deploy -n ${ns}`] },
      )
    } else {
      const record = await s.adoption()
      for (const e of ctx.expected) {
        const own = s.cronjobs.find((c) => c.metadata?.name === e.name)
        const others = s.cronjobs.filter((c) => c.metadata?.name !== e.name && stageOf(c, stages) === e.stage)
        if (!own) {
          out.push({
            status: 'fail',
            subject: e.name,
            message: `CronJob ${e.name} (stage ${e.stage}) is missing${others.length ? `; the stage runs from ${others.map((o) => o.metadata!.name).join(', ')} instead` : ''}`,
            fix: others.some((o) => !isSeedopsCronJob(o)) ? adoptFix(ns) : [`seedops deploy -n ${ns}`, ...others.map((o) => `then: ${kc(ns)} delete cronjob ${o.metadata!.name}`)],
          })
          continue
        }
        for (const o of others) {
          const exact = JSON.stringify(commandOf(mainContainer(o)?.c)) === JSON.stringify(e.command)
          const legacy = !isSeedopsCronJob(o)
          const name = o.metadata!.name!
          if (legacy && o.spec?.suspend) {
            // Suspended legacy CronJobs do not run; adopt keeps them (never deletes in the same step) so --rollback can resume them.
            const recorded = record?.legacyCronJobs.some((l) => l.name === name)
            out.push({
              status: recorded ? 'ok' : 'warn',
              subject: name,
              message: `legacy CronJob ${name} (stage ${e.stage}, ${scheduleText(o)}) is ${suspensionText(name, record)}; ${recorded ? `delete it with seedops adopt --prune-legacy -n ${ns} once each stage has run` : `resuming it would run the stage beside seedops' ${e.name}`}`,
              fix: [`${kc(ns)} delete cronjob ${name}`],
            })
            continue
          }
          out.push({
            status: 'fail',
            subject: name,
            message: legacy
              ? `stage ${e.stage} is scheduled twice: legacy CronJob ${name} (${scheduleText(o)}) runs ${legacyEntrypoint(commandOf(mainContainer(o)?.c)) ?? 'it'} beside seedops' ${e.name} (${scheduleText(own)})`
              : `stage ${e.stage} is scheduled twice: CronJob ${name} (${o.spec?.schedule}) duplicates ${e.name} (${own.spec?.schedule})${exact ? ', same command' : `, command: ${commandOf(mainContainer(o)?.c).join(' ')}`}`,
            fix: legacy ? adoptFix(ns) : [`${kc(ns)} delete cronjob ${name}`],
            ...(exact ? { safeFix: { kind: 'delete-cronjob', name, duplicateOf: e.name } as const } : {}),
          })
        }
      }
    }
    // Two legacy CronJobs for one stage seedops has not deployed yet (aggregate-features-daily from two files).
    for (const e of ctx.expected.filter((x) => !s.cronjobs.some((c) => c.metadata?.name === x.name && isSeedopsCronJob(c)))) {
      const legacy = legacyOf(e.stage)
      if (legacy.length < 2) continue
      // A suspended copy runs nothing today, but resuming it (or a rollback) schedules the stage twice.
      const active = legacy.filter((o) => !o.spec?.suspend).length
      out.push({
        status: active >= 2 ? 'fail' : 'warn',
        subject: legacy.map((o) => o.metadata!.name).join(','),
        message: `stage ${e.stage} is scheduled ${legacy.length} times by legacy CronJobs: ${legacy.map((o) => `${o.metadata!.name} (${scheduleText(o)})`).join(' and ')}${active < 2 ? `; ${active ? 'only one is active, the other would run it twice if resumed' : 'all suspended'}` : ''}`,
        fix: adoptFix(ns),
      })
    }
    if (!out.some((f) => f.status !== 'ok')) out.push({ status: 'ok', message: `${ctx.expected.length} CronJobs present, one per stage (${ctx.expected.map((e) => e.name).join(', ')})` })
    return out
  },
}

export const cronjobsSpec: DoctorCheck = {
  id: 'cronjobs.spec',
  category: 'cluster',
  description: 'Each CronJob has the expected image, command, schedule and is not suspended',
  dependsOn: 'cluster.reachable',
  async run(ctx) {
    const s = await ctx.cluster()
    const out: Finding[] = []
    let checked = 0
    for (const e of ctx.expected) {
      const cj = s.cronjobs.find((c) => c.metadata?.name === e.name)
      if (!cj) continue
      checked++
      const m = mainContainer(cj)
      const ns = ctx.namespace
      if (!isSeedopsCronJob(cj)) {
        // The predecessor's CronJob under seedops' name: comparing fields would only list every one of them.
        out.push({ status: 'fail', subject: e.name, message: `CronJob ${e.name} is the predecessor's, not seedops': it runs ${legacyEntrypoint(commandOf(m?.c)) ?? (commandOf(m?.c).join(' ') || 'the image default')} (${scheduleText(cj)})`, fix: adoptFix(ns) })
        continue
      }
      const want = wantedImage(ctx, e, cj)
      if (m && want && m.c.image !== want.image) {
        out.push({
          status: 'fail',
          subject: e.name,
          message: `CronJob ${e.name} runs image ${m.c.image}, expected ${want.image} (${want.source === 'flag' ? '--image' : 'the image seedops deploy put there'})`,
          fix: [`${kc(ns)} set image cronjob/${e.name} ${m.c.name}=${want.image}`, `or redeploy: seedops deploy -n ${ns}${want.image.includes(':') ? ` --image ${want.image}` : ''}`],
          safeFix: { kind: 'set-image', cronjob: e.name, container: m.c.name, image: want.image, source: want.source },
        })
      } else if (m && !want && m.c.image !== e.image) {
        // Nothing recorded (deployed by hand or by an older seedops): the overlay's tag is a guess, never a fix.
        out.push({
          status: 'warn',
          subject: e.name,
          message: `CronJob ${e.name} runs image ${m.c.image}; k8s/ names ${e.image}, and seedops has no record of deploying either`,
          fix: [`if ${m.c.image} is intended, record it: seedops deploy -n ${ns} --image ${m.c.image}`, `or pass the image you deployed: seedops doctor --image <registry>/seedops:<tag>`],
        })
      }
      const cmd = commandOf(m?.c)
      if (JSON.stringify(cmd) !== JSON.stringify(e.command)) {
        out.push({ status: 'fail', subject: e.name, message: `CronJob ${e.name} runs \`${cmd.join(' ') || '(image default)'}\`, expected \`${e.command.join(' ')}\``, fix: [`seedops deploy -n ${ns}`] })
      }
      if (cj.spec?.schedule !== e.schedule) {
        out.push({ status: 'warn', subject: e.name, message: `CronJob ${e.name} schedule is "${cj.spec?.schedule}", k8s/ has "${e.schedule}"`, fix: [`seedops schedule set ${e.name} default -n ${ns}   # back to "${e.schedule}"`, 'or, if the change is intended, put it in k8s/ so the next deploy keeps it'] })
      }
      if (cj.spec?.suspend && !e.suspend) {
        out.push({ status: 'warn', subject: e.name, message: `CronJob ${e.name} is suspended: stage ${e.stage} does not run`, fix: [`${kc(ns)} patch cronjob ${e.name} -p '{"spec":{"suspend":false}}'`] })
      }
      if ((cj.spec?.concurrencyPolicy ?? 'Allow') !== e.concurrencyPolicy) {
        out.push({ status: 'warn', subject: e.name, message: `CronJob ${e.name} concurrencyPolicy is ${cj.spec?.concurrencyPolicy ?? 'Allow'}, expected ${e.concurrencyPolicy}`, fix: [`seedops deploy -n ${ns}`] })
      }
    }
    if (!out.length) out.push({ status: 'ok', message: checked ? `${checked} CronJobs match k8s/ (image, command, schedule)` : 'no expected CronJob present to compare (see cronjobs.present)' })
    return out
  },
}

/**
 * The image a CronJob's seedops container should run: the one given with --image, else the one
 * `seedops deploy` recorded on it. Never the overlay's default tag: that would roll a pinned
 * release back to whatever k8s/ happens to name.
 */
export function wantedImage(ctx: DoctorContext, e: ExpectedCronJob, cj: V1CronJob): { image: string; source: 'flag' | 'deployed' } | undefined {
  if (ctx.explicitImages) return { image: e.image, source: 'flag' }
  const recorded = cj.metadata?.annotations?.[DEPLOYED_IMAGE_ANNOTATION]
  return recorded ? { image: recorded, source: 'deployed' } : undefined
}

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
  category: 'cluster',
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
  category: 'cluster',
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

export const jobsSidecar: DoctorCheck = {
  id: 'jobs.sidecar',
  category: 'cluster',
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

export async function lastLogLines(s: ClusterSnapshot, pod: string, container: string, n: number, previous = false): Promise<string[]> {
  try {
    const text = await s.k.core.readNamespacedPodLog({ name: pod, namespace: s.k.namespace, container, tailLines: n, ...(previous ? { previous } : {}) })
    return String(text).split('\n').filter((l) => l !== '').map((l) => redact(l))
  } catch {
    return []
  }
}

export const jobsFailed: DoctorCheck = {
  id: 'jobs.failed',
  category: 'cluster',
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

/** List items carry no `kind`; manifests.ts finds a CronJob's containers by it. */
const asObject = (cj: V1CronJob): KubeObject => ({ ...(cj as unknown as KubeObject), kind: 'CronJob', apiVersion: 'batch/v1' })

interface RefUse {
  kind: 'Secret' | 'ConfigMap'
  name: string
  keys: Set<string>
  /** CronJob → optional? */
  users: Map<string, boolean>
}

export const configRefs: DoctorCheck = {
  id: 'config.refs',
  category: 'cluster',
  description: 'The secrets and config maps the CronJobs read exist and hold the keys they read',
  dependsOn: 'cluster.reachable',
  async run(ctx) {
    const s = await ctx.cluster()
    const ns = ctx.namespace
    const uses = new Map<string, RefUse>()
    const add = (cronjob: string, refs: ReturnType<typeof refsOf>) => {
      for (const r of refs) {
        const id = `${r.kind}/${r.name}`
        const u = uses.get(id) ?? { kind: r.kind, name: r.name, keys: new Set<string>(), users: new Map<string, boolean>() }
        // A key read with optional: true may be absent (AWS_ENDPOINT_URL on AWS proper).
        if (!r.optional) for (const k of r.keys) u.keys.add(k)
        u.users.set(cronjob, (u.users.get(cronjob) ?? true) && r.optional)
        uses.set(id, u)
      }
    }
    for (const e of ctx.expected) {
      const live = s.cronjobs.find((c) => c.metadata?.name === e.name)
      add(e.name, live ? refsOf(asObject(live)) : e.refs)
    }
    const out: Finding[] = []
    for (const u of [...uses.values()].sort((a, b) => a.name.localeCompare(b.name))) {
      const spec = SECRET_SPECS.find((x) => x.name === u.name && x.kind === u.kind)
      const users = [...u.users.entries()].map(([c, opt]) => `${c}${opt ? ' (optional)' : ''}`).join(', ')
      const required = [...u.users.values()].some((opt) => !opt)
      const what = `${u.kind === 'Secret' ? 'secret' : 'configmap'} ${u.name}`
      let obj
      try {
        obj = await s.object(u.kind, u.name)
      } catch (e) {
        const err = e as SeedopsError
        out.push({ status: 'warn', subject: u.name, message: `cannot read ${what}: ${err.message}`, fix: err.suggestions })
        continue
      }
      const ensure = spec ? `seedops secrets ensure --only ${spec.id} -n ${ns}` : `${kc(ns)} create ${u.kind === 'Secret' ? 'secret generic' : 'configmap'} ${u.name} ${[...u.keys].map((k) => `--from-literal=${k}=…`).join(' ')}`
      if (!obj) {
        const copies = spec ? await predecessorCopies(s, spec) : []
        // adopt copies from one of them (its plan says which); doctor names every candidate.
        const copyText = `into ${u.name}[${[...new Set(copies.flatMap((c) => c.keys.map((k) => k.to)))].join(', ')}] from ${copies.flatMap((c) => c.keys.map((k) => `${c.secret}[${k.from}]`)).join(' or ')}`
        out.push({
          status: required ? 'fail' : 'warn',
          subject: u.name,
          message: `${what} is missing; read by ${users}${required ? '' : ' — they start without it, but the feature that needs it will not work'}${copies.length ? `; the predecessor keeps it as ${copies.map((c) => `secret ${c.secret}`).join(' and ')}` : ''}`,
          fix: [...(copies.length ? [`seedops adopt -n ${ns} --yes   # copies ${copyText} (values not shown)`] : []), ensure],
          ...(spec ? { safeFix: { kind: 'ensure-secret', only: spec.id, object: u.name } as const } : {}),
        })
        for (const c of copies) {
          out.push({
            status: 'warn',
            subject: c.secret,
            message: `secret ${c.secret} holds what seedops reads from ${u.name} under another name and key (${c.keys.map((k) => `${k.from} for ${k.to}`).join(', ')}): the predecessor's name, which seedops does not read`,
            fix: [`seedops adopt -n ${ns}   # shows the copy into ${u.name}`, `seedops adopt -n ${ns} --yes   # copies it (value not shown; --rollback deletes the copy)`],
          })
        }
        continue
      }
      const have = new Set(Object.keys(obj.data ?? {}))
      const needed = new Set([...u.keys, ...(spec?.keys.filter((k) => k.required).map((k) => k.key) ?? [])])
      const missing = [...needed].filter((k) => !have.has(k))
      if (missing.length) {
        const readers = [...u.users.keys()].filter((c) => {
          const live = s.cronjobs.find((x) => x.metadata?.name === c)
          const refs = live ? refsOf(asObject(live)) : (ctx.expected.find((x) => x.name === c)?.refs ?? [])
          return refs.some((r) => r.name === u.name && (r.keys.length === 0 || r.keys.some((k) => missing.includes(k))))
        })
        out.push({
          status: required ? 'fail' : 'warn',
          subject: u.name,
          message: `${what} lacks key${missing.length > 1 ? 's' : ''} ${missing.join(', ')}; read by ${readers.join(', ') || users}`,
          fix: [spec ? `seedops secrets ensure --only ${spec.id} --update -n ${ns}   # with ${missing.map((k) => spec.keys.find((x) => x.key === k)?.env[0] ?? k).join(', ')} set` : `${kc(ns)} edit ${u.kind.toLowerCase()} ${u.name}`],
          ...(spec ? { safeFix: { kind: 'ensure-secret', only: spec.id, object: u.name, missingKeys: missing } as const } : {}),
        })
      }
    }
    if (!out.length) out.push({ status: 'ok', message: `${uses.size} secrets/config maps present with the keys the CronJobs read (${[...uses.values()].map((u) => u.name).join(', ')})` })
    return out
  },
}


/** The predecessor's secrets (by name, read only if allowed) holding a value a seedops secret needs, under its keys. */
async function predecessorCopies(s: ClusterSnapshot, spec: (typeof SECRET_SPECS)[number]): Promise<{ secret: string; keys: { from: string; to: string }[] }[]> {
  const out: { secret: string; keys: { from: string; to: string }[] }[] = []
  for (const name of PREDECESSOR_SECRETS) {
    let o
    try {
      o = await s.object('Secret', name)
    } catch {
      continue // the doctor Role may not read it; adopt's plan (as the operator) still finds it
    }
    const have = Object.keys(o?.data ?? {})
    const keys = spec.keys.flatMap((k) => {
      const from = keyAliases({ name: spec.name, key: k.key, env: k.env }).flatMap((a) => (!a.inSecretNamed || a.inSecretNamed.test(name) ? a.keys : [])).find((x) => have.includes(x))
      return from ? [{ from, to: k.key }] : []
    })
    if (keys.length) out.push({ secret: name, keys })
  }
  return out
}

async function someAsync<T>(xs: T[], f: (x: T) => Promise<unknown>): Promise<boolean> {
  for (const x of xs) if (await f(x)) return true
  return false
}

export type { DoctorContext }
