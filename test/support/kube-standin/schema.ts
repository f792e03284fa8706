import * as k8s from '@kubernetes/client-node'
import { isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, type Node } from 'yaml'

/**
 * Strict field validation from the Kubernetes OpenAPI: the attribute maps of @kubernetes/client-node's
 * generated models (one class per OpenAPI definition, `V1CronJobSpec.getAttributeTypeMap()`), walked
 * the way the apiserver's strict decoder walks the Go types. No field list here is written by hand.
 */

type Attr = { baseName: string; type: string }
type ModelClass = { getAttributeTypeMap(): Attr[] }

const models = k8s as unknown as Record<string, ModelClass | undefined>

/** The OpenAPI model of a kind the stand-in serves (core Event is `CoreV1Event` in the generated code). */
export function modelOf(apiVersion: string, kind: string): string | undefined {
  const version = apiVersion.split('/').pop()!
  const name = `${version[0].toUpperCase()}${version.slice(1)}${kind}`
  if (typeof models[name]?.getAttributeTypeMap === 'function') return name
  if (typeof models[`Core${name}`]?.getAttributeTypeMap === 'function') return `Core${name}`
  return undefined
}

const attrCache = new Map<string, Map<string, string>>()
function attrs(model: string): Map<string, string> | undefined {
  let m = attrCache.get(model)
  if (!m) {
    const cls = models[model]
    if (typeof cls?.getAttributeTypeMap !== 'function') return undefined
    m = new Map(cls.getAttributeTypeMap().map((a) => [a.baseName, a.type]))
    attrCache.set(model, m)
  }
  return m
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)

/** One unknown field: `path` as the JSON decoder reports it (`spec.foo`, `containers[0].x`), `ssaPath` as structured-merge-diff does. */
export interface UnknownField {
  path: string
  ssaPath: string
  /** Segments, to drop the field from the object. */
  at: (string | number)[]
}

/** Patch-merge keys of associative lists (from the types' `patchMergeKey`/`listMapKeys` tags). */
export const LIST_KEYS: Record<string, string> = {
  containers: 'name',
  initContainers: 'name',
  ephemeralContainers: 'name',
  env: 'name',
  volumes: 'name',
  volumeMounts: 'mountPath',
  volumeDevices: 'devicePath',
  imagePullSecrets: 'name',
  ports: 'containerPort',
  conditions: 'type',
  ownerReferences: 'uid',
  hostAliases: 'ip',
}

/** The key of an associative list's item (`[name="seedops"]`), or undefined when the list is atomic. */
export function listKey(field: string, items: unknown[]): string | undefined {
  const k = LIST_KEYS[field]
  if (!k || !items.every(isObj)) return undefined
  // Services list ports keyed by `port`; containers by `containerPort`.
  const key = field === 'ports' && items.some((p) => (p as Record<string, unknown>).containerPort === undefined) ? 'port' : k
  return items.every((i) => (i as Record<string, unknown>)[key] !== undefined) ? key : undefined
}

function walk(value: unknown, type: string, path: string, ssa: string, at: (string | number)[], field: string, out: UnknownField[]): void {
  if (value === null || value === undefined) return
  const arr = /^Array<(.+)>$/.exec(type)
  if (arr) {
    if (!Array.isArray(value)) return
    const key = listKey(field, value)
    value.forEach((item, i) => walk(item, arr[1], `${path}[${i}]`, key ? `${ssa}[${key}=${JSON.stringify((item as Record<string, unknown>)[key])}]` : `${ssa}[${i}]`, [...at, i], field, out))
    return
  }
  const map = /^\{ \[key: string\]: (.+); \}$/.exec(type)
  if (map) {
    if (!isObj(value)) return
    for (const [k, v] of Object.entries(value)) walk(v, map[1], `${path}[${k}]`, `${ssa}.${k}`, [...at, k], k, out)
    return
  }
  const a = attrs(type)
  if (!a || !isObj(value)) return // primitives, IntOrString, any
  for (const [k, v] of Object.entries(value)) {
    const t = a.get(k)
    const p = path ? `${path}.${k}` : k
    if (t === undefined) out.push({ path: p, ssaPath: `${ssa}.${k}`, at: [...at, k] })
    else walk(v, t, p, `${ssa}.${k}`, [...at, k], k, out)
  }
}

