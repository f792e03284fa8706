/** Container logs as the kubelet keeps them: timestamped lines, and whether the container has finished. */
export interface LogEntry {
  ts: string // RFC3339Nano, as `timestamps=true` prints it
  tsMs: number
  line: string
}

interface LogStream {
  entries: LogEntry[]
  done: boolean
  listeners: Set<() => void>
}

let seq = 0

/** `2026-11-21T10:00:00.123456789Z`: milliseconds plus a counter, so lines in one millisecond keep their order. */
function rfc3339Nano(ms: number): string {
  const iso = new Date(ms).toISOString() // ...ss.mmmZ
  const nanos = String(seq++ % 1_000_000).padStart(6, '0')
  return iso.replace(/Z$/, `${nanos}Z`)
}

export class LogStore {
  private streams = new Map<string, LogStream>()

  private stream(ns: string, pod: string, container: string): LogStream {
    const k = `${ns}/${pod}/${container}`
    let s = this.streams.get(k)
    if (!s) this.streams.set(k, (s = { entries: [], done: false, listeners: new Set() }))
    return s
  }

  append(ns: string, pod: string, container: string, line: string): void {
    const s = this.stream(ns, pod, container)
    const now = Date.now()
    s.entries.push({ ts: rfc3339Nano(now), tsMs: now, line })
    for (const l of s.listeners) l()
  }

  finish(ns: string, pod: string, container: string): void {
    const s = this.stream(ns, pod, container)
    s.done = true
    for (const l of s.listeners) l()
  }

  read(ns: string, pod: string, container: string): { entries: LogEntry[]; done: boolean } {
    const s = this.stream(ns, pod, container)
    return { entries: [...s.entries], done: s.done }
  }

  onChange(ns: string, pod: string, container: string, fn: () => void): () => void {
    const s = this.stream(ns, pod, container)
    s.listeners.add(fn)
    return () => s.listeners.delete(fn)
  }
}
