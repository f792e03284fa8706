import { stringify } from 'yaml'
import { EXIT, SeedopsError } from '../errors/index.js'
import { kubeRequest, type KubeClients } from './client.js'
import { translateKubeError } from './errors.js'
import { CLUSTER_SCOPED, isSeedopsContainer, loadManifests, podContainers, type KubeObject, type LoadOptions } from './manifests.js'

/**
 * `seedops deploy`: server-side apply of the k8s/ manifests with the field manager `seedops`,
 * namespace first. Reports per object whether it was created, configured or unchanged (by the
 * resourceVersion before and after, as the server skips no-op writes).
 */
export const FIELD_MANAGER = 'seedops'

/** On each CronJob and Deployment: the image seedops deployed for its `seedops` container (what `doctor --fix` may restore). */
export const DEPLOYED_IMAGE_ANNOTATION = 'seedops.io/deployed-image'

/** Copies of the objects with the deployed image recorded, so drift (`kubectl set image`) can be undone to it and nothing else. */
export function recordDeployedImages(objs: KubeObject[]): KubeObject[] {
  return objs.map((o) => {
    if (o.kind !== 'CronJob' && o.kind !== 'Deployment') return o
    const image = podContainers(o).find((c) => isSeedopsContainer(c))?.image
    if (!image) return o
    const c = structuredClone(o)
    c.metadata.annotations = { ...(c.metadata.annotations ?? {}), [DEPLOYED_IMAGE_ANNOTATION]: image }
    return c
  })
}

const PLURALS: Record<string, string> = {
  Namespace: 'namespaces',
  ServiceAccount: 'serviceaccounts',
  Role: 'roles',
  RoleBinding: 'rolebindings',
  ClusterRole: 'clusterroles',
  ClusterRoleBinding: 'clusterrolebindings',
  ConfigMap: 'configmaps',
  Secret: 'secrets',
  Service: 'services',
  Deployment: 'deployments',
  CronJob: 'cronjobs',
  Job: 'jobs',
}

export function resourcePath(o: { apiVersion: string; kind: string; metadata: { name: string; namespace?: string } }, withName = true): string {
  const plural = PLURALS[o.kind]
  if (!plural) throw new SeedopsError(`seedops deploy does not know the kind ${o.kind}`, { code: 'MANIFEST_UNSUPPORTED' })
  const base = o.apiVersion.includes('/') ? `/apis/${o.apiVersion}` : `/api/${o.apiVersion}`
  const ns = CLUSTER_SCOPED.has(o.kind) ? '' : `/namespaces/${encodeURIComponent(o.metadata.namespace!)}`
  return `${base}${ns}/${plural}${withName ? `/${encodeURIComponent(o.metadata.name)}` : ''}`
}

export type ApplyAction = 'created' | 'configured' | 'unchanged'

export interface DeployItem {
  kind: string
  name: string
  namespace?: string
  action: ApplyAction
  images: string[]
}

export interface DeployResult {
  namespace: string
  dryRun: 'none' | 'client' | 'server'
  items: DeployItem[]
  /** dry-run=client: the YAML that would be applied. */
  manifests?: string
}

function resourceName(o: KubeObject): string {
  const plural = PLURALS[o.kind] ?? o.kind.toLowerCase()
  const group = o.apiVersion.includes('/') ? o.apiVersion.split('/')[0] : ''
  return group ? `${plural}.${group}` : plural
}

/** An object without what the server changes on every write (versions, timestamps, field owners, status). */
function comparable(o: KubeObject): unknown {
  const { metadata, status: _status, ...rest } = o
  const { resourceVersion: _rv, managedFields: _mf, generation: _g, ...meta } = metadata as Record<string, unknown>
  return sortKeys({ ...rest, metadata: meta })
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys)
  if (v && typeof v === 'object') return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortKeys((v as Record<string, unknown>)[k])]))
  return v
}

/** One field another manager owns that the apply would change (a `FieldManagerConflict` cause of the 409). */
export interface FieldConflict {
  kind: string
  name: string
  namespace?: string
  /** `.spec.schedule`, as the API server prints it. */
  field: string
  manager: string
  /** Update: written by a patch/replace (e.g. `seedops schedule set`, `kubectl patch`); Apply: another server-side apply. */
  operation: 'Apply' | 'Update'
  /** The API server's own message for the object (`Apply failed with 1 conflict: …`). */
  serverMessage: string
}

