import { listKey } from './schema.js'
import { StatusError, nowIso } from './store.js'

/**
 * Field ownership as the apiserver keeps it (structured-merge-diff): `metadata.managedFields`
 * holds, per manager and operation, the set of fields it owns in FieldsV1 form. An Update
 * (POST/PUT/merge/strategic/JSON patch) takes the fields it changed from everyone else; an Apply
 * owns exactly what it applied, conflicts with other owners of a field it would change (409),
 * and with force takes the field over.
 */

/** A path segment: a field name, or an associative-list item `{name: "x"}`, or a list index. */
type Seg = { f: string } | { k: Record<string, unknown> } | { i: number }
type Path = Seg[]

export interface ManagedEntry {
  manager: string
  operation: 'Apply' | 'Update'
  apiVersion: string
  time?: string
  fieldsType: 'FieldsV1'
  fieldsV1: Record<string, unknown>
  subresource?: string
}

const isObj = (v: unknown): v is Record<string, any> => typeof v === 'object' && v !== null && !Array.isArray(v)

/** What no manager owns: identity and server-set metadata, and status (owned through the status subresource). */
const SERVER_META = new Set(['name', 'namespace', 'uid', 'resourceVersion', 'generation', 'creationTimestamp', 'managedFields', 'selfLink', 'deletionTimestamp', 'deletionGracePeriodSeconds'])

function segKey(s: Seg): string {
  if ('f' in s) return `f:${s.f}`
  if ('k' in s) return `k:${JSON.stringify(s.k)}`
  return `i:${s.i}`
}

/** `.spec.jobTemplate.spec.template.spec.containers[name="seedops"].image`, as the apiserver prints a field path. */
export function printPath(p: Path): string {
  return p
    .map((s) => {
      if ('f' in s) return `.${s.f}`
      if ('i' in s) return `[${s.i}]`
      return `[${Object.entries(s.k)
        .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
        .join(',')}]`
    })
    .join('')
}

/** Every owned leaf of an object, with its value (lists without a merge key are one leaf; keyed items also own themselves). */
export function leaves(obj: any, top = true): Map<string, { path: Path; value: string }> {
  const out = new Map<string, { path: Path; value: string }>()
  const add = (path: Path, value: unknown) => out.set(path.map(segKey).join('\u0000'), { path, value: JSON.stringify(sortKeys(value)) })
  const visit = (v: unknown, path: Path, field: string) => {
    if (isObj(v)) {
      const entries = Object.entries(v).filter(([k, x]) => x !== undefined && !(path.length === 0 && top && (k === 'apiVersion' || k === 'kind' || k === 'status')) && !(path.length === 1 && 'f' in path[0] && path[0].f === 'metadata' && SERVER_META.has(k)))
      if (!Object.keys(v).length && path.length) return add(path, v)
      for (const [k, x] of entries) visit(x, [...path, { f: k }], k)
      return
    }
    if (Array.isArray(v)) {
      const key = listKey(field, v)
      if (!key) return add(path, v)
      for (const item of v) {
        const ip: Path = [...path, { k: { [key]: item[key] } }]
        add([...ip, { f: '.' }], true)
        visit(item, ip, '')
      }
      return
    }
    add(path, v)
  }
  visit(obj, [], '')
  return out
}

/** Key order is no difference in value. */
function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys)
  if (isObj(v)) return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortKeys(v[k])]))
  return v
}

/** FieldsV1 of a set of leaf paths: `{"f:spec":{"f:schedule":{}}}`, keyed items with `".": {}`. */
export function toFieldsV1(paths: Iterable<Path>): Record<string, unknown> {
  const root: Record<string, any> = {}
  for (const p of paths) {
    let cur = root
    for (const s of p) {
      const k = 'f' in s && s.f === '.' ? '.' : segKey(s)
      cur = cur[k] ??= {}
    }
  }
  return root
}

