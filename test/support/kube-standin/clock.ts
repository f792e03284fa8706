/**
 * The stand-in's clock. It reads real time until a test moves it (`setNow`, `advance`); from then
 * on it is frozen and only the test moves it, so a daily CronJob fires without waiting a day.
 *
 * Controllers ask to be woken at a time (`at`). `advance(ms)` is time passing with the controllers
 * running: every wake-up due on the way fires at its own time, in order. `setNow(date)` is a jump
 * (a controller that was down, or clock skew): pending wake-ups are dropped and each controller
 * resyncs once at the new time, as kube-controller-manager does when it starts.
 */
interface Wakeup {
  at: number
  seq: number
  fn: () => void
}

export class Clock {
  private fixed?: number
  private wakeups: Wakeup[] = []
  private seq = 0
  private jumpListeners = new Set<() => void>()
  private real?: NodeJS.Timeout

  now(): Date {
    return new Date(this.fixed ?? Date.now())
  }

  /** RFC 3339 to the second, as the apiserver writes timestamps. */
  nowIso(): string {
    return isoSeconds(this.now())
  }

  get frozen(): boolean {
    return this.fixed !== undefined
  }

  /** Runs `fn` once the clock reaches `when`; returns a cancel function. */
  at(when: Date, fn: () => void): () => void {
    const w: Wakeup = { at: when.getTime(), seq: this.seq++, fn }
    this.wakeups.push(w)
    this.armReal()
    return () => {
      this.wakeups = this.wakeups.filter((x) => x !== w)
      this.armReal()
    }
  }

  /** Called after `setNow` jumps the clock. */
  onJump(fn: () => void): () => void {
    this.jumpListeners.add(fn)
    return () => this.jumpListeners.delete(fn)
  }

  /** Time passes by `ms` with the controllers running: due wake-ups fire at their times, in order. */
  advance(ms: number): void {
    this.freeze()
    const target = this.fixed! + ms
    for (let guard = 0; guard < 100_000; guard++) {
      const due = this.wakeups.filter((w) => w.at <= target).sort((a, b) => a.at - b.at || a.seq - b.seq)[0]
      if (!due) break
      this.wakeups = this.wakeups.filter((w) => w !== due)
      this.fixed = Math.max(this.fixed!, due.at)
      due.fn()
    }
    this.fixed = target
  }

  /** The clock jumps to `date` without firing what was due on the way; controllers resync once. */
  setNow(date: Date | string): void {
    this.freeze()
    this.fixed = new Date(date).getTime()
    this.wakeups = this.wakeups.filter((w) => w.at > this.fixed!)
    for (const fn of [...this.jumpListeners]) fn()
  }

  stop(): void {
    if (this.real) clearTimeout(this.real)
    this.wakeups = []
    this.jumpListeners.clear()
  }

  private freeze() {
    if (this.fixed !== undefined) return
    this.fixed = Date.now()
    if (this.real) clearTimeout(this.real)
    this.real = undefined
  }

  /** While the clock reads real time, the earliest wake-up gets a real timer. */
  private armReal() {
    if (this.frozen) return
    if (this.real) clearTimeout(this.real)
    this.real = undefined
    const first = Math.min(...this.wakeups.map((w) => w.at))
    if (!Number.isFinite(first)) return
    this.real = setTimeout(() => {
      this.real = undefined
      const now = Date.now()
      const due = this.wakeups.filter((w) => w.at <= now).sort((a, b) => a.at - b.at || a.seq - b.seq)
      this.wakeups = this.wakeups.filter((w) => w.at > now)
      for (const w of due) w.fn()
      this.armReal()
    }, Math.min(Math.max(0, first - Date.now()), 2 ** 31 - 1))
    this.real.unref()
  }
}

export function isoSeconds(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z')
}
