import { loadManifests, podContainers, isSeedopsContainer, type KubeObject, type LoadOptions } from './manifests.js'

/**
 * What the cluster should hold, read from the manifests in k8s/ (the one source of truth):
 * one CronJob per scheduled stage with its schedule, image, command and the secrets and
 * config maps it reads. `seedops doctor` compares the cluster against this.
 */
export interface ExpectedRef {
  kind: 'Secret' | 'ConfigMap'
  name: string
  /** Keys read one by one (`secretKeyRef`); empty when the whole object is imported (`envFrom`). */
  keys: string[]
  /** True when the workload starts without it (`optional: true` on every reference). */
  optional: boolean
}

export interface ExpectedCronJob {
  name: string
  stage: string
  schedule: string
  timeZone?: string
  suspend: boolean
  image: string
  command: string[]
  concurrencyPolicy: string
  refs: ExpectedRef[]
}

/** Stages run by the platform when a session completes (through the IRT service), not on a schedule. */
export const EVENT_DRIVEN_STAGES = ['update-theta'] as const

export function refsOf(o: KubeObject): ExpectedRef[] {
  const refs = new Map<string, ExpectedRef>()
  const add = (kind: ExpectedRef['kind'], name: string, key: string | undefined, optional: boolean) => {
    const id = `${kind}/${name}`
    const r = refs.get(id) ?? { kind, name, keys: [], optional: true }
    if (key && !r.keys.includes(key)) r.keys.push(key)
    r.optional = r.optional && optional
    refs.set(id, r)
  }
  for (const c of podContainers(o)) {
    for (const e of c.env ?? []) {
      const s = e.valueFrom?.secretKeyRef
      if (s) add('Secret', s.name, s.key, Boolean(s.optional))
      const m = e.valueFrom?.configMapKeyRef
      if (m) add('ConfigMap', m.name, m.key, Boolean(m.optional))
    }
    for (const f of c.envFrom ?? []) {
      if (f.secretRef) add('Secret', f.secretRef.name, undefined, Boolean(f.secretRef.optional))
      if (f.configMapRef) add('ConfigMap', f.configMapRef.name, undefined, Boolean(f.configMapRef.optional))
    }
  }
  return [...refs.values()]
}

export function expectedCronJobs(objs: KubeObject[] = loadManifests()): ExpectedCronJob[] {
  return objs
    .filter((o) => o.kind === 'CronJob')
    .map((o) => {
      const c = podContainers(o).find(isSeedopsContainer)!
      const command = [...(c.command ?? []), ...(c.args ?? [])]
      return {
        name: o.metadata.name,
        stage: o.metadata.labels?.['seedops.io/stage'] ?? command[2],
        schedule: o.spec.schedule,
        timeZone: o.spec.timeZone,
        suspend: Boolean(o.spec.suspend),
        image: c.image!,
        command,
        concurrencyPolicy: o.spec.concurrencyPolicy ?? 'Allow',
        refs: refsOf(o),
      }
    })
}

/** The expected CronJobs for a deploy target (same options as `seedops deploy`). */
export function expectedFor(opts: LoadOptions = {}): ExpectedCronJob[] {
  return expectedCronJobs(loadManifests(opts))
}
