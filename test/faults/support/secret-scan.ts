import { appendFileSync } from 'node:fs'

/**
 * Issue 13 item 8: secrets never leak. test/support/cli.ts runs every CLI process of the suite and hands
 * what each one printed (stdout, stderr, --json documents and LOG_FORMAT=json lines are all in there) to
 * scanRun(), which looks for
 *   - the PLANTED values below (the suite plants them: DB password in test/support/db.ts URLs, S3 keys in
 *     test/reports/s3.ts, IRT tokens where tests set one),
 *   - every env value the process got whose name matches SECRET_NAME (≥ 8 characters),
 *   - the password of every URL in its env, arguments or stdin (≥ 8 characters),
 *   - `NAME=value` lines with a secret-looking NAME in its stdin (env files fed to `secrets ensure`),
 * and fails the test on a hit, naming the variable, never the value.
 */
export const PLANTED = {
  DB_PASSWORD: 'PlantedDbPw-4f9c2e71Kq',
  S3_ACCESS_KEY_ID: 'AKIAPLANTEDSUITE8K2W',
  S3_SECRET_ACCESS_KEY: 'planted/S3-suite-secret+Vq81xZ',
  IRT_TOKEN: 'planted-irt-token-suite-5Rq9Lm',
} as const

export const SECRET_NAME = /PASSWORD|SECRET|TOKEN|ACCESS_KEY/i
const MIN = 8

export interface Secret {
  /** Where the value came from: an env name, `password of <NAME>`, `planted <NAME>`: printable. */
  name: string
  value: string
}

function urlPasswords(text: string): string[] {
  const out: string[] = []
  for (const m of text.matchAll(/\b[a-z][a-z0-9+.-]*:\/\/[^:/?#@\s]*:([^@\s/]+)@/gi)) out.push(m[1]!)
  return out
}

/** Every secret a run could leak, given what it was started with. */
export function secretsOf(env: Record<string, string | undefined>, args: string[] = [], input?: string): Secret[] {
  const found: Secret[] = Object.entries(PLANTED).map(([name, value]) => ({ name: `planted ${name}`, value }))
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined) continue
    if (SECRET_NAME.test(name)) found.push({ name, value })
    for (const p of urlPasswords(value)) found.push({ name: `password in ${name}`, value: p })
  }
  args.forEach((a, i) => {
    for (const p of urlPasswords(a)) found.push({ name: `password in argument ${i + 1}`, value: p })
  })
  if (input !== undefined) {
    for (const line of input.split('\n')) {
      const m = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(["']?)(.*)\2\s*$/.exec(line)
      if (m && SECRET_NAME.test(m[1]!)) found.push({ name: `${m[1]} on stdin`, value: m[3]! })
    }
    for (const p of urlPasswords(input)) found.push({ name: 'password of a URL on stdin', value: p })
  }
  const out: Secret[] = []
  const seen = new Set<string>()
  for (const s of found) {
    // A URL password may be percent-encoded where it was given; look for both spellings.
    for (const v of new Set([s.value, safeDecode(s.value)])) {
      if (v.length < MIN || seen.has(v)) continue
      seen.add(v)
      out.push({ name: s.name, value: v })
    }
  }
  return out
}

function safeDecode(v: string): string {
  try {
    return decodeURIComponent(v)
  } catch {
    return v
  }
}

/** Names of the secrets that appear in text (raw or percent-encoded). */
export function findLeaks(text: string, secrets: Secret[]): string[] {
  const names: string[] = []
  for (const s of secrets) {
    if (text.includes(s.value) || text.includes(encodeURIComponent(s.value))) names.push(s.name)
  }
  return [...new Set(names)]
}

/** The command words only (never an argument that might hold a secret), to name a run in a failure. */
export function commandName(args: string[]): string {
  const words: string[] = []
  for (const a of args) {
    if (!/^[a-z][a-z0-9-]*$/.test(a) || words.length === 2) break
    words.push(a)
  }
  return `seedops ${words.join(' ')}`.trim()
}

export class SecretLeakError extends Error {
  constructor(
    readonly names: string[],
    where: string,
  ) {
    super(`secret leaked: ${names.join(', ')} appeared in the output of ${where} (value not shown)`)
    this.name = 'SecretLeakError'
  }
}

/**
 * Scans one run's output, counts it into SECRET_SCAN_FILE (one JSON line per run: {runs, hits}) when
 * set (count: false for a look at a run still going), and throws SecretLeakError on any hit.
 */
export function scanRun(outputs: Record<string, string>, secrets: Secret[], args: string[], opts: { count?: boolean } = {}): void {
  const names = [...new Set(Object.values(outputs).flatMap((t) => findLeaks(t, secrets)))]
  const file = process.env.SECRET_SCAN_FILE
  if (file && opts.count !== false) appendFileSync(file, JSON.stringify({ runs: 1, hits: names.length }) + '\n')
  if (names.length) {
    const streams = Object.entries(outputs).filter(([, t]) => findLeaks(t, secrets).length).map(([k]) => k)
    throw new SecretLeakError(names, `${commandName(args)} (${streams.join(', ')})`)
  }
}

/** Totals of a SECRET_SCAN_FILE. */
export function scanTotals(text: string): { runs: number; hits: number } {
  let runs = 0
  let hits = 0
  for (const l of text.split('\n')) {
    if (!l.trim()) continue
    const x = JSON.parse(l) as { runs: number; hits: number }
    runs += x.runs
    hits += x.hits
  }
  return { runs, hits }
}
