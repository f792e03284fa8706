import type pg from 'pg'

export type CheckStatus = 'pass' | 'warn' | 'fail'

export interface CheckResult {
  id: string
  group: string
  description: string
  status: CheckStatus
  /** One line with the numbers that decided it. */
  message: string
  numbers: Record<string, number | string | null>
  /** A few offending rows (dbt style: a check is a query returning the failing rows). */
  examples?: Record<string, unknown>[]
}

export interface VerifyContext {
  q: Pick<pg.Pool, 'query'>
  /** As-of date YYYY-MM-DD (UTC). */
  asOf: string
  now: Date
  options: Record<string, number>
}

export interface Check {
  id: string
  description: string
  run(ctx: VerifyContext): Promise<Omit<CheckResult, 'id' | 'group' | 'description'>>
}

export interface CheckGroup {
  id: string
  description: string
  checks: Check[]
}
