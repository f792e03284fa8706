import type { V1Container, V1CronJob } from '@kubernetes/client-node'
import { redact } from '../errors/index.js'
import { isSeedopsContainer } from '../kube/manifests.js'
import type { ClusterSnapshot } from './types.js'

/** What the cluster checks share: how a CronJob is recognised (seedops' or the predecessor's, which stage), how it is shown, the fix that adopts it, and the last log lines of a pod. */

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

export async function lastLogLines(s: ClusterSnapshot, pod: string, container: string, n: number, previous = false): Promise<string[]> {
  try {
    const text = await s.k.core.readNamespacedPodLog({ name: pod, namespace: s.k.namespace, container, tailLines: n, ...(previous ? { previous } : {}) })
    return String(text).split('\n').filter((l) => l !== '').map((l) => redact(l))
  } catch {
    return []
  }
}

export async function someAsync<T>(xs: T[], f: (x: T) => Promise<unknown>): Promise<boolean> {
  for (const x of xs) if (await f(x)) return true
  return false
}

