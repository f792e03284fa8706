import type { V1Pod } from '@kubernetes/client-node'
import { kubeRequest, type KubeClients } from './client.js'
import { translateKubeError } from './errors.js'
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

/** Streams one container; returns when the container is done (or, without follow, when the server stops sending). */
async function streamContainer(k: KubeClients, pod: string, container: string, sink: LogSink, opts: LogOptions): Promise<void> {
  let lastTs = ''
  let first = true
  let failures = 0
  for (;;) {
    const q = new URLSearchParams({ container, timestamps: 'true' })
    if (opts.follow) q.set('follow', 'true')
    if (lastTs) q.set('sinceTime', lastTs.replace(/\.\d+Z$/, 'Z'))
    else if (opts.tail !== undefined && opts.tail >= 0) q.set('tailLines', String(opts.tail))
    const path = `/api/v1/namespaces/${encodeURIComponent(k.namespace)}/pods/${encodeURIComponent(pod)}/log?${q}`
    let res
    try {
      res = await kubeRequest(k, path, { signal: opts.signal, headers: { Accept: '*/*' } })
      failures = 0
    } catch (e) {
      if (opts.signal?.aborted) return
      // A follow survives the API server going away for a moment (a few tries, then give up).
      if (opts.follow && ++failures <= 5) {
        sink.marker(`- ${pod} › ${container} (connection lost, retrying)`)
        await sleep(pollInterval() * failures)
        continue
      }
      throw translateKubeError(e, { verb: 'get', resource: 'pods/log', namespace: k.namespace, name: pod }, k)
    }
    if (res.status === 400 && opts.follow) {
      // "container … is waiting to start": not yet; try again.
      await res.text()
      await sleep(pollInterval())
      continue
    }
    if (res.status !== 200) {
      const body = await res.text()
      throw translateKubeError({ code: res.status, body }, { verb: 'get', resource: 'pods/log', namespace: k.namespace, name: pod }, k)
    }
    if (first) sink.marker(`+ ${pod} › ${container}`)
    first = false
    let buf = ''
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
          // After a resume, sinceTime (whole seconds) repeats lines we already printed.
          if (ts && lastTs && ts <= lastTs) continue
          if (ts) lastTs = ts
          sink.line(sp > 0 ? raw.slice(sp + 1) : raw)
        }
      })
      res.stream.on('end', () => resolve(res.stream.complete))
      res.stream.on('error', () => resolve(false))
      res.stream.on('aborted', () => resolve(false))
      res.stream.on('close', () => resolve(res.stream.complete))
    })
    if (!opts.follow || opts.signal?.aborted) return
    // Ended: finished, or the connection dropped. Ask the pod which.
    const p = await k.core.readNamespacedPod({ name: pod, namespace: k.namespace }).catch(() => undefined)
    if (!p) return
    const st = containerStarted(p, container)
    if (ended && st === 'terminated') return
    if (!ended) sink.marker(`- ${pod} › ${container} (stream dropped, resuming from ${lastTs || 'the start'})`)
    if (st === 'terminated') {
      // The container is done: one last read without follow picks up what the drop cut off.
      opts = { ...opts, follow: false }
      continue
    }
    await sleep(pollInterval())
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
