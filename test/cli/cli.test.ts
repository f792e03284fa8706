import { describe, expect, it } from 'vitest'
import { runCli } from '../support/cli.js'
import { freshDatabase } from '../support/db.js'

describe('the CLI', () => {
  it('--help lists the topics and exits 0', async () => {
    const r = await runCli(['--help'])
    expect(r.code).toBe(0)
    for (const topic of ['db', 'demo', 'run', 'verify']) expect(r.stdout).toMatch(new RegExp(`^\\s+${topic}\\s`, 'm'))
  })

  it('command --help shows flags and examples', async () => {
    const r = await runCli(['run', 'aggregate-features', '--help'])
    expect(r.code).toBe(0)
    expect(r.stdout).toContain('--lookback-days')
    expect(r.stdout).toContain('--dry-run')
    expect(r.stdout).toContain('EXAMPLES')
  })

  it('usage errors exit 2 with a next step; --json gives the error document', async () => {
    const bad = await runCli(['run', 'aggregate-features', '--date', '2026-02-30'])
    expect(bad.code).toBe(2)
    expect(bad.stderr).toContain('Error (USAGE): --date 2026-02-30 is not a valid calendar date')
    const unknown = await runCli(['db', 'status', '--no-such-flag'])
    expect(unknown.code).toBe(2)
    expect(unknown.stderr).toMatch(/Try this:\n\s+Run: seedops db status --help/)
    const env = await runCli(['run', 'aggregate-features', '--json'], { env: { AGG_LOOKBACK_DAYS: 'seven' } })
    expect(env.code).toBe(2)
    const doc = JSON.parse(env.stdout)
    expect(doc).toMatchObject({ status: 2, code: 'USAGE', message: expect.stringContaining('AGG_LOOKBACK_DAYS="seven" is not an integer') })
  })

  it('an unreachable database is a failure (exit 1) that never prints the password', async () => {
    const secret = 'pw-Zq81xx-never-shown'
    const r = await runCli(['db', 'status', '--json'], { env: { DATABASE_URL: `postgres://ops:${secret}@127.0.0.1:1/seedtest` } })
    expect(r.code).toBe(1)
    const doc = JSON.parse(r.stdout)
    expect(doc.code).toBe('DB_UNREACHABLE')
    expect(doc.suggestions.length).toBeGreaterThan(0)
    expect(r.stdout + r.stderr).not.toContain(secret)
  })

  it.runIf(process.env.TEST_DATABASE_URL)('a URL asking for TLS from a server without it is DB_TLS naming sslmode (exit 1), not INTERNAL', async () => {
    const u = new URL(process.env.TEST_DATABASE_URL!)
    u.password = 'tls-test-secret-4711'
    for (const mode of ['require', 'bogus']) {
      u.searchParams.set('sslmode', mode)
      const r = await runCli(['db', 'status', '--json'], { env: { DATABASE_URL: u.toString() } })
      expect(r.code, r.stderr).toBe(1)
      const doc = JSON.parse(r.stdout)
      expect(doc.code).toBe('DB_TLS')
      expect(doc.suggestions[0]).toContain('sslmode')
    }
  })

  it('--json shape is {status, result, warnings} and stays silent of tables; verify fails (exit 1) on an unfed database', async () => {
    const t = await freshDatabase('embedded')
    const run = await runCli(['run', 'aggregate-features', '--date', '2026-03-15', '--json'], { env: t.env })
    expect(run.code).toBe(0)
    const doc = JSON.parse(run.stdout)
    expect(Object.keys(doc).sort()).toEqual(['result', 'status', 'warnings'])
    expect(doc.status).toBe(0)
    expect(doc.result).toMatchObject({ stage: 'aggregate-features', status: 'succeeded', asOf: '2026-03-15', rows: { features_topic_daily: 0 } })
    const v = await runCli(['verify', 'features', '--json'], { env: { ...t.env } })
    const vdoc = JSON.parse(v.stdout)
    // No attempts at all: coverage warns, freshness passes (the run just happened); nothing fails.
    expect(v.code).toBe(0)
    expect(vdoc.result.checks.find((c: { id: string }) => c.id === 'features.coverage').status).toBe('warn')
    const stale = await runCli(['verify', 'features', '--max-age-hours', '0', '--json'], { env: t.env })
    expect(stale.code).toBe(1)
    expect(JSON.parse(stale.stdout).result.checks[0]).toMatchObject({ id: 'features.freshness', status: 'fail' })
  })
})
