import { SeedopsError } from '../errors/index.js'
import { kubeRequest, type KubeClients } from '../kube/client.js'
import { translateKubeError, type KubeOp } from '../kube/errors.js'
import type { KubeObject } from '../kube/manifests.js'

/**
 * The few raw calls adopt needs on any kind (the typed clients cover no RBAC or review types):
 * read (404 → undefined), merge/JSON patch, replace, delete, and SelfSubjectAccessReview.
 */
export interface Ref {
  /** `''`, `apps`, `batch`, `rbac.authorization.k8s.io` */
  group: string
  /** Plural: `cronjobs` */
  resource: string
  name: string
}

const VERSION: Record<string, string> = { '': 'v1', apps: 'v1', batch: 'v1', 'rbac.authorization.k8s.io': 'v1' }

export const REF = {
  cronjob: (name: string): Ref => ({ group: 'batch', resource: 'cronjobs', name }),
  secret: (name: string): Ref => ({ group: '', resource: 'secrets', name }),
  configmap: (name: string): Ref => ({ group: '', resource: 'configmaps', name }),
  service: (name: string): Ref => ({ group: '', resource: 'services', name }),
}

const PLURAL: Record<string, [string, string]> = {
  ServiceAccount: ['', 'serviceaccounts'],
  Role: ['rbac.authorization.k8s.io', 'roles'],
  RoleBinding: ['rbac.authorization.k8s.io', 'rolebindings'],
  ConfigMap: ['', 'configmaps'],
  Secret: ['', 'secrets'],
  Service: ['', 'services'],
  Deployment: ['apps', 'deployments'],
  CronJob: ['batch', 'cronjobs'],
}

export function refOf(kind: string, name: string): Ref {
  const p = PLURAL[kind]
  if (!p) throw new SeedopsError(`seedops adopt does not handle the kind ${kind}`, { code: 'ADOPT_UNSUPPORTED' })
  return { group: p[0], resource: p[1], name }
}

/** `cronjobs.batch`, as kubectl and the error messages name it. */
export const qualified = (r: Pick<Ref, 'group' | 'resource'>) => (r.group ? `${r.resource}.${r.group}` : r.resource)

function path(k: KubeClients, r: Ref): string {
  const gv = r.group ? `/apis/${r.group}/${VERSION[r.group] ?? 'v1'}` : '/api/v1'
  return `${gv}/namespaces/${encodeURIComponent(k.namespace)}/${r.resource}/${encodeURIComponent(r.name)}`
}

// T is the caller's reading of the JSON body; mutations always answer with the object.
async function call<T extends KubeObject | undefined = KubeObject>(k: KubeClients, op: KubeOp, p: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}, allow404 = false): Promise<T> {
  let res
  try {
    res = await kubeRequest(k, p, init)
  } catch (e) {
    throw translateKubeError(e, op, k)
  }
  const text = await res.text()
  if (res.status === 404 && allow404) return undefined as T
  if (res.status < 200 || res.status >= 300) throw translateKubeError({ code: res.status, body: text }, op, k)
  return (text ? JSON.parse(text) : undefined) as T
}

const op = (k: KubeClients, verb: KubeOp['verb'], r: Ref): KubeOp => ({ verb, resource: qualified(r), namespace: k.namespace, name: r.name })

export const getObject = (k: KubeClients, r: Ref): Promise<KubeObject | undefined> => call<KubeObject | undefined>(k, op(k, 'get', r), path(k, r), {}, true)

export const mergePatch = (k: KubeClients, r: Ref, body: unknown): Promise<KubeObject> =>
  call(k, op(k, 'patch', r), `${path(k, r)}?fieldManager=seedops`, { method: 'PATCH', headers: { 'Content-Type': 'application/merge-patch+json' }, body: JSON.stringify(body) })

export const jsonPatch = (k: KubeClients, r: Ref, ops: unknown[]): Promise<KubeObject> =>
  call(k, op(k, 'patch', r), `${path(k, r)}?fieldManager=seedops`, { method: 'PATCH', headers: { 'Content-Type': 'application/json-patch+json' }, body: JSON.stringify(ops) })

export const replaceObject = (k: KubeClients, r: Ref, body: KubeObject): Promise<KubeObject> =>
  call(k, op(k, 'update', r), `${path(k, r)}?fieldManager=seedops`, { method: 'PUT', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) })

export const createObject = (k: KubeClients, r: Ref, body: KubeObject): Promise<KubeObject> =>
  call(k, op(k, 'create', r), `${path(k, r).replace(/\/[^/]+$/, '')}?fieldManager=seedops`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) })

/** Deletes; true when it was there. Dependents (a CronJob's Jobs) go with it, as kubectl's default. */
export async function deleteObject(k: KubeClients, r: Ref): Promise<boolean> {
  const out = await call(k, op(k, 'delete', r), path(k, r), { method: 'DELETE', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ propagationPolicy: 'Background' }) }, true)
  return out !== undefined
}

export interface Permission {
  verb: KubeOp['verb']
  group: string
  resource: string
  name?: string
  /** What adopt needs it for, for the message. */
  why: string
}

export const canI = (p: Permission, ns: string) => `kubectl auth can-i ${p.verb} ${qualified(p)}${p.name ? `/${p.name}` : ''} -n ${ns}`

/** The permissions this identity lacks, asked one by one with SelfSubjectAccessReview. */
export async function missingPermissions(k: KubeClients, needs: Permission[]): Promise<Permission[]> {
  const seen = new Map<string, Permission>()
  for (const n of needs) seen.set(`${n.verb}|${n.group}|${n.resource}|${n.name ?? ''}`, n)
  const out: Permission[] = []
  for (const n of seen.values()) {
    const review = { apiVersion: 'authorization.k8s.io/v1', kind: 'SelfSubjectAccessReview', spec: { resourceAttributes: { namespace: k.namespace, verb: n.verb, group: n.group, resource: n.resource, ...(n.name ? { name: n.name } : {}) } } }
    const r = await call(k, { verb: 'create', resource: 'selfsubjectaccessreviews.authorization.k8s.io' }, '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(review) })
    if (!r?.status?.allowed) out.push(n)
  }
  return out
}

/** Fails (exit 1) naming every missing verb, before anything is changed. */
export async function requirePermissions(k: KubeClients, needs: Permission[], what: string): Promise<void> {
  const missing = await missingPermissions(k, needs)
  if (!missing.length) return
  const list = missing.map((m) => `${m.verb} ${qualified(m)}${m.name ? ` "${m.name}"` : ''} (${m.why})`)
  throw new SeedopsError(`${what} needs permissions this identity (context ${k.context}) does not have: ${list.join('; ')}`, {
    code: 'KUBE_FORBIDDEN',
    suggestions: [...missing.map((m) => `Check: ${canI(m, k.namespace)}`), 'Grant them to the operator: k8s/base/rbac-operator.yaml has the Role seedops adopt needs (an admin applies it)'],
    data: { missing: missing.map(({ verb, group, resource, name }) => ({ verb, resource: qualified({ group, resource }), name })) },
  })
}
