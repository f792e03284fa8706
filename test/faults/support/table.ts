import { appendFileSync } from 'node:fs'

/**
 * What a fault scenario survived, for the table `npm run test:faults` prints. A scenario records its
 * row once, after its trials; `lost` counts trials that lost or corrupted data (the run fails on any).
 */
export interface ScenarioRow {
  /** e.g. "SIGKILL during compute-kpis write". */
  scenario: string
  trials: number
  /** Trials whose outcome was correct (before- or after-state exactly, clear error, …). */
  ok: number
  /** Trials that lost or half-wrote data. Must be 0. */
  lost: number
  /** One short line: what the outcomes were (e.g. "61 before / 39 after, 100 abandoned, p99 12 ms"). */
  outcome: string
}

/** Trials per scenario: `--trials N` of scripts/test-faults.mjs (FAULT_TRIALS), else the CI default. */
export function trials(ciDefault = 25): number {
  const n = Number(process.env.FAULT_TRIALS ?? '')
  return Number.isInteger(n) && n > 0 ? n : ciDefault
}

export function record(row: ScenarioRow): void {
  const file = process.env.FAULTS_TABLE_FILE
  if (file) appendFileSync(file, JSON.stringify(row) + '\n')
}
