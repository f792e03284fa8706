import { randomBytes, randomUUID } from 'node:crypto'
import { clone } from './patch.js'
import { groupVersion, qualifiedName, RESOURCES, type ResourceType } from './resources.js'

export type WatchType = 'ADDED' | 'MODIFIED' | 'DELETED'
export interface StoreEvent {
  type: WatchType
  rt: ResourceType
  object: any
  rv: number
}

/** An apiserver error as a `Status` body. */
export class StatusError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message)
  }
  toStatus() {
    return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: this.message, reason: this.reason, ...(this.details ? { details: this.details } : {}), code: this.code }
  }
}

export function notFound(rt: ResourceType, name: string): StatusError {
  return new StatusError(404, 'NotFound', `${qualifiedName(rt)} "${name}" not found`, { name, group: rt.group || undefined, kind: rt.resource })
}

export function nowIso(): string {
  return new Date().toISOString().replace(/\.\d{3}Z$/, 'Z')
}

export function randomSuffix(n = 5): string {
  // The apiserver's generateName alphabet: no vowels, no confusable digits.
  const alphabet = 'bcdfghjklmnpqrstvwxz2456789'
  const bytes = randomBytes(n)
  return [...bytes].map((b) => alphabet[b % alphabet.length]).join('')
}

const key = (rt: ResourceType, ns: string | undefined, name: string) => `${rt.group}|${rt.resource}|${ns ?? ''}|${name}`

/** Objects by resource, namespace and name, with one resourceVersion counter and an event history for watches. */
export class Store {
  /** Where creationTimestamp comes from: the stand-in's clock (real time until a test moves it). */
  now: () => Date = () => new Date()
  private rv = 1000
  private objects = new Map<string, any>()
  readonly history: StoreEvent[] = []
  private listeners = new Set<(e: StoreEvent) => void>()

  currentRv(): string {
    return String(this.rv)
  }

  subscribe(fn: (e: StoreEvent) => void): () => void {
    this.listeners.add(fn)
    return () => this.listeners.delete(fn)
  }

  get(rt: ResourceType, ns: string | undefined, name: string): any | undefined {
    const o = this.objects.get(key(rt, rt.namespaced ? ns : undefined, name))
    return o && clone(o)
  }

  mustGet(rt: ResourceType, ns: string | undefined, name: string): any {
    const o = this.get(rt, ns, name)
    if (!o) throw notFound(rt, name)
    return o
  }

  list(rt: ResourceType, ns?: string): any[] {
    const prefix = `${rt.group}|${rt.resource}|${rt.namespaced && ns ? ns : ''}|`
    const all = rt.namespaced && !ns ? `${rt.group}|${rt.resource}|` : prefix
    return [...this.objects.entries()]
      .filter(([k]) => k.startsWith(all))
      .map(([, v]) => clone(v))
      .sort((a, b) => (a.metadata.namespace ?? '').localeCompare(b.metadata.namespace ?? '') || a.metadata.name.localeCompare(b.metadata.name))
  }

  private emit(type: WatchType, rt: ResourceType, object: any) {
    const e = { type, rt, object: clone(object), rv: Number(object.metadata.resourceVersion) }
    this.history.push(e)
    if (this.history.length > 5000) this.history.splice(0, 1000)
    for (const l of this.listeners) l(e)
  }

  /** Stores a new object: fills uid, resourceVersion, creationTimestamp; 409 when the name is taken. */
  create(rt: ResourceType, obj: any, opts: { dryRun?: boolean; prepare?: (o: any) => void } = {}): any {
    const o = clone(obj)
    o.apiVersion = groupVersion(rt)
    o.kind = rt.kind
    o.metadata ??= {}
    if (!o.metadata.name && o.metadata.generateName) o.metadata.name = o.metadata.generateName + randomSuffix()
    const k = key(rt, rt.namespaced ? o.metadata.namespace : undefined, o.metadata.name)
    if (this.objects.has(k)) {
      throw new StatusError(409, 'AlreadyExists', `${qualifiedName(rt)} "${o.metadata.name}" already exists`, { name: o.metadata.name, group: rt.group || undefined, kind: rt.resource })
    }
    o.metadata.uid = randomUUID()
    o.metadata.creationTimestamp = this.now().toISOString().replace(/\.\d{3}Z$/, 'Z')
    if (rt.resource !== 'pods' && rt.resource !== 'events' && o.spec !== undefined) o.metadata.generation = 1
    opts.prepare?.(o)
    if (opts.dryRun) return o
    o.metadata.resourceVersion = String(++this.rv)
    this.objects.set(k, o)
    this.emit('ADDED', rt, o)
    return clone(o)
  }

