import { existsSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { parseAllDocuments } from 'yaml'
import { packageRoot } from '../paths.js'
import { SeedopsError, usageError } from '../errors/index.js'

/**
 * The manifests in k8s/, built the way `kubectl kustomize` builds them, for the subset of
 * kustomize k8s/ uses: `resources` (files and directories), `namespace`, `images`, and `patches`
 * with inline JSON 6902 operations and a kind/name target. Anything else is refused rather than
 * silently ignored. A test compares the result with the real `kubectl kustomize`.
 */
export interface KubeObject {
  apiVersion: string
  kind: string
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string>; [k: string]: unknown }
  [k: string]: any
}

export const CLUSTER_SCOPED = new Set(['Namespace', 'ClusterRole', 'ClusterRoleBinding', 'CustomResourceDefinition', 'PersistentVolume', 'StorageClass'])

/** kustomize's legacy output order: kinds others depend on come first. */
const KIND_ORDER = ['Namespace', 'ResourceQuota', 'StorageClass', 'CustomResourceDefinition', 'ServiceAccount', 'PodSecurityPolicy', 'Role', 'ClusterRole', 'RoleBinding', 'ClusterRoleBinding', 'ConfigMap', 'Secret', 'Endpoints', 'Service', 'LimitRange', 'PriorityClass', 'PersistentVolume', 'PersistentVolumeClaim', 'Deployment', 'StatefulSet', 'CronJob', 'PodDisruptionBudget']

export function defaultManifestDir(): string {
  return join(packageRoot(), 'k8s', 'overlays', 'production')
}

interface ImageRule {
  name: string
  newName?: string
  newTag?: string
  digest?: string
}

const SUPPORTED = new Set(['apiVersion', 'kind', 'namespace', 'resources', 'images', 'patches'])

function readYamlDocs(file: string): KubeObject[] {
  const docs = parseAllDocuments(readFileSync(file, 'utf8'))
  const out: KubeObject[] = []
  for (const d of docs) {
    if (d.errors.length) throw new SeedopsError(`${file}: ${d.errors[0].message}`, { code: 'MANIFEST_INVALID' })
    const o = d.toJS() as KubeObject | null
    if (o) out.push(o)
  }
  return out
}

function splitImage(ref: string): { name: string; tag?: string; digest?: string } {
  const at = ref.indexOf('@')
  if (at >= 0) return { name: ref.slice(0, at), digest: ref.slice(at + 1) }
  const slash = ref.lastIndexOf('/')
  const colon = ref.lastIndexOf(':')
  if (colon > slash) return { name: ref.slice(0, colon), tag: ref.slice(colon + 1) }
  return { name: ref }
}

function applyImages(objs: KubeObject[], rules: ImageRule[]) {
  for (const o of objs) {
    for (const c of podContainers(o)) {
      if (typeof c.image !== 'string') continue
      const cur = splitImage(c.image)
      const rule = rules.find((r) => r.name === cur.name)
      if (!rule) continue
      const name = rule.newName ?? cur.name
      c.image = rule.digest ? `${name}@${rule.digest}` : rule.newTag ? `${name}:${rule.newTag}` : cur.digest ? `${name}@${cur.digest}` : cur.tag ? `${name}:${cur.tag}` : name
    }
  }
}

/** Every container (init and regular) of a workload's pod template, or of a Pod. */
export function podContainers(o: KubeObject): { name: string; image?: string; [k: string]: any }[] {
  const spec = o.kind === 'CronJob' ? o.spec?.jobTemplate?.spec?.template?.spec : o.kind === 'Pod' ? o.spec : o.spec?.template?.spec
  return [...(spec?.initContainers ?? []), ...(spec?.containers ?? [])]
}

function jsonPointer(path: string): string[] {
  return path.split('/').slice(1).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'))
}

/** RFC 6902 add/replace/remove/test, the operations kustomize patches use here. */
export function applyJsonPatch(doc: any, ops: { op: string; path: string; value?: unknown }[]): any {
  const out = structuredClone(doc)
  for (const op of ops) {
    const parts = jsonPointer(op.path)
    const last = parts.pop()!
    let parent: any = out
    for (const p of parts) {
      parent = Array.isArray(parent) ? parent[Number(p)] : parent?.[p]
      if (parent === undefined) throw new SeedopsError(`patch path ${op.path} does not exist`, { code: 'MANIFEST_INVALID' })
    }
    if (op.op === 'add') {
      if (Array.isArray(parent)) parent.splice(last === '-' ? parent.length : Number(last), 0, structuredClone(op.value))
      else parent[last] = structuredClone(op.value)
    } else if (op.op === 'replace') parent[last] = structuredClone(op.value)
    else if (op.op === 'remove') {
      if (Array.isArray(parent)) parent.splice(Number(last), 1)
      else delete parent[last]
    } else if (op.op === 'test') {
      if (JSON.stringify(parent[last]) !== JSON.stringify(op.value)) throw new SeedopsError(`patch test failed at ${op.path}`, { code: 'MANIFEST_INVALID' })
    } else throw new SeedopsError(`patch op ${op.op} is not supported`, { code: 'MANIFEST_INVALID' })
  }
  return out
}

