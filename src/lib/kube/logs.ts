import type { V1Pod } from '@kubernetes/client-node'
import { kubeRequest, type KubeClients } from './client.js'
import { SeedopsError } from '../errors/index.js'
import { isNotFound, kubeCall, translateKubeError } from './errors.js'
import { jobPods, jobState, pollInterval, readJob } from './jobs.js'

/**
 * A job's logs, stern-style: a `+ pod › container` marker on stderr when a stream starts, log
 * lines on stdout. Follows pods that have not started yet and pods created by retries, and
 * resumes a dropped stream from the last timestamp seen (without repeating lines).
 */
export interface LogSink {
  line(text: string): void
  marker(text: string): void
}

export interface LogOptions {
  follow?: boolean
  tail?: number
  signal?: AbortSignal
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

function containerStarted(pod: V1Pod, name: string): 'waiting' | 'running' | 'terminated' | 'fatal' {
  const s = [...(pod.status?.containerStatuses ?? []), ...(pod.status?.initContainerStatuses ?? [])].find((c) => c.name === name)
  if (!s) return pod.status?.phase === 'Failed' || pod.status?.phase === 'Succeeded' ? 'terminated' : 'waiting'
  if (s.state?.terminated) return 'terminated'
  if (s.state?.running) return 'running'
  if (['ImagePullBackOff', 'InvalidImageName', 'CreateContainerConfigError'].includes(s.state?.waiting?.reason ?? '')) return 'fatal'
  return 'waiting'
}

/**
 * A log timestamp as a string that sorts in time order: the kubelet prints RFC3339Nano, which drops
 * trailing zeros of the fraction (`…:05.1Z` is later than `…:05.01Z` but sorts before it as text).
 */
export function timestampKey(ts: string): string {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?Z$/.exec(ts)
  return m ? `${m[1]}.${(m[2] ?? '').padEnd(9, '0')}Z` : ts
}

/**
 * What has been printed of one container, to resume after a drop without repeating or losing a
 * line. A resumed stream starts at `sinceTime`, which the apiserver passes to the kubelet in whole
 * seconds, so it repeats what came earlier in that second: lines before the last printed timestamp
 * are skipped, and of the lines carrying exactly that timestamp, as many as were printed.
 */
export class LogCursor {
  lastKey = ''
  lastTs = ''
  private atLast = 0
  private seenAtLast = 0

  /** A new stream (first or resumed) begins. */
  restart(): void {
    this.seenAtLast = 0
  }

  /** True when the line is new (and records it as printed). */
  accept(ts: string): boolean {
    if (!ts) return true
    const key = timestampKey(ts)
    if (this.lastKey && key < this.lastKey) return false
    if (key === this.lastKey) {
      if (this.seenAtLast < this.atLast) {
        this.seenAtLast++
        return false
      }
      this.atLast++
      this.seenAtLast++
      return true
    }
    this.lastKey = key
    this.lastTs = ts
    this.atLast = 1
    this.seenAtLast = 1
    return true
  }

