import { ApiException } from '@kubernetes/client-node'
import { EXIT, SeedopsError, redact } from '../errors/index.js'

/**
 * Kubernetes failures as SeedopsError, translated once: 403 names the missing verb and resource
 * and the `kubectl auth can-i` line to check it, 404 the list command to run, 409 conflicts are
 * retried by `withConflictRetry`, connection failures name the server and context.
 */
export interface KubeOp {
  verb: 'get' | 'list' | 'watch' | 'create' | 'patch' | 'update' | 'delete'
  /** Plural resource, with its group as kubectl spells it: `cronjobs.batch`, `secrets`, `pods/log`. */
  resource: string
  namespace?: string
  name?: string
}

interface Status {
  kind?: string
  message?: string
  reason?: string
  code?: number
  details?: { name?: string; kind?: string; group?: string; causes?: { field?: string; message?: string }[] }
}

function statusOf(e: unknown): { code: number; status: Status } | undefined {
  if (e instanceof ApiException || (e && typeof e === 'object' && 'code' in e && 'body' in e && typeof (e as { code: unknown }).code === 'number')) {
    const ex = e as { code: number; body: unknown }
    let body: Status = {}
    if (typeof ex.body === 'string') {
      try {
        body = JSON.parse(ex.body) as Status
      } catch {
        body = { message: ex.body }
      }
    } else if (ex.body && typeof ex.body === 'object') body = ex.body as Status
    return { code: ex.code, status: body }
  }
  return undefined
}

/** Error code for a failed request (the `Status.reason` when the server gives one). */
const NET = new Set(['ECONNREFUSED', 'ENOTFOUND', 'ETIMEDOUT', 'EHOSTUNREACH', 'ECONNRESET', 'EAI_AGAIN', 'CERT_HAS_EXPIRED', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'SELF_SIGNED_CERT_IN_CHAIN'])

function netCode(e: unknown): string | undefined {
  let cur: any = e
  for (let i = 0; cur && i < 5; i++) {
    if (typeof cur.code === 'string' && (NET.has(cur.code) || cur.code.startsWith('ERR_TLS') || cur.code.startsWith('CERT_'))) return cur.code
    if (cur.name === 'AbortError' || cur.name === 'TimeoutError') return 'TIMEOUT'
    cur = cur.cause
  }
  return undefined
}

export function kubectlNs(ns?: string): string {
  return ns ? ` -n ${ns}` : ''
}

/** " (gave up after 5 attempts in 12.3 s)" when client.ts retried the call (its RetryTrace on the error). */
function triedText(e: unknown): string {
  const t = (e as { retryTrace?: { attempts: number; elapsedMs: number; budgetExhausted?: boolean } } | undefined)?.retryTrace
  if (!t || (t.attempts < 2 && !t.budgetExhausted)) return ''
  return ` (gave up after ${t.attempts} attempt${t.attempts === 1 ? '' : 's'} in ${(t.elapsedMs / 1000).toFixed(1)} s${t.budgetExhausted ? ', the next wait would pass SEEDOPS_KUBE_RETRY_BUDGET_MS' : ''})`
}

const RETRY_HINT = 'The API server is overloaded or failing: try again later, or allow more time with SEEDOPS_KUBE_MAX_ATTEMPTS / SEEDOPS_KUBE_RETRY_BUDGET_MS'

