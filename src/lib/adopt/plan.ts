import { join } from 'node:path'
import { SECRET_SPECS, type KeySpec, type ObjectSpec } from '../kube/secrets.js'
import type { KubeClients } from '../kube/client.js'
import { kubeCall } from '../kube/errors.js'
import { expectedCronJobs } from '../kube/expected.js'
import { buildKustomization, loadManifests, type KubeObject, type LoadOptions } from '../kube/manifests.js'
import { recordDeployedImages } from '../kube/deploy.js'
import { packageRoot } from '../paths.js'
import { SeedopsError } from '../errors/index.js'
import { containersOf, isSeedopsObject, keyAliases, legacyStageOf, NOT_NEEDED_KEYS, PREDECESSOR_SECRETS } from './mapping.js'
import { readRecord, RECORD_NAME, type AdoptionRecord } from './record.js'
import { getObject, refOf, REF, type Permission } from './rest.js'

/**
 * `seedops adopt` (plan): reads the namespace and says, object by object, what adopting it means.
 * The plan carries names, keys and schedules; values are read again when the plan is applied and
 * never kept here.
 */
export type RowAction = 'create' | 'update' | 'replace' | 'suspend' | 'record' | 'copy' | 'add-key' | 'retarget' | 'missing' | 'none'

export interface PlanRow {
  /** The predecessor's object (or key), `—` when seedops adds something new. */
  legacy: string
  /** Its seedops counterpart, `—` when there is none. */
  seedops: string
  action: RowAction
  note: string
}

export type ValueSource = { kind: 'Secret' | 'ConfigMap'; name: string; key: string } | { kind: 'CronJob'; name: string; container: string; env: string }

export type Step =
  | { kind: 'apply'; object: KubeObject; exists: boolean }
  | { kind: 'replace'; object: KubeObject; live: KubeObject; stage: string }
  | { kind: 'suspend'; name: string; stage: string; schedule: string }
  | { kind: 'record-legacy'; name: string; stage: string; schedule: string }
  | { kind: 'copy'; target: { kind: 'Secret' | 'ConfigMap'; name: string }; key: string; source: ValueSource; targetExists: boolean }
  | { kind: 'service'; object: KubeObject; live?: KubeObject }

export interface Plan {
  namespace: string
  image?: string
  rows: PlanRow[]
  /** Rows that change something. */
  changes: number
  warnings: string[]
}

export type PlanOptions = Pick<LoadOptions, 'image' | 'reportImage' | 'dir'>

const RBAC_KINDS = new Set(['ServiceAccount', 'Role', 'RoleBinding'])
export const ALIAS_FILE = () => join(packageRoot(), 'k8s', 'aliases', 'r-irt-plumber.yaml')

/** True when every field of `want` has the same value in `live` (the server adds defaults, never removes ours). */
export function covers(live: unknown, want: unknown): boolean {
  if (Array.isArray(want)) return Array.isArray(live) && live.length === want.length && want.every((w, i) => covers(live[i], w))
  if (want && typeof want === 'object') return Boolean(live) && typeof live === 'object' && Object.entries(want).every(([k, v]) => covers((live as Record<string, unknown>)[k], v))
  return live === want || (typeof want === 'number' && String(want) === live)
}

function comparable(o: KubeObject) {
  const { metadata, ...rest } = o
  return { ...rest, metadata: { labels: metadata.labels ?? {}, annotations: metadata.annotations ?? {} } }
}

export const describeSource = (s: ValueSource) => (s.kind === 'CronJob' ? `CronJob/${s.name} env ${s.env}` : `${s.kind}/${s.name}[${s.key}]`)

/** Reads a source value (a secret's is decoded). Never logged. */
export async function readSource(k: KubeClients, s: ValueSource, cache = new Map<string, KubeObject | undefined | 'forbidden'>()): Promise<string | undefined> {
  if (s.kind === 'CronJob') {
    const cj = await getObject(k, REF.cronjob(s.name))
    const c = containersOf(cj ?? ({} as KubeObject)).find((x) => x.name === s.container)
    return c?.env?.find((e) => e.name === s.env && typeof e.value === 'string')?.value
  }
  const id = `${s.kind}/${s.name}`
  if (!cache.has(id)) {
    try {
      cache.set(id, await getObject(k, refOf(s.kind, s.name)))
    } catch (e) {
      if (e instanceof SeedopsError && e.code === 'KUBE_FORBIDDEN') cache.set(id, 'forbidden')
      else throw e
    }
  }
  const o = cache.get(id)
  if (!o || o === 'forbidden') return undefined
  const v = o.data?.[s.key]
  if (typeof v !== 'string') return undefined
  return s.kind === 'Secret' ? Buffer.from(v, 'base64').toString('utf8') : v
}

