import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import { createServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import { parse as parseYaml } from 'yaml'
import { applyDefaults, validate } from './admission.js'
import { LogStore } from './logs.js'
import { applyPatch, clone, jsonPatch, mergePatch, PatchError, strategicMergePatch } from './patch.js'
import { recordApply, recordUpdate } from './fields.js'
import { authorize, escalationDenied, forbiddenMessage, type Attributes, type UserInfo } from './rbac.js'
import { discoveryGroups, discoveryResourceList, findByKind, findResource, groupVersion, qualifiedName, RESOURCES, type ResourceType } from './resources.js'
import { labelSelectorFromObject, matchFields, matchLabels, parseFieldSelector, parseLabelSelector, SelectorError } from './selectors.js'
import { dropFields, modelOf, parseWithDuplicates, unknownFields, type UnknownField } from './schema.js'
import { StatusError, Store } from './store.js'

export interface RequestRecord {
  method: string
  path: string
  query: string
  user: string
  verb: string
  status: number
  contentType?: string
  accept?: string
  auth?: string
  /** Warnings sent back (fieldValidation=Warn: unknown or duplicate fields that were dropped). */
  warnings?: string[]
}

/** Faults the tests switch on to prove seedops copes (e.g. a log stream dropped mid-way). */
export interface Faults {
  /** Cut the next followed log stream after this many lines (once). */
  dropLogStreamAfterLines?: number
  /** Answer the next N writes to this resource with 409 Conflict. */
  conflicts?: { resource: string; remaining: number }
  /** Answer every API request this much later (a slow or overloaded apiserver). */
  delayMs?: number
  /** Answer the next `remaining` matching requests with an error status, as an overloaded or failing apiserver does. */
  errors?: ErrorFault[]
  /** Never answer the next `remaining` matching requests (an apiserver hanging past the client's timeout). */
  hangs?: RequestMatch & { remaining: number }
  /** End the next `remaining` watch streams after `afterEvents` events (an apiserver or load balancer closing them). */
  watchClose?: { afterEvents: number; remaining: number }
  /** Answer the next `remaining` watches from a resourceVersion with an ERROR event 410 "too old resource version". */
  watchGone?: { remaining: number }
  /** Cut log streams (followed or not) after `afterLines` lines, `remaining` times. */
  dropLogStreams?: { afterLines: number; remaining: number }
}

/** Which requests a fault hits: any, or only this verb (`get`, `create`, …) and/or resource (`jobs`, `pods/log`). */
export interface RequestMatch {
  verb?: string
  resource?: string
  /** Let this many matching requests through first (to hit a call in the middle of a command). */
  skip?: number
}

export interface ErrorFault extends RequestMatch {
  /** 429 TooManyRequests (API Priority and Fairness), 500 InternalError, 503 ServiceUnavailable, 504 Timeout. */
  status: 429 | 500 | 503 | 504
  remaining: number
  /** Sent as the `Retry-After` header and `details.retryAfterSeconds`, as the apiserver does. */
  retryAfterSeconds?: number
  /** Carry the request out, then answer with the error (a write that happened though the client saw a failure). */
  afterHandling?: boolean
}

const FAULT_STATUS: Record<ErrorFault['status'], [string, string]> = {
  429: ['TooManyRequests', 'Too many requests, please try again later.'],
  500: ['InternalError', 'Internal error occurred: etcdserver: request timed out'],
  503: ['ServiceUnavailable', 'the server is currently unable to handle the request'],
  504: ['Timeout', 'Timeout: request did not complete within the allotted timeout'],
}

interface Route {
  rt?: ResourceType
  namespace?: string
  name?: string
  subresource?: string
  discovery?: unknown
}

/** Who writes, as what field manager, and how strictly the body is decoded (the `fieldValidation` query parameter). */
interface WriteCtx {
  user: UserInfo
  manager: string
  validation: 'Strict' | 'Warn' | 'Ignore'
  /** Warnings for the response's `Warning` headers. */
  warnings: string[]
  /** Set for server-side apply: ownership is recorded by the apply itself. */
  applied?: boolean
}

/** The manager of a write without `fieldManager`: the user agent up to its first `/` (`managerOrUserAgent` in the apiserver). */
function managerOf(q: URLSearchParams, userAgent: string | undefined): string {
  return q.get('fieldManager') || (userAgent ?? '').split('/')[0].slice(0, 128)
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let b = ''
    req.setEncoding('utf8')
    req.on('data', (d) => (b += d))
    req.on('end', () => resolve(b))
    req.on('error', reject)
  })
}

function badRequest(message: string): StatusError {
  return new StatusError(400, 'BadRequest', message)
}

/**
 * A local Kubernetes API server for tests: discovery, CRUD with Status errors, selectors,
 * watch, the four patch types, dry-run, RBAC over stored Roles, pod logs (follow too), and a
 * job controller (see controller.ts). Plain HTTP on 127.0.0.1; bearer tokens name the user.
 */