/** The leaf paths of a FieldsV1 document, keyed as `leaves()` keys them. */
export function fromFieldsV1(f: Record<string, unknown>): Map<string, Path> {
  const out = new Map<string, Path>()
  const visit = (node: Record<string, any>, path: Path) => {
    const keys = Object.keys(node)
    if (!keys.length) {
      out.set(path.map(segKey).join('\u0000'), path)
      return
    }
    for (const k of keys) {
      let seg: Seg
      if (k === '.') seg = { f: '.' }
      else if (k.startsWith('f:')) seg = { f: k.slice(2) }
      else if (k.startsWith('k:')) seg = { k: JSON.parse(k.slice(2)) }
      else seg = { i: Number(k.slice(2)) }
      visit(node[k], [...path, seg])
    }
  }
  visit(f, [])
  return out
}

function identity(e: ManagedEntry): string {
  return `${e.manager}\u0000${e.operation}\u0000${e.apiVersion}\u0000${e.subresource ?? ''}`
}

/** How the apiserver names a manager in a conflict (`printManager` in managedfields/internal/conflict.go). */
function printManager(e: ManagedEntry): string {
  let s = JSON.stringify(e.manager)
  if (e.subresource) s += ` with subresource ${JSON.stringify(e.subresource)}`
  return e.operation === 'Update' ? `${s} using ${e.apiVersion}` : s
}

/** Leaf keys whose value differs between two objects (added, removed or changed). */
function changed(before: any, after: any): Map<string, Path> {
  const a = before ? leaves(before) : new Map()
  const b = leaves(after)
  const out = new Map<string, Path>()
  for (const [k, v] of b) if (a.get(k)?.value !== v.value) out.set(k, v.path)
  for (const [k, v] of a) if (!b.has(k)) out.set(k, v.path)
  return out
}

function entriesOf(o: any): ManagedEntry[] {
  return ((o?.metadata?.managedFields ?? []) as ManagedEntry[]).map((e) => ({ ...e }))
}

function finish(o: any, entries: ManagedEntry[]): void {
  const kept = entries.filter((e) => Object.keys(e.fieldsV1).length)
  if (kept.length) o.metadata.managedFields = kept
  else delete o.metadata.managedFields
}

/** Takes `paths` away from every entry but `except`. */
function disown(entries: ManagedEntry[], paths: Map<string, Path>, except: string): void {
  for (const e of entries) {
    if (identity(e) === except) continue
    const own = fromFieldsV1(e.fieldsV1)
    let touched = false
    for (const k of paths.keys()) if (own.delete(k)) touched = true
    if (touched) e.fieldsV1 = toFieldsV1(own.values())
  }
}

/** An Update (create, replace or a non-apply patch) by `manager`: it takes over every field it changed. */
export function recordUpdate(before: any | undefined, after: any, manager: string, apiVersion: string, subresource?: string): void {
  const entries = before ? entriesOf(before) : []
  const diff = changed(before, after)
  if (!diff.size) {
    if (before) finish(after, entries)
    return
  }
  const me: ManagedEntry = { manager, operation: 'Update', apiVersion, time: nowIso(), fieldsType: 'FieldsV1', fieldsV1: {}, ...(subresource ? { subresource } : {}) }
  const id = identity(me)
  disown(entries, diff, id)
  const mine = entries.find((e) => identity(e) === id)
  const own = mine ? fromFieldsV1(mine.fieldsV1) : new Map<string, Path>()
  const now = leaves(after)
  for (const [k, p] of diff) if (now.has(k)) own.set(k, p)
  // Fields it owned that are gone from the object are no longer owned.
  for (const k of [...own.keys()]) if (!now.has(k)) own.delete(k)
  const entry = mine ?? me
  entry.fieldsV1 = toFieldsV1(own.values())
  entry.time = nowIso()
  finish(after, mine ? entries : [...entries, entry])
}

/**
 * An Apply by `manager` of `applied` onto `live` (already merged into `merged`): 409 when it changes
 * a field another manager owns, unless `force`; then removes the fields it applied last time and
 * no longer applies (when nobody else owns them), and records exactly the applied set as its own.
 */