export async function buildPlan(k: KubeClients, opts: PlanOptions = {}): Promise<{ plan: Plan; steps: Step[]; record?: AdoptionRecord }> {
  const ns = k.namespace
  // As seedops deploy does: the image each CronJob and the IRT Deployment got is recorded on it, the only one doctor --fix restores.
  const objects = recordDeployedImages(loadManifests({ dir: opts.dir, image: opts.image, reportImage: opts.reportImage, namespace: ns }).filter((o) => o.kind !== 'Namespace'))
  const expected = expectedCronJobs(objects)
  const stages = expected.map((e) => e.stage)
  const record = await readRecord(k)
  const rows: PlanRow[] = []
  const steps: Step[] = []
  const warnings: string[] = []

  const list = await kubeCall(k, { verb: 'list', resource: 'cronjobs.batch', namespace: ns }, () => k.batch.listNamespacedCronJob({ namespace: ns }))
  const live = list.items.map((c) => ({ ...c, apiVersion: 'batch/v1', kind: 'CronJob' }) as unknown as KubeObject).sort((a, b) => a.metadata.name.localeCompare(b.metadata.name))
  const legacy = live.filter((c) => !isSeedopsObject(c))
  const replacedHere = new Set<string>()

  // 1. The predecessor's CronJobs.
  for (const cj of legacy) {
    const m = legacyStageOf(cj, stages)
    const name = cj.metadata.name
    if (!m) {
      rows.push({ legacy: `CronJob/${name}`, seedops: '—', action: 'none', note: 'not a seedops stage, left alone' })
      continue
    }
    const own = expected.find((e) => e.stage === m.stage)!
    const by = m.by === 'module' ? 'by its module' : m.by === 'name' ? 'by name' : 'by label'
    const schedule = cj.spec.schedule as string
    if (own.name === name) {
      const want = objects.find((o) => o.kind === 'CronJob' && o.metadata.name === name)!
      replacedHere.add(name)
      steps.push({ kind: 'replace', object: want, live: cj, stage: m.stage })
      rows.push({ legacy: `CronJob/${name}`, seedops: `CronJob/${own.name}`, action: 'replace', note: `stage ${m.stage} (${by}); same name as seedops' CronJob: replaced in place, its definition kept for --rollback` })
      continue
    }
    const rec = record?.legacyCronJobs.find((r) => r.name === name)
    if (cj.spec.suspend) {
      if (rec) rows.push({ legacy: `CronJob/${name}`, seedops: `CronJob/${own.name}`, action: 'none', note: rec.suspendedByAdopt ? `stage ${m.stage}; suspended by adopt` : `stage ${m.stage}; suspended before adopt, stays suspended` })
      else {
        steps.push({ kind: 'record-legacy', name, stage: m.stage, schedule })
        rows.push({ legacy: `CronJob/${name}`, seedops: `CronJob/${own.name}`, action: 'record', note: `stage ${m.stage} (${by}); already suspended: recorded, stays suspended (also after --rollback)` })
      }
      continue
    }
    steps.push({ kind: 'suspend', name, stage: m.stage, schedule })
    rows.push({ legacy: `CronJob/${name}`, seedops: `CronJob/${own.name}`, action: 'suspend', note: `stage ${m.stage} (${by}); schedule "${schedule}" kept for --rollback` })
  }

  // 2. seedops' own objects.
  const rbac: { kind: string; name: string; present: boolean }[] = []
  for (const o of objects) {
    if (o.kind === 'CronJob' && replacedHere.has(o.metadata.name)) continue
    const cur = await getObject(k, refOf(o.kind, o.metadata.name))
    if (RBAC_KINDS.has(o.kind)) {
      rbac.push({ kind: o.kind, name: o.metadata.name, present: Boolean(cur) })
      if (!cur) steps.push({ kind: 'apply', object: o, exists: false })
      continue
    }
    const stage = o.metadata.labels?.['seedops.io/stage']
    const from = stage ? legacy.filter((c) => legacyStageOf(c, stages)?.stage === stage).map((c) => c.metadata.name) : []
    const what = stage ? `stage ${stage}${from.length ? ` (was ${from.join(', ')})` : ''}` : o.kind === 'Deployment' ? 'seedops irt serve (the Plumber API)' : ''
    if (!cur) {
      steps.push({ kind: 'apply', object: o, exists: false })
      rows.push({ legacy: '—', seedops: `${o.kind}/${o.metadata.name}`, action: 'create', note: what })
    } else if (covers(comparable(cur), comparable(o))) {
      rows.push({ legacy: '—', seedops: `${o.kind}/${o.metadata.name}`, action: 'none', note: `up to date${what ? `; ${what}` : ''}` })
    } else {
      steps.push({ kind: 'apply', object: o, exists: true })
      rows.push({ legacy: '—', seedops: `${o.kind}/${o.metadata.name}`, action: 'update', note: what || 'differs from k8s/' })
    }
  }
  const missingRbac = rbac.filter((r) => !r.present)
  if (!missingRbac.length) rows.push({ legacy: '—', seedops: 'ServiceAccounts, Roles, RoleBindings', action: 'none', note: `present (${rbac.map((r) => r.name).filter((x, i, a) => a.indexOf(x) === i).join(', ')})` })
  for (const r of missingRbac) rows.push({ legacy: '—', seedops: `${r.kind}/${r.name}`, action: 'create', note: 'RBAC: needs an admin (the operator cannot grant rights)' })

  // 3. Secrets and the report config map, under seedops' names and keys.
  const cache = new Map<string, KubeObject | undefined | 'forbidden'>()
  const forbidden = new Set<string>()
  const read = async (s: ValueSource) => {
    const v = await readSource(k, s, cache)
    if (s.kind !== 'CronJob' && cache.get(`${s.kind}/${s.name}`) === 'forbidden') forbidden.add(`${s.kind}/${s.name}`)
    return v
  }
  for (const spec of SECRET_SPECS) {
    const target = await getObject(k, refOf(spec.kind, spec.name))
    const present: string[] = []
    for (const key of spec.keys) {
      if (target?.data?.[key.key] !== undefined) {
        present.push(key.key)
        continue
      }
      const candidates = sourcesFor(spec, key, legacy)
      let chosen: ValueSource | undefined
      let value: string | undefined
      let differ = false
      for (const c of candidates) {
        const v = await read(c)
        if (v === undefined) continue
        if (!chosen) {
          chosen = c
          value = v
        } else if (v !== value) differ = true
      }
      const seedopsSide = `${spec.kind}/${spec.name}[${key.key}]`
      if (!chosen) {
        if (key.required) rows.push({ legacy: '—', seedops: seedopsSide, action: 'missing', note: `no source found in the predecessor's objects: seedops secrets ensure --only ${spec.id} -n ${ns}` })
        continue
      }
      steps.push({ kind: 'copy', target: { kind: spec.kind, name: spec.name }, key: key.key, source: chosen, targetExists: Boolean(target) })
      rows.push({ legacy: describeSource(chosen), seedops: seedopsSide, action: target ? 'add-key' : 'copy', note: `value not shown${differ ? '; other sources hold a different value, this one is used by a legacy job of the stage' : ''}` })
    }
    if (present.length) rows.push({ legacy: '—', seedops: `${spec.kind}/${spec.name}`, action: 'none', note: `present (${present.join(', ')})` })
  }
  for (const name of PREDECESSOR_SECRETS) {
    await read({ kind: 'Secret', name, key: '' })
    const o = cache.get(`Secret/${name}`)
    if (!o || o === 'forbidden') continue
    for (const key of Object.keys(o.data ?? {})) {
      const nn = NOT_NEEDED_KEYS.find((n) => n.match.test(key))
      if (nn) rows.push({ legacy: `Secret/${name}[${key}]`, seedops: '—', action: 'none', note: nn.why })
    }
  }
  for (const f of forbidden) warnings.push(`cannot read ${f} (no "get" permission): its keys were not considered`)

  // 4. The R service's DNS name.
  const alias = buildKustomization(ALIAS_FILE())[0]
  alias.metadata.namespace = ns
  const svc = await getObject(k, REF.service(alias.metadata.name))
  if (!svc) {
    steps.push({ kind: 'service', object: alias })
    rows.push({ legacy: '—', seedops: `Service/${alias.metadata.name}`, action: 'create', note: 'the platform\'s R_IRT_BASE_URL host, to seedops irt serve (ports 80, 8000 → http)' })
  } else if (covers(svc.spec, alias.spec) && Object.keys(svc.spec.selector ?? {}).length === Object.keys(alias.spec.selector).length) {
    rows.push({ legacy: `Service/${svc.metadata.name}`, seedops: 'Deployment/seedops-irt', action: 'none', note: 'already routes to seedops irt serve' })
  } else {
    steps.push({ kind: 'service', object: alias, live: svc })
    const sel = Object.entries(svc.spec.selector ?? {}).map(([a, b]) => `${a}=${b}`).join(',')
    const ports = (svc.spec.ports ?? []).map((p: { port: number; targetPort?: number | string }) => `${p.port}→${p.targetPort}`).join(', ')
    rows.push({ legacy: `Service/${svc.metadata.name}`, seedops: 'Deployment/seedops-irt', action: 'retarget', note: `selector ${sel || '(none)'} → seedops irt pods; ports ${ports} → 80, 8000 → http; the old spec kept for --rollback` })
  }
  const plumber = await getObject(k, { group: 'apps', resource: 'deployments', name: 'r-irt-plumber' })
  if (plumber) rows.push({ legacy: 'Deployment/r-irt-plumber', seedops: 'Deployment/seedops-irt', action: 'none', note: 'left running (no longer behind the Service); remove it yourself once satisfied' })

  const changes = rows.filter((r) => !['none', 'missing'].includes(r.action)).length
  return { plan: { namespace: ns, image: opts.image, rows, changes, warnings }, steps, record }
}

