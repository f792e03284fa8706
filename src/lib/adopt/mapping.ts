import type { KubeObject } from '../kube/manifests.js'

/**
 * How the predecessor's objects map onto seedops': which stage a legacy CronJob runs (by label,
 * name or the module/script it starts), and under which names and keys it kept the values seedops
 * reads from its secrets and config map.
 */
export type MappedBy = 'label' | 'name' | 'module'

/** Per stage, the words the predecessor used for it (its CronJob names and `python -m` modules). */
const STAGE_WORDS: Record<string, RegExp> = {
  'aggregate-features': /aggregate[-_]features/,
  'compute-kpis': /compute[-_](daily[-_])?kpis/,
  'calibrate-irt': /calibrate[-_]irt|mirt[-_]calibrate/,
  'generate-report': /generate[-_](weekly[-_])?report/,
  'detect-inactivity': /detect[-_]inactivity/,
}

/** The parts of a CronJob's container that adopt reads (the server's JSON, so every field may be absent). */
export interface LegacyContainer {
  name: string
  command?: string[]
  args?: string[]
  env?: { name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string }; configMapKeyRef?: { name: string; key: string } } }[]
}

export const containersOf = (cj: KubeObject): LegacyContainer[] => cj.spec?.jobTemplate?.spec?.template?.spec?.containers ?? []

const commandText = (o: KubeObject) => {
  const cs = containersOf(o)
  return cs.map((c) => [...(c.command ?? []), ...(c.args ?? [])].join(' ')).join(' ')
}

/** The seedops stage a CronJob that seedops did not make runs, or undefined for other work (fit-bayesian-growth…). */
export function legacyStageOf(cj: KubeObject, stages: string[]): { stage: string; by: MappedBy } | undefined {
  const label = cj.metadata.labels?.['seedops.io/stage']
  if (label && stages.includes(label)) return { stage: label, by: 'label' }
  const words = (s: string) => stages.find((st) => (STAGE_WORDS[st] ?? new RegExp(st.replace(/-/g, '[-_]'))).test(s))
  const byName = words(cj.metadata.name)
  if (byName) return { stage: byName, by: 'name' }
  // `python3 -m seedtest_api.jobs.compute_daily_kpis`, `python3 /app/generate_weekly_report.py`
  const mods = [...commandText(cj).matchAll(/(?:-m\s+|\/)([\w.]+?)(?:\.py)?(?=\s|$|")/g)].map((m) => m[1].split('.').pop()!)
  for (const m of mods) {
    const st = words(m)
    if (st) return { stage: st, by: 'module' }
  }
  return undefined
}

/** A CronJob seedops deployed (its labels), as opposed to one it found there. */
export const isSeedopsObject = (o: KubeObject) => o.metadata.labels?.['app.kubernetes.io/part-of'] === 'seedops'

/**
 * Where the predecessor kept a value seedops reads: the key names it used (env names of its jobs
 * and its secrets' keys). `token` alone is too common (r-brms-credentials has one), so it counts
 * only in a secret whose name says IRT.
 */
export function keyAliases(target: { name: string; key: string; env: string[] }): { keys: string[]; inSecretNamed?: RegExp }[] {
  const base = [...new Set([target.key, ...target.env])]
  const lower = base.map((k) => k.toLowerCase())
  const out = [{ keys: [...base, ...lower] }]
  if (target.name === 'r-irt-credentials') out.push({ keys: ['token', 'internal_token', 'irt_token'], inSecretNamed: /irt/ } as { keys: string[]; inSecretNamed?: RegExp })
  return out
}

/** Keys seedops does not read in the cluster: reported, not copied. */
export const NOT_NEEDED_KEYS: { match: RegExp; why: string }[] = [
  {
    match: /^(r_irt_)?base_?url$/i,
    why: 'not copied: seedops calibrates with its native engine and serves the Plumber API itself; the r-irt-plumber Service alias keeps the URL resolving',
  },
]

/** The predecessor's secrets that held seedops' values under other names (its guides and ExternalSecrets). */
export const PREDECESSOR_SECRETS = ['seedtest-irt-credentials', 'calibrate-irt-credentials']