  /**
   * Replaces an object. With `expectRv` a stale resourceVersion is a 409 Conflict, as for a PUT.
   * An update that changes nothing keeps the resourceVersion (the apiserver skips no-op writes).
   */
  update(rt: ResourceType, obj: any, opts: { expectRv?: string; dryRun?: boolean } = {}): any {
    const ns = rt.namespaced ? obj.metadata.namespace : undefined
    const k = key(rt, ns, obj.metadata.name)
    const cur = this.objects.get(k)
    if (!cur) throw notFound(rt, obj.metadata.name)
    if (opts.expectRv && opts.expectRv !== cur.metadata.resourceVersion) {
      throw new StatusError(
        409,
        'Conflict',
        `Operation cannot be fulfilled on ${qualifiedName(rt)} "${obj.metadata.name}": the object has been modified; please apply your changes to the latest version and try again`,
        { name: obj.metadata.name, group: rt.group || undefined, kind: rt.resource },
      )
    }
    const o = clone(obj)
    o.apiVersion = groupVersion(rt)
    o.kind = rt.kind
    // Immutable metadata stays the server's.
    for (const f of ['uid', 'creationTimestamp', 'namespace', 'name', 'generation'] as const) o.metadata[f] = cur.metadata[f]
    o.metadata.resourceVersion = cur.metadata.resourceVersion
    if (sameObject(cur, o)) return clone(cur)
    if (cur.metadata.generation !== undefined && JSON.stringify(cur.spec) !== JSON.stringify(o.spec)) o.metadata.generation = cur.metadata.generation + 1
    if (opts.dryRun) return o
    o.metadata.resourceVersion = String(++this.rv)
    this.objects.set(k, o)
    this.emit('MODIFIED', rt, o)
    return clone(o)
  }

  delete(rt: ResourceType, ns: string | undefined, name: string, opts: { dryRun?: boolean; orphan?: boolean } = {}): any {
    const k = key(rt, rt.namespaced ? ns : undefined, name)
    const cur = this.objects.get(k)
    if (!cur) throw notFound(rt, name)
    if (opts.dryRun) return clone(cur)
    this.objects.delete(k)
    cur.metadata.resourceVersion = String(++this.rv)
    this.emit('DELETED', rt, cur)
    // Garbage collection of dependents (background propagation, done at once).
    if (!opts.orphan) {
      for (const [dk, dep] of [...this.objects.entries()]) {
        if ((dep.metadata.ownerReferences ?? []).some((r: any) => r.uid === cur.metadata.uid)) {
          const drt = RESOURCES.find((r) => dk.startsWith(`${r.group}|${r.resource}|`))!
          this.delete(drt, dep.metadata.namespace, dep.metadata.name)
        }
      }
      if (rt.resource === 'namespaces') {
        for (const [dk, dep] of [...this.objects.entries()]) {
          if (dep.metadata.namespace === name) {
            const drt = RESOURCES.find((r) => dk.startsWith(`${r.group}|${r.resource}|`))!
            if (this.objects.has(dk)) this.delete(drt, name, dep.metadata.name)
          }
        }
      }
    }
    return clone(cur)
  }
}

/** Without what a no-op write may change: the resourceVersion and the managers' timestamps (the apiserver skips such writes). */
function strip(o: any) {
  const c = clone(o)
  delete c.metadata.resourceVersion
  for (const m of c.metadata.managedFields ?? []) delete m.time
  return c
}

export function sameObject(a: any, b: any): boolean {
  return JSON.stringify(sortKeys(strip(a))) === JSON.stringify(sortKeys(strip(b)))
}

function sortKeys(v: any): any {
  if (Array.isArray(v)) return v.map(sortKeys)
  if (v && typeof v === 'object') return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortKeys(v[k])]))
  return v
}
