import cliProgress from 'cli-progress'
import type { Logger } from '../output/index.js'
import type { CycleInfo } from './calibrate.js'

/**
 * EM progress on stderr: a bar (cycle of max, logLik, max change) when stderr is a TTY, otherwise
 * a log line every few seconds so CI logs show a long fit is alive without flooding.
 */
export function cycleReporter(maxCycles: number, logger: Logger, opts: { quiet: boolean; json: boolean }): { onCycle: (c: CycleInfo) => void; stop: () => void } {
  if (opts.quiet) return { onCycle: () => {}, stop: () => {} }
  if (process.stderr.isTTY && !opts.json) {
    const bar = new cliProgress.SingleBar(
      { format: 'EM {bar} cycle {value}/{total} | logLik {ll} | max change {mc}', stream: process.stderr, hideCursor: true, clearOnComplete: true },
      cliProgress.Presets.shades_classic,
    )
    let started = false
    return {
      onCycle: (c) => {
        const payload = { ll: c.logLik.toFixed(3), mc: c.maxChange.toExponential(2) }
        if (!started) {
          bar.start(maxCycles, c.cycle, payload)
          started = true
        } else bar.update(c.cycle, payload)
      },
      stop: () => {
        if (started) bar.stop()
      },
    }
  }
  let last = Date.now()
  return {
    onCycle: (c) => {
      const now = Date.now()
      if (now - last >= 2000) {
        last = now
        logger.progress(`EM cycle ${c.cycle}: logLik ${c.logLik.toFixed(3)}, max change ${c.maxChange.toExponential(2)}`)
      }
    },
    stop: () => {},
  }
}
