/**
 * The four patch types the apiserver accepts, for the fields seedops and the tests use:
 * JSON merge patch (RFC 7386), strategic merge patch (lists of containers, env, ports, volumes…
 * merged by their key), JSON patch (RFC 6902) and server-side apply (merge of the applied
 * configuration into the live object, lists merged by key like strategic merge).
 */
import { LIST_KEYS } from './schema.js'

type Json = any

const isObj = (v: unknown): v is Record<string, Json> => typeof v === 'object' && v !== null && !Array.isArray(v)

export function clone<T>(v: T): T {
  return v === undefined ? v : JSON.parse(JSON.stringify(v))
}

export function mergePatch(target: Json, patch: Json): Json {
  if (!isObj(patch)) return clone(patch)
  const out: Record<string, Json> = isObj(target) ? { ...target } : {}
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k]
    else out[k] = mergePatch(out[k], v)
  }
  return out
}

function strategicList(field: string, live: Json[] | undefined, patch: Json[], deleteNulls: boolean): Json[] {
  // The same merge keys the schema gives server-side apply (lists not there, e.g. tolerations, are atomic).
  const key = LIST_KEYS[field]
  if (!key || !Array.isArray(live) || !patch.every(isObj)) return clone(patch.filter((p) => !(isObj(p) && p.$patch)))
  // Services list ports keyed by `port`; pods by `containerPort`.
  const k = field === 'ports' && patch.some((p) => p.port !== undefined && p.containerPort === undefined) ? 'port' : key
  const out = clone(live)
  for (const item of patch) {
    if (item.$patch === 'replace') return clone(patch.filter((p) => p.$patch !== 'replace'))
    const idx = out.findIndex((x) => isObj(x) && x[k] === item[k])
    if (item.$patch === 'delete') {
      if (idx >= 0) out.splice(idx, 1)
      continue
    }
    if (idx >= 0) out[idx] = strategic(out[idx], item, deleteNulls)
    else out.push(strategic(undefined, item, deleteNulls))
  }
  return out
}

function strategic(target: Json, patch: Json, deleteNulls: boolean): Json {
  if (!isObj(patch)) return clone(patch)
  if (patch.$patch === 'replace') {
    const { $patch: _p, ...rest } = patch
    return clone(rest)
  }
  const out: Record<string, Json> = isObj(target) ? { ...target } : {}
  for (const [k, v] of Object.entries(patch)) {
    if (k === '$patch' || k === '$retainKeys' || k.startsWith('$setElementOrder')) continue
    if (v === null) {
      if (deleteNulls) delete out[k]
      continue
    }
    if (Array.isArray(v)) out[k] = strategicList(k, out[k], v, deleteNulls)
    else out[k] = strategic(out[k], v, deleteNulls)
  }
  return out
}

export function strategicMergePatch(target: Json, patch: Json): Json {
  return strategic(target, patch, true)
}

/** Server-side apply, simplified: the applied configuration wins field by field; fields it omits stay. */
export function applyPatch(target: Json, applied: Json): Json {
  return strategic(target, applied, false)
}

export class PatchError extends Error {}

function pointer(path: string): string[] {
  if (path === '') return []
  if (!path.startsWith('/')) throw new PatchError(`invalid JSON pointer ${path}`)
  return path.slice(1).split('/').map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'))
}

export function jsonPatch(target: Json, ops: { op: string; path: string; value?: Json; from?: string }[]): Json {
  let doc = clone(target)
  const parentOf = (parts: string[]) => {
    let cur = doc
    for (const p of parts.slice(0, -1)) {
      cur = Array.isArray(cur) ? cur[Number(p)] : cur?.[p]
      if (cur === undefined) throw new PatchError(`doc is missing path: ${'/' + parts.join('/')}`)
    }
    return cur
  }
  for (const op of ops) {
    const parts = pointer(op.path)
    const last = parts[parts.length - 1]
    if (op.op === 'test') {
      let cur = doc
      for (const p of parts) cur = cur?.[p]
      if (JSON.stringify(cur) !== JSON.stringify(op.value)) throw new PatchError(`testing value ${op.path} failed`)
      continue
    }
    if (parts.length === 0) {
      if (op.op === 'add' || op.op === 'replace') doc = clone(op.value)
      continue
    }
    const parent = parentOf(parts)
    if (op.op === 'add') {
      if (Array.isArray(parent)) parent.splice(last === '-' ? parent.length : Number(last), 0, clone(op.value))
      else parent[last] = clone(op.value)
    } else if (op.op === 'replace') {
      if (!(last in parent)) throw new PatchError(`replace operation does not apply: doc is missing key: ${op.path}`)
      parent[last] = clone(op.value)
    } else if (op.op === 'remove') {
      if (!(last in parent)) throw new PatchError(`remove operation does not apply: doc is missing path: "${op.path}"`)
      if (Array.isArray(parent)) parent.splice(Number(last), 1)
      else delete parent[last]
    } else {
      throw new PatchError(`unsupported JSON patch op ${op.op}`)
    }
  }
  return doc
}
