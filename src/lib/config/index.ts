import { usageError } from '../errors/index.js'

/**
 * Configuration precedence everywhere: flag > environment > default. Predecessor env names
 * stay accepted as aliases (the first name listed wins when several are set).
 */
export function envFirst(names: string[], env: NodeJS.ProcessEnv = process.env): { name: string; value: string } | undefined {
  for (const n of names) {
    const v = env[n]
    if (v !== undefined && v !== '') return { name: n, value: v }
  }
  return undefined
}

export function resolveInt(
  flag: number | undefined,
  envNames: string[],
  def: number,
  opts: { min?: number; max?: number; label: string },
  env: NodeJS.ProcessEnv = process.env,
): number {
  let value = flag
  let source = `--${opts.label}`
  if (value === undefined) {
    const e = envFirst(envNames, env)
    if (e) {
      if (!/^-?\d+$/.test(e.value.trim())) throw usageError(`${e.name}=${JSON.stringify(e.value)} is not an integer`, [`Set ${e.name} to a whole number, e.g. ${def}`])
      value = Number(e.value)
      source = e.name
    }
  }
  if (value === undefined) return def
  if ((opts.min !== undefined && value < opts.min) || (opts.max !== undefined && value > opts.max)) {
    throw usageError(`${source}=${value} is out of range [${opts.min ?? '-∞'}, ${opts.max ?? '∞'}]`)
  }
  return value
}

/** As-of date: YYYY-MM-DD in UTC; default today (UTC). */
export function resolveDate(flag: string | undefined, now: Date = new Date()): string {
  if (flag === undefined || flag === 'today') return now.toISOString().slice(0, 10)
  // An empty value is a mistake (an unset shell variable: --date "$AS_OF"), not "today".
  if (flag.trim() === '') throw usageError('--date is empty', ['Use YYYY-MM-DD (UTC), e.g. --date 2026-11-20, or leave --date out for today'])
  if (flag === 'yesterday') return new Date(now.getTime() - 86_400_000).toISOString().slice(0, 10)
  if (!/^\d{4}-\d{2}-\d{2}$/.test(flag)) throw usageError(`--date ${JSON.stringify(flag)} is not a date`, ['Use YYYY-MM-DD (UTC), e.g. --date 2026-11-20'])
  const d = new Date(`${flag}T00:00:00Z`)
  if (Number.isNaN(d.getTime()) || d.toISOString().slice(0, 10) !== flag) throw usageError(`--date ${flag} is not a valid calendar date`)
  // JavaScript has a year 0; PostgreSQL's calendar goes from 1 BC to AD 1 (it would refuse the date mid-run).
  if (flag.startsWith('0000')) throw usageError(`--date ${flag}: there is no year 0`, ['Use YYYY-MM-DD (UTC), e.g. --date 2026-11-20'])
  return flag
}

export function addDays(date: string, n: number): string {
  return new Date(Date.parse(`${date}T00:00:00Z`) + n * 86_400_000).toISOString().slice(0, 10)
}

/** The first instant of a UTC day, as an ISO timestamp for timestamptz parameters. */
export function utcDayStart(date: string): string {
  return `${date}T00:00:00Z`
}

/** ISO week start (Monday) of a UTC date. */
export function isoWeekStart(date: string): string {
  const d = new Date(`${date}T00:00:00Z`)
  const dow = (d.getUTCDay() + 6) % 7 // Monday = 0
  return addDays(date, -dow)
}

/**
 * The last complete ISO week before an as-of day: on Monday (any time) the Monday..Sunday that just
 * ended; on Wednesday the same week. The week of the as-of day itself is never complete on it.
 */
export function lastCompleteWeek(asOf: string): string {
  return addDays(isoWeekStart(asOf), -7)
}

/** `2026-W47` → the Monday of that ISO week (`2026-11-16`); a usage error otherwise. */
export function parseIsoWeek(flag: string, label = '--week'): string {
  const m = /^(\d{4})-?W(\d{2})$/i.exec(flag.trim())
  const week = m ? Number(m[2]) : 0
  if (!m || week < 1 || week > 53) throw usageError(`${label} ${JSON.stringify(flag)} is not an ISO week`, [`Use YYYY-Www, e.g. ${label} 2026-W47`])
  // ISO week 1 is the week holding 4 January.
  const week1 = isoWeekStart(`${m[1]}-01-04`)
  const start = addDays(week1, 7 * (week - 1))
  if (week === 53 && isoWeekStart(`${m[1]}-12-28`) !== start) throw usageError(`${label} ${flag}: ${m[1]} has no week 53`)
  return start
}

export function seedopsHome(env: NodeJS.ProcessEnv = process.env): string {
  return env.SEEDOPS_HOME && env.SEEDOPS_HOME !== '' ? env.SEEDOPS_HOME : '.seedops'
}
