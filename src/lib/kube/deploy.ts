import { stringify } from 'yaml'
import { SeedopsError } from '../errors/index.js'
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

/** Server-side apply of one object (adopt applies objects one by one, without the namespace). */
export async function applyOne(k: KubeClients, o: KubeObject, opts: { dryRun: boolean; force: boolean }): Promise<ApplyAction> {
  const path = resourcePath(o)
  const op = { verb: 'patch' as const, resource: resourceName(o), namespace: o.metadata.namespace, name: o.metadata.name }
  const fail = async (res: { status: number; text(): Promise<string> }) => {
    throw translateKubeError({ code: res.status, body: await res.text() }, op, k)
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
  for (const o of all) {
    const action = await applyOne(k, o, { dryRun: dryRun === 'server', force: Boolean(opts.force) })
    items.push({ kind: o.kind, name: o.metadata.name, namespace: o.metadata.namespace, action, images: images(o) })
  }
  return { namespace: ns, dryRun, items }
}