/** The causes of a 409 from server-side apply: `{reason: FieldManagerConflict, message: 'conflict with "kubectl-patch" using batch/v1', field: '.spec.schedule'}`. */
export function fieldConflicts(body: string, o: KubeObject): FieldConflict[] {
  let status: { reason?: string; message?: string; details?: { causes?: { reason?: string; message?: string; field?: string }[] } }
  try {
    status = JSON.parse(body)
  } catch {
    return []
  }
  if (status.reason !== 'Conflict') return []
  return (status.details?.causes ?? [])
    .filter((c) => c.reason === 'FieldManagerConflict')
    .map((c) => {
      const m = /^conflict with "((?:[^"\\]|\\.)*)"( with subresource "[^"]*")?( using \S+)?/.exec(c.message ?? '')
      return { kind: o.kind, name: o.metadata.name, namespace: o.metadata.namespace, field: c.field ?? '', manager: m ? JSON.parse(`"${m[1]}"`) : (c.message ?? ''), operation: m?.[3] ? 'Update' : 'Apply', serverMessage: status.message ?? '' }
    })
}

/** What wrote a field, by its manager's name: seedops' own patches, kubectl's commands, or another applier. */
export function whoWrote(c: Pick<FieldConflict, 'manager' | 'operation' | 'field'>): string {
  if (c.manager === FIELD_MANAGER && c.operation === 'Update') {
    if (/\.spec\.schedule$/.test(c.field)) return '`seedops schedule set` (a merge patch by field manager "seedops")'
    if (/\.spec\.suspend$/.test(c.field)) return '`seedops schedule suspend/resume` (a merge patch by field manager "seedops")'
    if (/\.image$/.test(c.field)) return '`seedops doctor --fix` (a JSON patch by field manager "seedops")'
    return 'a seedops patch (`schedule`, `doctor --fix` or `adopt`, field manager "seedops")'
  }
  const kubectl: Record<string, string> = {
    'kubectl-patch': '`kubectl patch`',
    'kubectl-edit': '`kubectl edit`',
    'kubectl-set': '`kubectl set`',
    'kubectl-label': '`kubectl label`',
    'kubectl-annotate': '`kubectl annotate`',
    'kubectl-scale': '`kubectl scale`',
    'kubectl-replace': '`kubectl replace`',
    'kubectl-create': '`kubectl create`',
    'kubectl-client-side-apply': '`kubectl apply` (client-side)',
    kubectl: '`kubectl apply --server-side`',
  }
  return kubectl[c.manager] ? `${kubectl[c.manager]} (field manager "${c.manager}")` : `field manager "${c.manager}" (${c.operation === 'Apply' ? 'a server-side apply' : 'an update or patch'})`
}

/** Every conflict of a deploy as one error: which object, which field, who owns it, and the two ways out. */
export function conflictError(conflicts: FieldConflict[], ns: string): SeedopsError {
  const lines = conflicts.map((c) => `  ${c.kind} ${c.name}: ${c.field} was last set by ${whoWrote(c)}`)
  const first = conflicts[0]
  const bySchedule = conflicts.filter((c) => c.manager === FIELD_MANAGER && c.operation === 'Update' && /\.spec\.schedule$/.test(c.field))
  return new SeedopsError(`deploy would overwrite ${conflicts.length === 1 ? 'a field' : `${conflicts.length} fields`} another field manager owns (server-side apply conflict):\n${lines.join('\n')}`, {
    code: 'KUBE_APPLY_CONFLICT',
    exitCode: EXIT.FAILURE,
    suggestions: [
      'To make the manifests win (undoing those changes): seedops deploy --force-conflicts',
      ...(bySchedule.length ? [`To keep the manifests' schedule without forcing: ${[...new Set(bySchedule.map((c) => `seedops schedule set ${c.name} default`))].join('; ')} — then deploy again`] : []),
      'To keep the live value: put it into the manifests (k8s/), then deploy again',
      `See who owns what: kubectl get ${first.kind.toLowerCase()} ${first.name}${first.namespace ?? ns ? ` -n ${first.namespace ?? ns}` : ''} --show-managed-fields -o yaml`,
    ],
    data: { conflicts },
  })
}