export function recordApply(live: any | undefined, merged: any, applied: any, manager: string, apiVersion: string, force: boolean, subresource?: string): any {
  const entries = live ? entriesOf(live) : []
  const me: ManagedEntry = { manager, operation: 'Apply', apiVersion, time: nowIso(), fieldsType: 'FieldsV1', fieldsV1: {}, ...(subresource ? { subresource } : {}) }
  const id = identity(me)
  const appliedSet = new Map([...leaves(applied)].map(([k, v]) => [k, v.path]))
  const mine = entries.find((e) => identity(e) === id)
  const before = mine ? fromFieldsV1(mine.fieldsV1) : new Map<string, Path>()
  const othersOwn = (k: string) => entries.some((e) => identity(e) !== id && fromFieldsV1(e.fieldsV1).has(k))
  // Fields this manager applied last time and leaves out now are removed, unless someone else owns them.
  const pruned = [...before].filter(([k]) => !appliedSet.has(k) && !othersOwn(k)).map(([, p]) => p)
  const result = removePaths(merged, pruned)
  const diff = changed(live, result)
  const conflicts: { entry: ManagedEntry; path: Path }[] = []
  for (const e of entries) {
    if (identity(e) === id) continue
    const own = fromFieldsV1(e.fieldsV1)
    for (const [k, p] of diff) if (own.has(k) && appliedSet.has(k)) conflicts.push({ entry: e, path: p })
  }
  if (conflicts.length && !force) throw conflictError(conflicts)
  if (force) disown(entries, new Map(conflicts.map((c) => [c.path.map(segKey).join('\u0000'), c.path])), id)
  me.fieldsV1 = toFieldsV1(appliedSet.values())
  const rest = entries.filter((e) => identity(e) !== id)
  // The apiserver keeps an existing entry's place in the list.
  const idx = entries.findIndex((e) => identity(e) === id)
  const out = idx >= 0 ? [...rest.slice(0, idx), me, ...rest.slice(idx)] : [...rest, me]
  result.metadata ??= {}
  finish(result, out)
  return result
}

function removePaths(obj: any, paths: Path[]): any {
  const o = structuredClone(obj)
  for (const p of paths) {
    const segs = 'f' in p[p.length - 1] && (p[p.length - 1] as { f: string }).f === '.' ? p.slice(0, -1) : p
    let cur: any = o
    for (let i = 0; i < segs.length - 1 && cur !== undefined; i++) cur = step(cur, segs[i])
    const last = segs[segs.length - 1]
    if (cur === undefined) continue
    if ('f' in last) delete cur[last.f]
    else if ('k' in last && Array.isArray(cur)) {
      const idx = cur.findIndex((x) => Object.entries(last.k).every(([k, v]) => x?.[k] === v))
      if (idx >= 0) cur.splice(idx, 1)
    }
  }
  return o
}

function step(cur: any, s: Seg): any {
  if ('f' in s) return cur?.[s.f]
  if ('i' in s) return cur?.[s.i]
  return Array.isArray(cur) ? cur.find((x) => Object.entries(s.k).every(([k, v]) => x?.[k] === v)) : undefined
}

/** 409 as `NewConflictError` words it (managedfields/internal/conflict.go). */
function conflictError(conflicts: { entry: ManagedEntry; path: Path }[]): StatusError {
  const causes = conflicts.map((c) => ({ reason: 'FieldManagerConflict', message: `conflict with ${printManager(c.entry)}`, field: printPath(c.path) }))
  let message: string
  if (conflicts.length === 1) message = `Apply failed with 1 conflict: conflict with ${printManager(conflicts[0].entry)}: ${printPath(conflicts[0].path)}`
  else {
    const by = new Map<string, { entry: ManagedEntry; paths: string[] }>()
    for (const c of conflicts) {
      const k = identity(c.entry)
      if (!by.has(k)) by.set(k, { entry: c.entry, paths: [] })
      by.get(k)!.paths.push(printPath(c.path))
    }
    const lines: string[] = []
    for (const k of [...by.keys()].sort()) {
      lines.push(`conflicts with ${printManager(by.get(k)!.entry)}:`)
      for (const p of by.get(k)!.paths.sort()) lines.push(`- ${p}`)
    }
    message = `Apply failed with ${conflicts.length} conflicts: ${lines.join('\n')}`
  }
  return new StatusError(409, 'Conflict', message, { causes })
}
