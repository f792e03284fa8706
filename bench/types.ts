/**
 * One line of `npm run bench`'s table. Every benchmark module exports
 * `run(opts: BenchOptions): Promise<BenchRow[]>` and prints its own detail when run alone.
 */
export interface BenchRow {
  /** What was run, e.g. "irt calibrate 100k × 500 bank, 3 M rows, 2PL, SEs on". */
  scenario: string
  /** Wall time of the whole scenario in seconds (the whole command when it is a CLI run). */
  wallSeconds: number
  /** Peak resident set size in MB (from /usr/bin/time -v for a CLI run, or process.resourceUsage), null if not measured. */
  peakRssMB: number | null
  /** The in-run reference the ratio is taken against, e.g. "bare scan 2.1 s". */
  reference: string
  /** wallSeconds / reference seconds (or the throughput ratio, said so in `reference`). */
  ratio: number | null
  /** The target for this scenario, e.g. "≤ 6 s, ≤ 800 MB". */
  target?: string
  /** true when the target is met, false when not, undefined when there is no target. */
  met?: boolean
}

export interface BenchOptions {
  /** Smaller data for a quick look (figures not comparable with the targets). */
  quick?: boolean
}