/** Server-side apply of one object (adopt applies objects one by one, without the namespace). */
export async function applyOne(k: KubeClients, o: KubeObject, opts: { dryRun: boolean; force: boolean }): Promise<ApplyAction> {
  const path = resourcePath(o)
  const op = { verb: 'patch' as const, resource: resourceName(o), namespace: o.metadata.namespace, name: o.metadata.name }
  const fail = async (res: { status: number; text(): Promise<string> }) => {
    const body = await res.text()
    const conflicts = res.status === 409 ? fieldConflicts(body, o) : []
    if (conflicts.length) throw conflictError(conflicts, o.metadata.namespace ?? k.namespace)
    throw translateKubeError({ code: res.status, body }, op, k)
  }
  try {
    const before = await kubeRequest(k, path)
    let live: KubeObject | undefined
    if (before.status === 200) live = JSON.parse(await before.text()) as KubeObject
    else if (before.status === 404) await before.text()
    else await fail(before)
    const q = new URLSearchParams({ fieldManager: FIELD_MANAGER, fieldValidation: 'Strict' })
    if (opts.force) q.set('force', 'true')
    if (opts.dryRun) q.set('dryRun', 'All')
    const res = await kubeRequest(k, `${path}?${q}`, { method: 'PATCH', headers: { 'Content-Type': 'application/apply-patch+yaml' }, body: JSON.stringify(o) })
    if (res.status !== 200 && res.status !== 201) await fail(res)
    const after = JSON.parse(await res.text()) as KubeObject
    if (!live) return 'created'
    // A dry run keeps the old resourceVersion, so compare the content the server would store.
    if (opts.dryRun) return JSON.stringify(comparable(after)) === JSON.stringify(comparable(live)) ? 'unchanged' : 'configured'
    return after.metadata.resourceVersion === live.metadata.resourceVersion ? 'unchanged' : 'configured'
  } catch (e) {
    throw translateKubeError(e, op, k)
  }
}

export async function deploy(k: KubeClients, opts: LoadOptions & { dryRun?: 'none' | 'client' | 'server'; force?: boolean; objects?: KubeObject[] } = {}): Promise<DeployResult> {
  const dryRun = opts.dryRun ?? 'none'
  // An explicit namespace overrides the kustomization's; otherwise the overlay decides (staging → seedtest-staging).
  const objs = recordDeployedImages(opts.objects ?? loadManifests(opts))
  const namespaces = [...new Set(objs.map((o) => o.metadata.namespace).filter((x): x is string => Boolean(x)))]
  const ns = opts.namespace ?? namespaces[0] ?? k.namespace
  const items: DeployItem[] = []
  const images = (o: KubeObject) => podContainers(o).map((c) => c.image!).filter(Boolean)
  if (dryRun === 'client') {
    return { namespace: ns, dryRun, items: objs.map((o) => ({ kind: o.kind, name: o.metadata.name, namespace: o.metadata.namespace, action: 'configured', images: images(o) })), manifests: objs.map((o) => stringify(o)).join('---\n') }
  }
  const missing = namespaces.filter((n) => !objs.some((o) => o.kind === 'Namespace' && o.metadata.name === n))
  const all: KubeObject[] = [...missing.map((name): KubeObject => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } })), ...objs]
  // Like kubectl apply, a conflict does not stop the other objects; every conflict is reported at the end.
  const conflicts: FieldConflict[] = []
  for (const o of all) {
    try {
      const action = await applyOne(k, o, { dryRun: dryRun === 'server', force: Boolean(opts.force) })
      items.push({ kind: o.kind, name: o.metadata.name, namespace: o.metadata.namespace, action, images: images(o) })
    } catch (e) {
      if (!(e instanceof SeedopsError && e.code === 'KUBE_APPLY_CONFLICT')) throw e
      conflicts.push(...(e.data!.conflicts as FieldConflict[]))
    }
  }
  if (conflicts.length) throw conflictError(conflicts, ns)
  return { namespace: ns, dryRun, items }
}