/** Builds a kustomization directory (or reads a plain YAML file) into objects. */
export function buildKustomization(path: string): KubeObject[] {
  const p = resolve(path)
  if (!existsSync(p)) throw usageError(`${path} does not exist`, ['Point --manifests at k8s/overlays/<name> or a YAML file'])
  if (statSync(p).isFile()) return readYamlDocs(p)
  const kfile = ['kustomization.yaml', 'kustomization.yml', 'Kustomization'].map((f) => join(p, f)).find(existsSync)
  if (!kfile) throw usageError(`${path} has no kustomization.yaml`)
  const k = readYamlDocs(kfile)[0] as any
  const unsupported = Object.keys(k).filter((x) => !SUPPORTED.has(x))
  if (unsupported.length) throw new SeedopsError(`${kfile}: seedops deploy does not support ${unsupported.join(', ')}`, { code: 'MANIFEST_UNSUPPORTED', suggestions: ['Render with kubectl kustomize and pass the file to --manifests'] })
  let objs: KubeObject[] = []
  for (const r of (k.resources ?? []) as string[]) objs.push(...buildKustomization(join(dirname(kfile), r)))
  for (const patch of (k.patches ?? []) as { target?: { kind?: string; name?: string }; patch?: string; path?: string }[]) {
    const text = patch.patch ?? (patch.path ? readFileSync(join(p, patch.path), 'utf8') : '')
    const ops = parseAllDocuments(text)[0]?.toJS()
    if (!Array.isArray(ops)) throw new SeedopsError(`${kfile}: only JSON 6902 patches (a list of ops) are supported`, { code: 'MANIFEST_UNSUPPORTED' })
    objs = objs.map((o) => (!patch.target || ((!patch.target.kind || patch.target.kind === o.kind) && (!patch.target.name || patch.target.name === o.metadata.name)) ? applyJsonPatch(o, ops) : o))
  }
  if (k.images) applyImages(objs, k.images)
  if (k.namespace) setNamespace(objs, k.namespace)
  return objs
}

function setNamespace(objs: KubeObject[], ns: string) {
  for (const o of objs) {
    if (CLUSTER_SCOPED.has(o.kind)) continue
    const old = o.metadata.namespace
    o.metadata.namespace = ns
    if (o.kind === 'RoleBinding' || o.kind === 'ClusterRoleBinding') {
      for (const s of o.subjects ?? []) if (s.kind === 'ServiceAccount' && (!s.namespace || s.namespace === old)) s.namespace = ns
    }
  }
}

export function sortForApply(objs: KubeObject[]): KubeObject[] {
  const rank = (k: string) => (KIND_ORDER.includes(k) ? KIND_ORDER.indexOf(k) : KIND_ORDER.length)
  return objs.map((o, i) => ({ o, i })).sort((a, b) => rank(a.o.kind) - rank(b.o.kind) || a.i - b.i).map((x) => x.o)
}

export interface LoadOptions {
  /** A kustomization dir or YAML file; default k8s/overlays/production. */
  dir?: string
  /** Target namespace (overrides the kustomization's). */
  namespace?: string
  /** Pin this image on every seedops workload; the report workloads get `<tag>-report` unless `reportImage` is given. */
  image?: string
  reportImage?: string
}

/** The objects `seedops deploy` applies, with namespace and image pinned. */
export function loadManifests(opts: LoadOptions = {}): KubeObject[] {
  // Pin before the overlay's images rule runs: build the base with our rule appended last.
  let objs = buildKustomization(opts.dir ?? defaultManifestDir())
  if (opts.image) {
    const { name, tag, digest } = splitImage(opts.image)
    if (!tag && !digest) throw usageError(`--image ${opts.image} has no tag or digest`, ['Pin a version: --image ghcr.io/seedtest/seedops:1.2.3'])
    let report = opts.reportImage
    if (!report) {
      if (digest) throw usageError('--image with a digest needs --report-image too (the report variant has its own digest)')
      report = `${name}:${tag}-report`
    }
    for (const o of objs) {
      const isReport = o.metadata.labels?.['seedops.io/stage'] === 'generate-report'
      for (const c of podContainers(o)) if (isSeedopsContainer(c)) c.image = isReport ? report : opts.image
    }
  }
  if (opts.namespace) setNamespace(objs, opts.namespace)
  objs = sortForApply(objs)
  return objs
}

/** A container running the seedops image (not a sidecar such as a database proxy). */
export function isSeedopsContainer(c: { command?: string[]; name?: string }): boolean {
  return c.name === 'seedops' || c.command?.[0] === 'seedops'
}