/** Where the predecessor may have kept one of seedops' keys: its jobs' env references first, then its known secrets. */
function sourcesFor(spec: ObjectSpec, key: KeySpec, legacy: KubeObject[]): ValueSource[] {
  const names = new Set([key.key, ...key.env])
  const out: ValueSource[] = []
  const push = (s: ValueSource) => {
    if (s.kind !== 'CronJob' && s.kind === spec.kind && s.name === spec.name) return
    if (!out.some((o) => JSON.stringify(o) === JSON.stringify(s))) out.push(s)
  }
  for (const cj of legacy) {
    for (const c of containersOf(cj)) {
      for (const e of c.env ?? []) {
        if (!names.has(e.name)) continue
        const s = e.valueFrom?.secretKeyRef
        const m = e.valueFrom?.configMapKeyRef
        if (s) push({ kind: 'Secret', name: s.name, key: s.key })
        else if (m) push({ kind: 'ConfigMap', name: m.name, key: m.key })
        else if (typeof e.value === 'string' && e.value !== '') push({ kind: 'CronJob', name: cj.metadata.name, container: c.name, env: e.name })
      }
    }
  }
  for (const secret of PREDECESSOR_SECRETS) {
    for (const a of keyAliases({ name: spec.name, key: key.key, env: key.env })) {
      if (a.inSecretNamed && !a.inSecretNamed.test(secret)) continue
      for (const kk of a.keys) push({ kind: 'Secret', name: secret, key: kk })
    }
  }
  return out
}