export class ApiServer {
  readonly store = new Store()
  readonly logs = new LogStore()
  readonly requests: RequestRecord[] = []
  readonly faults: Faults = {}
  /** Every fault that fired, in order (`429 get cronjobs`, `drop pods/log after 3 lines`, …), for tests to check it hit. */
  readonly faultLog: string[] = []
  /** Responses to replace by an error once the request has been carried out (`afterHandling`). */
  private replaced = new WeakMap<ServerResponse, StatusError>()
  /** What GET /version answers; tests set an older server (e.g. 1.28, before native sidecars). */
  version = { major: '1', minor: '35', gitVersion: 'v1.35.0-seedops-standin' }
  private server?: Server
  private users = new Map<string, UserInfo>()
  /** Per object and field manager, what was last applied (to report managedFields). */
  url = ''

  constructor() {
    this.users.set('admin-token', { name: 'kubernetes-admin', groups: ['system:masters', 'system:authenticated'] })
  }

  /** A bearer token that authenticates as `user` (e.g. `system:serviceaccount:seedtest:seedops-operator`). */
  addToken(token: string, name: string, groups: string[] = []): void {
    this.users.set(token, { name, groups: [...groups, 'system:authenticated'] })
  }

  /** Listens on 127.0.0.1 over TLS (clients send bearer tokens only over TLS). */
  async listen(tls: { key: string; cert: string }): Promise<string> {
    this.server = createServer({ key: tls.key, cert: tls.cert }, (req, res) => {
      this.handle(req, res).catch((e) => {
        if (!res.headersSent) this.sendError(res, e instanceof StatusError ? e : new StatusError(500, 'InternalError', String((e as Error)?.stack ?? e)))
        else res.end()
      })
    })
    // Followed logs and watches hold connections open; don't let them keep the test alive.
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r))
    const port = (this.server.address() as AddressInfo).port
    this.url = `https://127.0.0.1:${port}`
    return this.url
  }

  async close(): Promise<void> {
    if (!this.server) return
    this.server.closeAllConnections()
    await new Promise<void>((r) => this.server!.close(() => r()))
  }

  private sendJson(res: ServerResponse, code: number, body: unknown) {
    const swap = this.replaced.get(res)
    if (swap && code < 400) {
      this.replaced.delete(res)
      return this.sendError(res, swap)
    }
    const s = JSON.stringify(body)
    res.writeHead(code, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(s), 'Audit-Id': 'standin' })
    res.end(s)
  }

  private sendError(res: ServerResponse, e: StatusError) {
    const after = e.details?.retryAfterSeconds
    if (typeof after === 'number') res.setHeader('Retry-After', String(after))
    this.sendJson(res, e.code, e.toStatus())
  }

  private authenticate(req: IncomingMessage): UserInfo {
    const h = req.headers.authorization
    if (!h) return { name: 'system:anonymous', groups: ['system:unauthenticated'] }
    const m = /^Bearer (.+)$/i.exec(h)
    const u = m && this.users.get(m[1].trim())
    if (!u) throw new StatusError(401, 'Unauthorized', 'Unauthorized')
    return u
  }

  private route(path: string): Route {
    const parts = path.split('/').filter(Boolean)
    let group = ''
    let version = ''
    let rest: string[]
    if (parts[0] === 'api') {
      if (parts.length === 1) return { discovery: { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: this.url.replace('https://', '') }] } }
      version = parts[1]
      rest = parts.slice(2)
    } else if (parts[0] === 'apis') {
      if (parts.length === 1) return { discovery: discoveryGroups() }
      group = parts[1]
      if (parts.length === 2) {
        const g = discoveryGroups().groups.find((x) => x.name === group)
        if (!g) throw new StatusError(404, 'NotFound', 'the server could not find the requested resource')
        return { discovery: { kind: 'APIGroup', apiVersion: 'v1', ...g } }
      }
      version = parts[2]
      rest = parts.slice(3)
    } else {
      throw new StatusError(404, 'NotFound', 'the server could not find the requested resource')
    }
    if (!RESOURCES.some((r) => r.group === group && r.version === version)) throw new StatusError(404, 'NotFound', 'the server could not find the requested resource')
    if (rest.length === 0) return { discovery: discoveryResourceList(group, version) }
    let namespace: string | undefined
    if (rest[0] === 'namespaces' && rest.length >= 3 && !(group === '' && ['status', 'finalize'].includes(rest[2]) && rest.length === 3)) {
      namespace = rest[1]
      rest = rest.slice(2)
    }
    const rt = findResource(group, version, rest[0])
    if (!rt) throw new StatusError(404, 'NotFound', 'the server could not find the requested resource')
    return { rt, namespace, name: rest[1], subresource: rest[2] }
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://standin')
    const q = url.searchParams
    const rec: RequestRecord = { method: req.method ?? 'GET', path: url.pathname, query: url.search, user: '', verb: '', status: 200, contentType: req.headers['content-type'], accept: req.headers.accept, auth: req.headers.authorization }
    this.requests.push(rec)
    res.on('finish', () => (rec.status = res.statusCode))
    // Clients hang up on followed logs and watches; a reset socket is normal here, not a test failure.
    req.on('error', () => {})
    res.on('error', () => {})
    req.socket.on('error', () => {})
    if (this.faults.delayMs) await new Promise((r) => setTimeout(r, this.faults.delayMs))
    try {
      if (url.pathname === '/version') {
        return this.sendJson(res, 200, { ...this.version, gitCommit: '0000000', gitTreeState: 'clean', buildDate: '2026-01-01T00:00:00Z', goVersion: 'go1.25', compiler: 'gc', platform: 'linux/amd64' })
      }
      if (url.pathname === '/healthz' || url.pathname === '/readyz' || url.pathname === '/livez') {
        res.writeHead(200, { 'Content-Type': 'text/plain' })
        return void res.end('ok')
      }
      if (url.pathname.startsWith('/openapi/v3')) return this.sendJson(res, 200, this.openapiV3(url.pathname))
      const user = this.authenticate(req)
      rec.user = user.name
      const r = this.route(url.pathname)
      if (r.discovery) return this.sendJson(res, 200, r.discovery)
      const rt = r.rt!
      if (rt.namespaced && r.namespace === undefined && req.method !== 'GET') throw new StatusError(404, 'NotFound', 'the server could not find the requested resource')
      const verb = this.verbOf(req.method ?? 'GET', r, q)
      rec.verb = verb
      if (this.injectFault(req, res, verb, r.subresource ? `${rt.resource}/${r.subresource}` : rt.resource)) return
      const attrs: Attributes = { verb, group: rt.group, resource: rt.resource, subresource: r.subresource, namespace: rt.namespaced ? r.namespace : undefined, name: r.name }
      if (rt.resource === 'selfsubjectaccessreviews') return await this.accessReview(req, res, user)
      if (!authorize(this.rbacSource(), user, attrs)) {
        throw new StatusError(403, 'Forbidden', forbiddenMessage(user, attrs, qualifiedName(rt)), { name: r.name, group: rt.group || undefined, kind: rt.resource })
      }
      if (rt.namespaced && r.namespace && !['get', 'list', 'watch', 'delete'].includes(verb) && !this.store.get(findResource('', 'v1', 'namespaces')!, undefined, r.namespace)) {
        throw new StatusError(404, 'NotFound', `namespaces "${r.namespace}" not found`, { name: r.namespace, kind: 'namespaces' })
      }
      const dryRun = q.getAll('dryRun').includes('All')
      const validation = (q.get('fieldValidation') ?? 'Warn') as WriteCtx['validation']
      if (!['Strict', 'Warn', 'Ignore'].includes(validation)) throw badRequest(`fieldValidation ${JSON.stringify(validation)} is invalid: valid values are Ignore, Warn, or Strict`)
      const ctx: WriteCtx = { user, manager: managerOf(q, req.headers['user-agent']), validation, warnings: [] }
      const send = (code: number, body: unknown) => {
        if (ctx.warnings.length) {
          rec.warnings = ctx.warnings
          res.setHeader('Warning', ctx.warnings.map((w) => `299 - ${JSON.stringify(w)}`))
        }
        this.sendJson(res, code, body)
      }
      switch (verb) {
        case 'get':
          if (r.subresource === 'log') return this.podLog(res, r.namespace!, r.name!, q)
          return this.sendJson(res, 200, this.store.mustGet(rt, r.namespace, r.name!))
        case 'list':
          return this.sendJson(res, 200, this.list(rt, r.namespace, q))
        case 'watch':
          return this.watch(req, res, rt, r.namespace, q)
        case 'create': {
          const body = this.decodeObject(rt, await readBody(req), req.headers['content-type'], ctx)
          return send(201, this.create(rt, r.namespace, body, dryRun, ctx))
        }
        case 'update': {
          const body = this.decodeObject(rt, await readBody(req), req.headers['content-type'], ctx)
          if (body.metadata?.name !== r.name) throw badRequest(`the name of the object (${body.metadata?.name}) does not match the name on the URL (${r.name})`)
          return send(200, this.update(rt, r.namespace, body, dryRun, ctx, r.subresource))
        }
        case 'patch': {
          const [code, body] = await this.patch(req, rt, r, q, dryRun, ctx)
          return send(code, body)
        }
        case 'delete':
          return this.sendJson(res, 200, this.store.delete(rt, r.namespace, r.name!, { dryRun, orphan: q.get('propagationPolicy') === 'Orphan' }))
        default:
          throw new StatusError(405, 'MethodNotAllowed', `the server does not allow this method on the requested resource`)
      }
    } catch (e) {
      if (e instanceof StatusError) return this.sendError(res, e)
      if (e instanceof SelectorError) return this.sendError(res, badRequest(e.message))
      if (e instanceof PatchError) return this.sendError(res, new StatusError(422, 'Invalid', e.message))
      throw e
    }
  }

  /** Switched-on faults for this request: true when the request is to go unanswered (hang). Errors before handling are thrown. */
  private injectFault(req: IncomingMessage, res: ServerResponse, verb: string, resource: string): boolean {
    const hits = (m: RequestMatch & { remaining: number }) => {
      if (m.remaining <= 0 || (m.verb && m.verb !== verb) || (m.resource && m.resource !== resource)) return false
      if (!m.skip) return true
      m.skip--
      return false
    }
    const h = this.faults.hangs
    if (h && hits(h)) {
      h.remaining--
      this.faultLog.push(`hang ${verb} ${resource}`)
      // Held until the client gives up (its socket closes) or the server stops.
      req.resume()
      return true
    }
    const f = this.faults.errors?.find(hits)
    if (!f) return false
    f.remaining--
    this.faultLog.push(`${f.status}${f.afterHandling ? ' after handling' : ''} ${verb} ${resource}`)
    const [reason, message] = FAULT_STATUS[f.status]
    const details = f.retryAfterSeconds !== undefined ? { retryAfterSeconds: f.retryAfterSeconds } : undefined
    const err = new StatusError(f.status, reason, message, details)
    if (!f.afterHandling) throw err
    this.replaced.set(res, err)
    return false
  }

  /**
   * Just enough OpenAPI v3 for kubectl to see that every resource's PATCH takes `fieldValidation`,
   * so it validates server-side (as against a real 1.35 server) instead of downloading schemas.
   */
  private openapiV3(path: string) {
    const gvs = [...new Set(RESOURCES.map((r) => groupVersion(r)))]
    const docPath = (gv: string) => (gv.includes('/') ? `apis/${gv}` : `api/${gv}`)
    if (path === '/openapi/v3' || path === '/openapi/v3/') {
      return { paths: Object.fromEntries(gvs.map((gv) => [docPath(gv), { serverRelativeURL: `/openapi/v3/${docPath(gv)}?hash=STANDIN${gv.replace(/\W/g, '')}` }])) }
    }
    const gv = gvs.find((g) => path === `/openapi/v3/${docPath(g)}`)
    if (!gv) throw new StatusError(404, 'NotFound', 'the server could not find the requested resource')
    const paths: Record<string, unknown> = {}
    for (const r of RESOURCES.filter((x) => groupVersion(x) === gv)) {
      const p = `/${docPath(gv)}/${r.namespaced ? 'namespaces/{namespace}/' : ''}${r.resource}/{name}`
      paths[p] = {
        patch: {
          operationId: `patch${r.kind}`,
          parameters: [{ name: 'fieldValidation', in: 'query', schema: { type: 'string', uniqueItems: true } }, { name: 'dryRun', in: 'query', schema: { type: 'string' } }],
          'x-kubernetes-action': 'patch',
          'x-kubernetes-group-version-kind': { group: r.group, version: r.version, kind: r.kind },
        },
      }
    }
    return { openapi: '3.0.0', info: { title: 'Kubernetes', version: 'v1.35.0' }, paths, components: { schemas: {} } }
  }

  private verbOf(method: string, r: Route, q: URLSearchParams): string {
    if (method === 'GET') {
      if (q.get('watch') === 'true' || q.get('watch') === '1') return 'watch'
      return r.name ? 'get' : 'list'
    }
    return ({ POST: 'create', PUT: 'update', PATCH: 'patch', DELETE: r.name ? 'delete' : 'deletecollection' } as Record<string, string>)[method] ?? method.toLowerCase()
  }

  private rbacSource() {
    const rbac = (res: string) => findResource('rbac.authorization.k8s.io', 'v1', res)!
    return {
      list: (res: 'roles' | 'rolebindings' | 'clusterroles' | 'clusterrolebindings', ns?: string) => this.store.list(rbac(res), ns),
      get: (res: 'roles' | 'clusterroles', ns: string | undefined, name: string) => this.store.get(rbac(res), ns, name),
    }
  }

  private async accessReview(req: IncomingMessage, res: ServerResponse, user: UserInfo) {
    const body = JSON.parse(await readBody(req))
    const ra = body.spec?.resourceAttributes ?? {}
    const allowed = authorize(this.rbacSource(), user, { verb: ra.verb, group: ra.group ?? '', resource: ra.resource, subresource: ra.subresource || undefined, namespace: ra.namespace || undefined, name: ra.name || undefined })
    this.sendJson(res, 201, { ...body, metadata: { creationTimestamp: null }, status: { allowed, ...(allowed ? { reason: 'RBAC: allowed by stand-in' } : {}) } })
  }

  private parseBody(text: string, contentType?: string): any {
    if (contentType?.includes('protobuf')) throw new StatusError(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/json, application/yaml`)
    try {
      return contentType?.includes('yaml') ? parseYaml(text) : JSON.parse(text)
    } catch (e) {
      throw badRequest(`error decoding request body: ${(e as Error).message}`)
    }
  }

  /**
   * Decodes a create/update body as the apiserver's strict decoder does: unknown fields (against the
   * kind's OpenAPI schema) and duplicate fields are a 400 under Strict, a Warning header under Warn
   * (the server's default), and silently dropped under Ignore.
   */
  private decodeObject(rt: ResourceType, text: string, contentType: string | undefined, ctx: WriteCtx): any {
    const { value, duplicates } = this.parseStrict(text, contentType)
    if (!value || typeof value !== 'object' || Array.isArray(value)) return this.parseBody(text, contentType)
    const unknown = this.unknownOf(rt, value)
    const errs = [...duplicates.map((d) => `duplicate field ${JSON.stringify(d.path)}`), ...unknown.map((u) => `unknown field ${JSON.stringify(u.path)}`)]
    this.strictOutcome(errs, ctx, (msg) => badRequest(`${rt.kind} in version ${JSON.stringify(rt.version)} cannot be handled as a ${rt.kind}: ${msg}`))
    dropFields(value, unknown)
    return value
  }

  private parseStrict(text: string, contentType?: string) {
    if (contentType?.includes('protobuf')) this.parseBody(text, contentType)
    try {
      return parseWithDuplicates(text)
    } catch (e) {
      throw badRequest(`error decoding request body: ${(e as Error).message}`)
    }
  }

  private unknownOf(rt: ResourceType, value: any): UnknownField[] {
    const model = modelOf(groupVersion(rt), rt.kind)
    return model ? unknownFields(model, value) : []
  }

  /** Strict → the error; Warn → one Warning per problem; Ignore → nothing. */
  private strictOutcome(errs: string[], ctx: WriteCtx, error: (msg: string) => StatusError): void {
    if (!errs.length) return
    if (ctx.validation === 'Strict') throw error(`strict decoding error: ${errs.join(', ')}`)
    if (ctx.validation === 'Warn') ctx.warnings.push(...errs)
  }

  /** The apiserver's RBAC registry refuses a Role or binding granting more than the writer holds. */
  private checkEscalation(rt: ResourceType, o: any, ctx: WriteCtx): void {
    if (rt.group !== 'rbac.authorization.k8s.io') return
    const denied = escalationDenied(this.rbacSource(), ctx.user, rt.kind, o, rt.namespaced ? o.metadata.namespace : undefined)
    if (denied) throw new StatusError(403, 'Forbidden', `${qualifiedName(rt)} ${JSON.stringify(o.metadata.name)} is forbidden: ${denied}`, { name: o.metadata.name, group: rt.group, kind: rt.resource })
  }

  private selectors(q: URLSearchParams) {
    return { labels: parseLabelSelector(q.get('labelSelector')), fields: parseFieldSelector(q.get('fieldSelector')) }
  }

  private list(rt: ResourceType, ns: string | undefined, q: URLSearchParams) {
    const s = this.selectors(q)
    const items = this.store
      .list(rt, ns)
      .filter((o) => matchLabels(s.labels, o.metadata.labels) && matchFields(s.fields, o))
      .map((o) => {
        // Items of a typed list carry no kind/apiVersion on the wire.
        delete o.kind
        delete o.apiVersion
        return o
      })
    return { kind: `${rt.kind}List`, apiVersion: groupVersion(rt), metadata: { resourceVersion: this.store.currentRv() }, items }
  }

  private watch(req: IncomingMessage, res: ServerResponse, rt: ResourceType, ns: string | undefined, q: URLSearchParams) {
    const s = this.selectors(q)
    const matches = (o: any) => (!ns || o.metadata.namespace === ns) && matchLabels(s.labels, o.metadata.labels) && matchFields(s.fields, o)
    res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' })
    const rv = q.get('resourceVersion')
    const gone = this.faults.watchGone
    if (gone && gone.remaining > 0 && rv && rv !== '0') {
      gone.remaining--
      this.faultLog.push(`410 watch ${rt.resource} from ${rv}`)
      // As the watch cache answers a resourceVersion it no longer holds: 200, then one ERROR event.
      const status = { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: `too old resource version: ${rv} (${this.store.currentRv()})`, reason: 'Expired', code: 410 }
      return void res.end(JSON.stringify({ type: 'ERROR', object: status }) + '\n')
    }
    const close = this.faults.watchClose
    const closeAfter = close && close.remaining > 0 ? (close.remaining--, close.afterEvents) : undefined
    let events = 0
    const send = (type: string, o: any) => {
      if (res.writableEnded) return
      res.write(JSON.stringify({ type, object: o }) + '\n')
      if (closeAfter !== undefined && ++events >= closeAfter) {
        this.faultLog.push(`close watch ${rt.resource} after ${events} events`)
        res.end()
      }
    }
    if (q.get('sendInitialEvents') === 'true') {
      // WatchList (kubectl wait, informers): the state as ADDED events, then a bookmark marking their end.
      for (const o of this.store.list(rt, ns)) if (matches(o)) send('ADDED', o)
      send('BOOKMARK', { kind: rt.kind, apiVersion: groupVersion(rt), metadata: { resourceVersion: this.store.currentRv(), annotations: { 'k8s.io/initial-events-end': 'true' } } })
    } else if (!rv || rv === '0') {
      for (const o of this.store.list(rt, ns)) if (matches(o)) send('ADDED', o)
    } else {
      for (const e of this.store.history) if (e.rt === rt && e.rv > Number(rv) && matches(e.object)) send(e.type, e.object)
    }
    const unsub = this.store.subscribe((e) => {
      if (e.rt === rt && matches(e.object)) send(e.type, e.object)
    })
    const timeout = Number(q.get('timeoutSeconds') ?? 0)
    const timer = timeout > 0 ? setTimeout(() => res.end(), timeout * 1000) : undefined
    const done = () => {
      unsub()
      if (timer) clearTimeout(timer)
    }
    req.on('close', done)
    res.on('close', done)
  }

  private create(rt: ResourceType, ns: string | undefined, body: any, dryRun: boolean, ctx: WriteCtx) {
    if (!body || typeof body !== 'object') throw badRequest('empty body')
    if (body.kind && body.kind !== rt.kind) throw badRequest(`the API version in the data (${body.apiVersion}) does not match the expected API version (${groupVersion(rt)})`)
    body.metadata ??= {}
    if (rt.namespaced) {
      if (body.metadata.namespace && body.metadata.namespace !== ns) throw badRequest('the namespace of the provided object does not match the namespace sent on the request')
      body.metadata.namespace = ns
    } else delete body.metadata.namespace
    delete body.metadata.uid
    delete body.metadata.resourceVersion
    delete body.metadata.creationTimestamp
    if (!body.metadata.name && body.metadata.generateName) {
      // Validate the name the server will generate.
    }
    return this.store.create(rt, body, {
      dryRun,
      prepare: (o) => {
        applyDefaults(rt, o, o.metadata.uid)
        if (rt.kind === 'Job' || rt.kind === 'CronJob') o.status ??= {}
        validate(rt, o)
        this.checkEscalation(rt, o, ctx)
        if (!ctx.applied) recordUpdate(undefined, o, ctx.manager, groupVersion(rt))
      },
    })
  }

  private maybeConflict(rt: ResourceType, name: string) {
    const c = this.faults.conflicts
    if (c && c.resource === rt.resource && c.remaining > 0) {
      c.remaining--
      throw new StatusError(409, 'Conflict', `Operation cannot be fulfilled on ${qualifiedName(rt)} "${name}": the object has been modified; please apply your changes to the latest version and try again`, { name, group: rt.group || undefined, kind: rt.resource })
    }
  }

  private update(rt: ResourceType, ns: string | undefined, body: any, dryRun: boolean, ctx: WriteCtx, subresource?: string, expectRv?: string) {
    this.maybeConflict(rt, body.metadata.name)
    if (rt.namespaced) body.metadata.namespace = ns
    const cur = this.store.mustGet(rt, ns, body.metadata.name)
    let next = body
    if (subresource === 'status') next = { ...cur, status: body.status }
    else if (cur.status !== undefined) next = { ...body, status: cur.status } // status is the controller's
    if (rt.kind === 'Secret' || rt.kind === 'Namespace' || rt.kind === 'Service' || rt.kind === 'Job') applyDefaults(rt, next, cur.metadata.uid)
    validate(rt, next)
    this.checkEscalation(rt, { ...next, metadata: { ...next.metadata, namespace: ns } }, ctx)
    if (subresource === 'status' || ctx.applied) next.metadata.managedFields = ctx.applied ? next.metadata.managedFields : cur.metadata.managedFields
    else recordUpdate(cur, next, ctx.manager, groupVersion(rt))
    return this.store.update(rt, next, { expectRv: expectRv ?? body.metadata.resourceVersion, dryRun })
  }

  private async patch(req: IncomingMessage, rt: ResourceType, r: Route, q: URLSearchParams, dryRun: boolean, ctx: WriteCtx): Promise<[number, unknown]> {
    const ct = (req.headers['content-type'] ?? '').split(';')[0].trim()
    const text = await readBody(req)
    if (ct === 'application/apply-patch+yaml') return this.serverSideApply(rt, r, text, q, dryRun, ctx)
    const cur = this.store.mustGet(rt, r.namespace, r.name!)
    let patch: any
    let duplicates: string[] = []
    try {
      patch = JSON.parse(text)
      if (ct !== 'application/json-patch+json') duplicates = parseWithDuplicates(text).duplicates.map((d) => `duplicate field ${JSON.stringify(d.path)}`)
    } catch (e) {
      throw badRequest(`error decoding patch: ${(e as Error).message}`)
    }
    let next: any
    if (ct === 'application/merge-patch+json') next = mergePatch(cur, patch)
    else if (ct === 'application/strategic-merge-patch+json') next = strategicMergePatch(cur, patch)
    else if (ct === 'application/json-patch+json') next = jsonPatch(cur, patch)
    else throw new StatusError(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json`)
    // The patched object is decoded strictly (jsonPatcher/smpPatcher in handlers/patch.go): a plain BadRequest, no kind prefix.
    const unknown = this.unknownOf(rt, next)
    this.strictOutcome([...duplicates, ...unknown.map((u) => `unknown field ${JSON.stringify(u.path)}`)], ctx, (msg) => badRequest(msg))
    dropFields(next, unknown)
    // A resourceVersion in the patch is a precondition.
    const expectRv = patch?.metadata?.resourceVersion ?? cur.metadata.resourceVersion
    next.metadata.resourceVersion = cur.metadata.resourceVersion
    return [200, this.update(rt, r.namespace, next, dryRun, ctx, r.subresource, expectRv)]
  }

  /**
   * Server-side apply: the applied configuration must type-check against the schema (always, as
   * structured-merge-diff does), may not change a field another manager owns (409) unless
   * `force=true`, and is then merged; duplicate keys fail only afterwards, under Strict.
   */
  private serverSideApply(rt: ResourceType, r: Route, text: string, q: URLSearchParams, dryRun: boolean, ctx: WriteCtx): [number, unknown] {
    if (!q.get('fieldManager')) throw new StatusError(422, 'Invalid', 'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch')
    let parsed
    try {
      parsed = parseWithDuplicates(text)
    } catch (e) {
      throw badRequest(`error decoding YAML: ${(e as Error).message}`)
    }
    const applied = parsed.value
    if (applied?.metadata?.name && applied.metadata.name !== r.name) throw badRequest(`the name of the object (${applied.metadata.name}) does not match the name on the URL (${r.name})`)
    const found = findByKind(applied?.apiVersion ?? '', applied?.kind ?? '')
    if (found !== rt) throw badRequest(`the API version in the data (${applied?.apiVersion}) does not match the expected API version (${groupVersion(rt)})`)
    if (applied.metadata?.managedFields !== undefined) throw badRequest('metadata.managedFields must be nil')
    // structured-merge-diff stops at the first undeclared field of each object.
    const seen = new Set<string>()
    const unknown = this.unknownOf(rt, applied).filter((u) => {
      const parent = u.ssaPath.slice(0, u.ssaPath.lastIndexOf('.'))
      if (seen.has(parent)) return false
      seen.add(parent)
      return true
    })
    if (unknown.length) {
      const where = `${rt.namespaced ? r.namespace : ''}/${r.name}; ${groupVersion(rt).includes('/') ? groupVersion(rt) : `/${groupVersion(rt)}`}, Kind=${rt.kind}`
      const errs = unknown.map((u) => `${u.ssaPath}: field not declared in schema`)
      // Not a Status error in the apiserver, so it answers 500 with reason "" (ErrorToAPIStatus).
      throw new StatusError(500, '', `failed to create typed patch object (${where}): ${errs.length === 1 ? errs[0] : ['errors:', ...errs.map((e) => `  ${e}`)].join('\n')}`)
    }
    const force = q.get('force') === 'true'
    const cur = this.store.get(rt, r.namespace, r.name!)
    const gv = groupVersion(rt)
    const applyCtx: WriteCtx = { ...ctx, manager: q.get('fieldManager')!, applied: true }
    const duplicatesAfter = () => {
      const d = parsed.duplicates
      if (!d.length || ctx.validation === 'Ignore') return
      const msg = `error converting YAML to JSON: yaml: unmarshal errors:\n${d.map((x) => `  line ${x.line}: key ${JSON.stringify(x.key)} already set in map`).join('\n')}`
      if (ctx.validation === 'Strict') throw badRequest(`error strict decoding YAML: ${msg}`)
      ctx.warnings.push(msg)
    }
    if (!cur) {
      // Apply on a missing object creates it, which also needs the create verb.
      const attrs: Attributes = { verb: 'create', group: rt.group, resource: rt.resource, namespace: rt.namespaced ? r.namespace : undefined }
      if (!authorize(this.rbacSource(), ctx.user, attrs)) throw new StatusError(403, 'Forbidden', forbiddenMessage(ctx.user, attrs, qualifiedName(rt)), { group: rt.group || undefined, kind: rt.resource })
      const body = recordApply(undefined, clone(applied), applied, applyCtx.manager, gv, force)
      duplicatesAfter()
      return [201, this.create(rt, r.namespace, body, dryRun, applyCtx)]
    }
    const merged = applyPatch(cur, applied)
    const next = recordApply(cur, merged, applied, applyCtx.manager, gv, force)
    duplicatesAfter()
    next.metadata.resourceVersion = cur.metadata.resourceVersion
    return [200, this.update(rt, r.namespace, next, dryRun, applyCtx, r.subresource, cur.metadata.resourceVersion)]
  }

  private podLog(res: ServerResponse, ns: string, name: string, q: URLSearchParams) {
    const pods = findResource('', 'v1', 'pods')!
    const pod = this.store.mustGet(pods, ns, name)
    const regular: string[] = (pod.spec.containers ?? []).map((c: any) => c.name)
    const init: string[] = (pod.spec.initContainers ?? []).map((c: any) => c.name)
    let container = q.get('container') ?? ''
    if (!container) {
      if (regular.length !== 1) {
        throw badRequest(`a container name must be specified for pod ${name}, choose one of: [${regular.join(' ')}]${init.length ? ` or one of the init containers: [${init.join(' ')}]` : ''}`)
      }
      container = regular[0]
    }
    if (!regular.includes(container) && !init.includes(container)) throw badRequest(`container ${container} is not valid for pod ${name}`)
    const statuses = [...(pod.status?.containerStatuses ?? []), ...(pod.status?.initContainerStatuses ?? [])]
    const st = statuses.find((s: any) => s.name === container)
    // previous=true reads the last terminated instance, which a waiting (CrashLoopBackOff) container has.
    if (!st || (st.state?.waiting && !(q.get('previous') === 'true' && st.lastState?.terminated))) {
      const reason = st?.state?.waiting?.reason ?? 'ContainerCreating'
      const why = reason === 'ImagePullBackOff' ? 'trying and failing to pull image' : reason === 'ErrImagePull' ? "image can't be pulled" : reason
      throw badRequest(`container "${container}" in pod "${name}" is waiting to start: ${why}`)
    }
    const follow = q.get('follow') === 'true'
    const timestamps = q.get('timestamps') === 'true'
    const tail = q.has('tailLines') ? Number(q.get('tailLines')) : -1
    const since = q.get('sinceTime') ? Date.parse(q.get('sinceTime')!) : q.get('sinceSeconds') ? Date.now() - Number(q.get('sinceSeconds')) * 1000 : undefined
    const fmt = (e: { ts: string; line: string }) => (timestamps ? `${e.ts} ${e.line}\n` : `${e.line}\n`)
    const { entries, done } = this.logs.read(ns, name, container)
    let first = entries.filter((e) => since === undefined || e.tsMs >= since)
    if (tail >= 0) first = first.slice(Math.max(0, first.length - tail))
    res.writeHead(200, { 'Content-Type': 'text/plain', 'Transfer-Encoding': 'chunked' })
    let sent = 0
    const dropAfter = follow ? this.faults.dropLogStreamAfterLines : undefined
    if (dropAfter !== undefined) this.faults.dropLogStreamAfterLines = undefined
    const drops = this.faults.dropLogStreams
    const write = (e: { ts: string; line: string }): boolean => {
      res.write(fmt(e))
      sent++
      const repeated = dropAfter === undefined && drops !== undefined && drops.remaining > 0 && sent >= drops.afterLines
      if (repeated) {
        drops.remaining--
        this.faultLog.push(`drop pods/log ${name} after ${sent} lines`)
      }
      if (repeated || (dropAfter !== undefined && sent >= dropAfter)) {
        // The connection drops (as when an apiserver or kubelet restarts), after what was written reached the client.
        setTimeout(() => res.socket?.destroy(), 20)
        return false
      }
      return true
    }
    for (const e of first) if (!write(e)) return
    if (!follow || done) return void res.end()
    let pos = entries.length
    const unsub = this.logs.onChange(ns, name, container, () => {
      const now = this.logs.read(ns, name, container)
      for (; pos < now.entries.length; pos++) if (!write(now.entries[pos])) return unsub()
      if (now.done) {
        unsub()
        res.end()
      }
    })
    res.on('close', unsub)
  }

  /** Pod selector of a job, for tests. */
  jobPods(ns: string, jobName: string): any[] {
    const job = this.store.get(findResource('batch', 'v1', 'jobs')!, ns, jobName)
    if (!job) return []
    const sel = labelSelectorFromObject(job.spec.selector)
    return this.store.list(findResource('', 'v1', 'pods')!, ns).filter((p) => matchLabels(sel, p.metadata.labels))
  }
}