/** Fields of `obj` its kind's OpenAPI schema does not declare. */
export function unknownFields(model: string, obj: unknown): UnknownField[] {
  const out: UnknownField[] = []
  walk(obj, model, '', '', [], '', out)
  return out
}

/** Removes the fields found by `unknownFields` (what the apiserver does under fieldValidation=Ignore/Warn). */
export function dropFields(obj: any, fields: UnknownField[]): void {
  for (const f of fields) {
    let cur = obj
    for (const s of f.at.slice(0, -1)) cur = cur?.[s]
    if (cur && typeof cur === 'object') delete cur[f.at[f.at.length - 1] as string]
  }
}

export interface Duplicate {
  /** `spec.schedule`, as the JSON decoder reports it. */
  path: string
  key: string
  line: number
}

export interface ParsedBody {
  value: any
  duplicates: Duplicate[]
}

/**
 * Parses a JSON or YAML body, keeping what a strict decoder reports: every key given twice in one
 * object (the last one wins, as in the apiserver's JSON decoder) with its path and line.
 */
export function parseWithDuplicates(text: string): ParsedBody {
  const lineCounter = new LineCounter()
  const doc = parseDocument(text, { uniqueKeys: false, lineCounter, version: '1.2' })
  if (doc.errors.length) throw new Error(doc.errors[0].message)
  const duplicates: Duplicate[] = []
  const visit = (n: Node | null | undefined, path: string) => {
    if (isMap(n)) {
      const seen = new Set<string>()
      for (const item of n.items) {
        if (!isPair(item)) continue
        const key = String(isScalar(item.key) ? item.key.value : item.key)
        const p = path ? `${path}.${key}` : key
        if (seen.has(key)) duplicates.push({ path: p, key, line: lineCounter.linePos((item.key as Node).range?.[0] ?? 0).line })
        seen.add(key)
        visit(item.value as Node, p)
      }
    } else if (isSeq(n)) {
      n.items.forEach((item, i) => visit(item as Node, `${path}[${i}]`))
    }
  }
  visit(doc.contents as Node, '')
  return { value: doc.toJS({ maxAliasCount: 100 }), duplicates }
}

/**
 * What a strict apiserver would refuse in a YAML file of manifests: for each document, its
 * duplicate keys and the fields its kind's OpenAPI schema does not declare. Kinds without a
 * schema here (custom resources, kustomize's own files) are returned in `skipped`.
 */
export function strictProblems(text: string): { problems: string[]; skipped: string[] } {
  const problems: string[] = []
  const skipped: string[] = []
  const docs = text.split(/^---\s*$/m).filter((d) => d.trim() && !/^\s*(#.*)?$/s.test(d.replace(/^\s*#.*$/gm, '')))
  for (const doc of docs) {
    const { value, duplicates } = parseWithDuplicates(doc)
    if (!value) continue
    const where = `${value.kind ?? '?'} ${value.metadata?.name ?? ''}`.trim()
    for (const d of duplicates) problems.push(`${where}: duplicate field "${d.path}"`)
    const model = typeof value.apiVersion === 'string' && typeof value.kind === 'string' ? modelOf(value.apiVersion, value.kind) : undefined
    if (!model || !/^(v1|[a-z0-9.]+\.k8s\.io\/v1|apps\/v1|batch\/v1)$/.test(value.apiVersion)) {
      skipped.push(`${value.apiVersion} ${value.kind}`)
      continue
    }
    for (const u of unknownFields(model, value)) problems.push(`${where}: unknown field "${u.path}"`)
  }
  return { problems, skipped }
}