/** What applying these steps needs from RBAC. */
export function permissionsFor(steps: Step[], hasRecord: boolean): Permission[] {
  const out: Permission[] = []
  const kindRef = (kind: string, name: string) => refOf(kind, name)
  for (const s of steps) {
    if (s.kind === 'apply') {
      const r = kindRef(s.object.kind, s.object.metadata.name)
      if (!s.exists) out.push({ verb: 'create', group: r.group, resource: r.resource, why: `create ${s.object.kind} ${r.name}` })
      out.push({ verb: 'patch', group: r.group, resource: r.resource, name: r.name, why: `server-side apply of ${s.object.kind} ${r.name}` })
    } else if (s.kind === 'replace') out.push({ verb: 'update', group: 'batch', resource: 'cronjobs', name: s.object.metadata.name, why: 'replace the legacy CronJob of the same name' })
    else if (s.kind === 'suspend') out.push({ verb: 'patch', group: 'batch', resource: 'cronjobs', name: s.name, why: 'suspend the legacy CronJob' })
    else if (s.kind === 'copy') {
      const r = kindRef(s.target.kind, s.target.name)
      out.push(s.targetExists ? { verb: 'patch', group: r.group, resource: r.resource, name: r.name, why: `add ${s.key} to ${s.target.kind} ${r.name}` } : { verb: 'create', group: r.group, resource: r.resource, why: `create ${s.target.kind} ${r.name}` })
    } else if (s.kind === 'service') {
      if (!s.live) out.push({ verb: 'create', group: '', resource: 'services', why: `create the Service alias ${s.object.metadata.name}` })
      out.push({ verb: 'patch', group: '', resource: 'services', name: s.object.metadata.name, why: `point Service ${s.object.metadata.name} at seedops irt serve` })
    }
  }
  if (steps.length) out.push(hasRecord ? { verb: 'patch', group: '', resource: 'configmaps', name: RECORD_NAME, why: 'update the adoption record' } : { verb: 'create', group: '', resource: 'configmaps', why: `create the adoption record ${RECORD_NAME}` })
  return out
}