export function translateKubeError(e: unknown, op: KubeOp, where: { server?: string; context?: string } = {}): SeedopsError {
  if (e instanceof SeedopsError) return e
  const ns = kubectlNs(op.namespace)
  const target = `${op.resource}${op.name ? ` "${op.name}"` : ''}${op.namespace ? ` in namespace ${op.namespace}` : ''}`
  const st = statusOf(e)
  if (st) {
    const msg = redact(st.status.message ?? `HTTP ${st.code}`)
    const data = { httpStatus: st.code, reason: st.status.reason, verb: op.verb, resource: op.resource, namespace: op.namespace, name: op.name }
    switch (st.code) {
      case 401:
        return new SeedopsError(`the cluster rejected the credentials (${where.context ?? 'current context'}): ${msg}`, {
          code: 'KUBE_UNAUTHORIZED',
          suggestions: ['Refresh your login for this cluster (token expired?)', 'Check: kubectl --context ' + (where.context ?? '<context>') + ' get ns'],
          data,
        })
      case 403: {
        const [res, sub] = op.resource.split('/')
        const canI = `kubectl auth can-i ${op.verb} ${sub ? `${res}/${sub}` : res}${ns}`
        return new SeedopsError(`not allowed to ${op.verb} ${target}: ${msg}`, {
          code: 'KUBE_FORBIDDEN',
          suggestions: [`Check the permission: ${canI}`, `Grant "${op.verb}" on "${op.resource}" to this identity (k8s/base/rbac-operator.yaml has the Role seedops needs)`],
          data,
        })
      }
      case 404: {
        const isNs = /^namespaces "/.test(st.status.message ?? '') && op.resource !== 'namespaces'
        const list = isNs ? 'kubectl get namespaces' : `kubectl get ${op.resource.split('/')[0]}${ns}`
        return new SeedopsError(`${isNs ? `namespace ${op.namespace} does not exist` : `${target} not found`}`, {
          code: isNs ? 'KUBE_NAMESPACE_NOT_FOUND' : 'KUBE_NOT_FOUND',
          suggestions: [`See what exists: ${list}`, ...(op.resource.startsWith('cronjobs') ? ['Deploy the CronJobs: seedops deploy'] : []), ...(isNs ? ['Pick another with -n/--namespace'] : [])],
          data,
        })
      }
      case 409:
        return new SeedopsError(`${target}: ${msg}`, { code: st.status.reason === 'AlreadyExists' ? 'KUBE_ALREADY_EXISTS' : 'KUBE_CONFLICT', suggestions: ['Run the command again'], data })
      case 422:
        return new SeedopsError(`the cluster rejected ${target}: ${msg}`, { code: 'KUBE_INVALID', exitCode: EXIT.FAILURE, data: { ...data, causes: st.status.details?.causes } })
      default:
        return new SeedopsError(`${op.verb} ${target} failed (HTTP ${st.code}${st.status.reason ? ` ${st.status.reason}` : ''}): ${msg}${triedText(e)}`, {
          code: 'KUBE_ERROR',
          suggestions: st.code === 429 || st.code >= 500 ? [RETRY_HINT] : [],
          data: { ...data, attempts: (e as { retryTrace?: { attempts: number } }).retryTrace?.attempts },
        })
    }
  }
  const nc = netCode(e)
  if (nc) {
    return new SeedopsError(nc === 'TIMEOUT' ? `${op.verb} ${target}: the cluster at ${where.server} did not answer in time${triedText(e)}` : `cannot reach the cluster at ${where.server} (${nc})${triedText(e)}`, {
      code: nc === 'TIMEOUT' ? 'KUBE_TIMEOUT' : 'KUBE_UNREACHABLE',
      suggestions: [`Check the context: kubectl config current-context (seedops used "${where.context}")`, 'Pick another with --context or --kubeconfig', ...(nc === 'TIMEOUT' ? ['Raise --request-timeout'] : [])],
      cause: e,
    })
  }
  return new SeedopsError(redact(`${op.verb} ${target} failed: ${e instanceof Error ? e.message : String(e)}`), { code: 'KUBE_ERROR', cause: e })
}

/** Runs one API call and translates its failure. */
export async function kubeCall<T>(k: { server?: string; context?: string }, op: KubeOp, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn()
  } catch (e) {
    throw translateKubeError(e, op, k)
  }
}

/** Re-reads and retries a read-modify-write when the server answers 409 Conflict (someone else wrote in between). */
export async function withConflictRetry<T>(fn: () => Promise<T>, attempts = 5): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await fn()
    } catch (e) {
      const conflict = (e instanceof SeedopsError && e.code === 'KUBE_CONFLICT') || (statusOf(e)?.code === 409 && statusOf(e)?.status.reason === 'Conflict')
      if (!conflict || i >= attempts) throw e
      await new Promise((r) => setTimeout(r, 50 * i))
    }
  }
}

export function isNotFound(e: unknown): boolean {
  return (e instanceof SeedopsError && e.code === 'KUBE_NOT_FOUND') || statusOf(e)?.code === 404
}
