import type pg from 'pg'
import type { Outcome } from '../checks/index.js'

export interface VerifyContext {
  q: Pick<pg.Pool, 'query'>
  /** As-of date YYYY-MM-DD (UTC). */
  asOf: string
  now: Date
  /**
   * maxAgeHours: the freshness limit (--max-age-hours, else from the stage's CronJob schedule);
   * days: the window; plus each group's own thresholds.
   */
  options: Record<string, number>
  /** Where maxAgeHours came from: flag, cluster (deployed CronJob), manifests (k8s/) or default. */
  limitSource?: string
}

/** A verify check: a query and its verdict; the group gives it its id prefix. */
export interface Check {
  id: string
  description: string
  run(ctx: VerifyContext): Promise<Outcome>
}

export interface CheckGroup {
  id: string
  description: string
  checks: Check[]
}