  /** `sinceTime` for a resumed stream (the apiserver takes whole seconds). */
  sinceTime(): string | undefined {
    return this.lastTs ? this.lastTs.replace(/\.\d+Z$/, 'Z') : undefined
  }
}

/** Resumed streams in a row that may drop before a new line, before following gives up (it would repeat forever). */
const MAX_FRUITLESS_RESUMES = 10

/** Streams one container; returns when the container is done (or, without follow, when the server stops sending). */
async function streamContainer(k: KubeClients, pod: string, container: string, sink: LogSink, opts: LogOptions): Promise<void> {
  const cursor = new LogCursor()
  const op = { verb: 'get' as const, resource: 'pods/log', namespace: k.namespace, name: pod }
  let first = true
  let failures = 0
  let fruitless = 0
  for (;;) {
    const q = new URLSearchParams({ container, timestamps: 'true' })
    if (opts.follow) q.set('follow', 'true')
    const since = cursor.sinceTime()
    if (since) q.set('sinceTime', since)
    else if (opts.tail !== undefined && opts.tail >= 0) q.set('tailLines', String(opts.tail))
    const path = `/api/v1/namespaces/${encodeURIComponent(k.namespace)}/pods/${encodeURIComponent(pod)}/log?${q}`
    let res
    try {
      res = await kubeRequest(k, path, { signal: opts.signal, headers: { Accept: '*/*' }, streaming: true })
      failures = 0
    } catch (e) {
      if (opts.signal?.aborted) return
      // A follow survives the API server going away for a moment (a few tries, then give up).
      if (opts.follow && ++failures <= 5) {
        sink.marker(`- ${pod} › ${container} (connection lost, retrying)`)
        await sleep(pollInterval() * failures)
        continue
      }
      throw translateKubeError(e, op, k)
    }
    if (res.status === 400 && opts.follow) {
      // "container … is waiting to start": not yet; try again.
      await res.text()
      await sleep(pollInterval())
      continue
    }
    if (res.status !== 200) {
      const body = await res.text()
      throw translateKubeError({ code: res.status, body }, op, k)
    }
    if (first) sink.marker(`+ ${pod} › ${container}`)
    first = false
    cursor.restart()
    let buf = ''
    let printed = 0
    const ended = await new Promise<boolean>((resolve) => {
      res.stream.setEncoding('utf8')
      res.stream.on('data', (d: string) => {
        buf += d
        let i
        while ((i = buf.indexOf('\n')) >= 0) {
          const raw = buf.slice(0, i)
          buf = buf.slice(i + 1)
          const sp = raw.indexOf(' ')
          const ts = sp > 0 ? raw.slice(0, sp) : ''
          if (!cursor.accept(ts)) continue
          printed++
          sink.line(sp > 0 ? raw.slice(sp + 1) : raw)
        }
      })
      res.stream.on('end', () => resolve(res.stream.complete))
      res.stream.on('error', () => resolve(false))
      res.stream.on('aborted', () => resolve(false))
      res.stream.on('close', () => resolve(res.stream.complete))
    })
    if (opts.signal?.aborted) return
    if (ended && !opts.follow) return
    // Dropped (with or without follow), or a followed stream ended: ask the pod whether it is done.
    if (!ended) {
      fruitless = printed ? 0 : fruitless + 1
      if (fruitless > MAX_FRUITLESS_RESUMES) {
        throw new SeedopsError(`the log stream of ${pod} › ${container} dropped ${fruitless} times in a row before a new line (last line printed at ${cursor.lastTs || 'the start'})`, {
          code: 'KUBE_LOG_STREAM',
          suggestions: [`Read the rest once the cluster is stable: seedops jobs logs <job> -n ${k.namespace}`, `Or: kubectl logs ${pod} -c ${container} -n ${k.namespace} --since-time ${cursor.sinceTime() ?? ''}`],
        })
      }
      sink.marker(`- ${pod} › ${container} (stream dropped, resuming from ${cursor.lastTs || 'the start'})`)
      if (!opts.follow) continue
    }
    const p = await kubeCall(k, { verb: 'get', resource: 'pods', namespace: k.namespace, name: pod }, () => k.core.readNamespacedPod({ name: pod, namespace: k.namespace })).catch((e) => {
      // Deleted (the Job's TTL, a cleanup): nothing more to read. Any other failure is reported, not taken for the end.
      if (isNotFound(e)) return undefined
      throw e
    })
    if (!p) return
    const st = containerStarted(p, container)
    if (ended && st === 'terminated') return
    if (st === 'terminated') {
      // The container is done: one last read without follow picks up what the drop cut off.
      opts = { ...opts, follow: false }
      continue
    }
    await sleep(pollInterval() * Math.min(1 + fruitless, 5))
  }
}

/** Logs of every pod of a job (retries included), following until the job finishes when `follow`. */
export async function jobLogs(k: KubeClients, jobName: string, sink: LogSink, opts: LogOptions = {}): Promise<{ pods: string[] }> {
  const seen = new Set<string>()
  const running: Promise<void>[] = []
  for (;;) {
    const job = await readJob(k, jobName)
    const pods = await jobPods(k, job)
    for (const p of pods) {
      const name = p.metadata!.name!
      if (seen.has(name)) continue
      const native = new Set((p.spec?.initContainers ?? []).filter((c) => c.restartPolicy === 'Always').map((c) => c.name))
      const containers = (p.spec?.containers ?? []).map((c) => c.name).filter((c) => !native.has(c))
      if (opts.follow) {
        // Wait for it to start, unless it never will (image pull), then stream.
        const st = containers.map((c) => containerStarted(p, c))
        if (st.includes('fatal')) continue
        if (st.every((s) => s === 'waiting')) continue
      }
      seen.add(name)
      const streams = containers.map((c) => streamContainer(k, name, c, sink, opts))
      if (opts.follow) running.push(...streams)
      else await Promise.all(streams)
    }
    const state = jobState(job)
    if (!opts.follow || opts.signal?.aborted) break
    if (state === 'succeeded' || state === 'failed') {
      await Promise.all(running)
      // A retry pod may have appeared between our list and the job finishing.
      const again = await jobPods(k, job)
      if (again.every((p) => seen.has(p.metadata!.name!) || containerStarted(p, p.spec!.containers[0].name) === 'fatal')) break
      continue
    }
    await sleep(pollInterval())
  }
  await Promise.all(running)
  return { pods: [...seen] }
}
