import http, { type IncomingHttpHeaders, type IncomingMessage } from 'node:http'
import https from 'node:https'
import { AppsV1Api, BatchV1Api, CoreV1Api, createConfiguration, KubeConfig, NetworkingV1Api, ServerConfiguration, type RequestContext, type ResponseContext } from '@kubernetes/client-node'

/**
 * The Kubernetes clients seedops uses, built from one KubeConfig. Commands build them with
 * `connect()` (flags.ts); tests build them against the stand-in. `--request-timeout` becomes an
 * abort signal on every request.
 */
export interface KubeClients {
  kc: KubeConfig
  core: CoreV1Api
  batch: BatchV1Api
  apps: AppsV1Api
  networking: NetworkingV1Api
  namespace: string
  /** Where the cluster is, for messages ("https://…" and the context name). */
  server: string
  context: string
  timeoutMs?: number
}

function timeoutMiddleware(timeoutMs: number | undefined) {
  return {
    pre: async (ctx: RequestContext) => {
      if (timeoutMs && timeoutMs > 0) ctx.setSignal(AbortSignal.timeout(timeoutMs))
      return ctx
    },
    post: async (ctx: ResponseContext) => ctx,
  }
}

export function makeClients(kc: KubeConfig, namespace: string, opts: { timeoutMs?: number } = {}): KubeClients {
  const cluster = kc.getCurrentCluster()
  if (!cluster) throw new Error('no current cluster in the kubeconfig')
  const config = createConfiguration({
    baseServer: new ServerConfiguration(cluster.server, {}),
    authMethods: { default: kc },
    promiseMiddleware: [timeoutMiddleware(opts.timeoutMs)],
  })
  return {
    kc,
    core: new CoreV1Api(config),
    batch: new BatchV1Api(config),
    apps: new AppsV1Api(config),
    networking: new NetworkingV1Api(config),
    namespace,
    server: cluster.server,
    context: kc.getCurrentContext(),
    timeoutMs: opts.timeoutMs,
  }
}

export interface RawResponse {
  status: number
  headers: IncomingHttpHeaders
  /** The body as a stream (for followed logs); `text()` reads it whole. */
  stream: IncomingMessage
  text(): Promise<string>
}

/**
 * A raw request with the kubeconfig's credentials (token, client certificate, CA), for what the
 * typed clients lack: streamed logs with errors we can see, and server-side apply.
 */
export async function kubeRequest(k: KubeClients, path: string, init: { method?: string; headers?: Record<string, string>; body?: string; signal?: AbortSignal } = {}): Promise<RawResponse> {
  const opts: https.RequestOptions = { headers: {} }
  await k.kc.applyToHTTPSOptions(opts)
  const url = new URL(k.server + path)
  const mod = url.protocol === 'http:' ? http : https
  const signal = init.signal ?? (k.timeoutMs ? AbortSignal.timeout(k.timeoutMs) : undefined)
  return new Promise((resolve, reject) => {
    const req = mod.request(url, { ...opts, method: init.method ?? 'GET', headers: { Accept: 'application/json', ...(opts.headers as Record<string, string>), ...init.headers }, signal }, (res) => {
      // A connection reset mid-body is seen by the reader as an incomplete body ('close' without
      // 'complete'); it must not also surface as an unhandled error.
      res.on('error', () => {})
      resolve({
        status: res.statusCode ?? 0,
        headers: res.headers,
        stream: res,
        text: () =>
          new Promise((ok, bad) => {
            let b = ''
            res.setEncoding('utf8')
            res.on('data', (d) => (b += d))
            res.on('end', () => ok(b))
            res.on('error', bad)
          }),
      })
    })
    req.on('error', reject)
    req.end(init.body)
  })
}
