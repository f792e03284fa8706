import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { CheckSkipped, renderChecks, runChecks, toJUnit, type Check } from '../../src/lib/checks/index.js'
import { executeDoctor } from '../../src/lib/doctor/command.js'
import { registerSecret, SeedopsError } from '../../src/lib/errors/index.js'
import { executeVerifyParts } from '../../src/lib/verify/command.js'
import { featuresGroup } from '../../src/lib/verify/features.js'
import { DB_KINDS, freshDatabase } from '../support/db.js'
import { parseXml, type XmlElement } from './xml.js'

const SECRET = 'runner-test-secret-9f3a'
const ran: string[] = []
const check = (id: string, run: Check<object>['run'], extra: Partial<Check<object>> = {}): Check<object> => ({
  id,
  group: id.split('.')[0]!,
  description: `the ${id} check`,
  run: async (ctx) => {
    ran.push(id)
    return run(ctx)
  },
  ...extra,
})

const CHECKS: Check<object>[] = [
  check('a.ok', async () => ({ status: 'ok', message: 'fine', numbers: { n: 1 } })),
  check('a.throws', async () => {
    throw new SeedopsError(`cannot read: token ${SECRET}`, { code: 'SOME_CODE', suggestions: ['try this'] })
  }),
  check('a.after-throws', async () => ({ status: 'ok', message: 'never runs' }), { dependsOn: 'a.throws' }),
  check('b.empty', async () => []),
  check('b.after-empty', async () => ({ status: 'ok', message: 'never runs' }), { dependsOn: 'b.empty' }),
  check('b.warns', async () => ({ status: 'warn', message: 'two rows <odd> & "quoted" \u001b[31mred\u001b[0m', rows: [{ user_id: 'u1', n: 2 }, { user_id: 'u2', n: 3 }] })),
  check('c.skipped', async () => {
    throw new CheckSkipped('no cluster here', 'no cluster configured')
  }),
  check('c.after-skipped', async () => ({ status: 'ok', message: 'never runs' }), { dependsOn: 'c.skipped' }),
  check('c.two', async () => [
    { status: 'ok', subject: 'x', message: 'x is fine' },
    { status: 'fail', subject: 'y', message: 'y is broken', fix: ['fix y'] },
  ]),
  check('c.warn-blocks', async () => ({ status: 'warn', message: 'not configured' }), { blocksDependents: (out) => (out.some((o) => o.status !== 'ok') ? 'nothing configured' : undefined) }),
  check('c.after-warn', async () => ({ status: 'ok', message: 'never runs' }), { dependsOn: 'c.warn-blocks' }),
]

describe('the check runner', () => {
  it('runs in order, skips dependents with the reason, turns throws into failures, orders, counts, redacts and renders', async () => {
    registerSecret(SECRET)
    ran.length = 0
    const r = await runChecks(CHECKS, {}, { emptyReason: (id) => `${id}: nothing to look at` })
    expect(ran).toEqual(['a.ok', 'a.throws', 'b.empty', 'b.warns', 'c.skipped', 'c.two', 'c.warn-blocks'])
    expect(r.checks.map((c) => `${c.status} ${c.id}${c.subject ? ` ${c.subject}` : ''}`)).toEqual([
      'fail a.throws',
      'fail c.two y',
      'warn b.warns',
      'warn c.warn-blocks',
      'ok a.ok',
      'ok c.two x',
      'skip a.after-throws',
      'skip b.empty',
      'skip b.after-empty',
      'skip c.skipped',
      'skip c.after-skipped',
      'skip c.after-warn',
    ])
    const by = (id: string) => r.checks.find((c) => c.id === id)!
    expect(by('a.throws')).toMatchObject({ group: 'a', description: 'the a.throws check', message: 'cannot read: token [REDACTED] (SOME_CODE)', fix: ['try this'], numbers: {}, rows: [] })
    expect(by('a.after-throws').message).toBe('a.throws failed')
    expect(by('b.empty').message).toBe('b.empty: nothing to look at')
    expect(by('b.after-empty').message).toBe('b.empty did not run')
    expect(by('c.skipped').message).toBe('no cluster here')
    expect(by('c.after-skipped').message).toBe('no cluster configured')
    expect(by('c.after-warn').message).toBe('nothing configured')
    expect(r.summary).toEqual({ ok: 2, warn: 2, fail: 2, skip: 6, checks: CHECKS.length, failedChecks: ['a.throws', 'c.two'], warnedChecks: ['b.warns', 'c.warn-blocks'] })
    expect(JSON.stringify(r)).not.toContain(SECRET)

    const text = renderChecks(r, { summarySuffix: ' (as of 2026-11-21)' })
    const lines = text.trimEnd().split('\n')
    expect(lines.filter((l) => /^(FAIL|WARN|ok|skip) /.test(l)).map((l) => l.split(/\s+/).slice(0, 2).join(' '))).toEqual(r.checks.map((c) => `${c.status === 'fail' ? 'FAIL' : c.status === 'warn' ? 'WARN' : c.status} ${c.id}`))
    expect(lines).toContain(`${' '.repeat(6 + 16 + 2)}fix: try this`)
    expect(text).toContain('b.warns: flagged rows (first 2)')
    expect(lines.at(-1)).toBe('Found issues in 4 checks: 2 failures, 2 warnings, 2 ok, 6 skipped. (as of 2026-11-21)')
  })

  it('JUnit: well-formed, a suite per group, failures, skips and warnings where they belong, odd text escaped', async () => {
    const r = await runChecks(CHECKS, {})
    const doc = parseXml(toJUnit(r, { name: 'seedops verify', classPrefix: 'seedops.verify' }))
    expect(doc.name).toBe('testsuites')
    expect(doc.attrs).toMatchObject({ name: 'seedops verify', tests: String(r.checks.length), failures: '2', skipped: '6' })
    expect(doc.children.map((s) => [s.attrs.name, s.attrs.tests, s.attrs.failures, s.attrs.skipped])).toEqual([
      ['verify a', '3', '1', '1'],
      ['verify c', '6', '1', '3'],
      ['verify b', '3', '0', '2'],
    ])
    const cases = doc.children.flatMap((s) => s.children)
    const kase = (name: string) => cases.find((c) => c.attrs.name === name)!
    expect(kase('c.two y').children.map((x) => [x.name, x.attrs.message])).toEqual([['failure', 'y is broken']])
    expect(JSON.parse(kase('c.two y').children[0]!.text)).toMatchObject({ numbers: {}, rows: [], fix: ['fix y'] })
    expect(kase('c.two x').children).toEqual([])
    expect(kase('b.empty').children.map((x) => [x.name, x.attrs.message])).toEqual([['skipped', 'nothing to check']])
    const warn = kase('b.warns').children[0]!
    expect(warn.name).toBe('system-out')
    // The control characters are gone; <, & and " survive the round trip.
    expect(warn.text).toContain('WARN: two rows <odd> & "quoted" [31mred[0m')
    expect(kase('b.warns').attrs.classname).toBe('seedops.verify.b')
  })
})

const junitOf = (file: string) => parseXml(readFileSync(file, 'utf8'))
const testcases = (doc: XmlElement) => doc.children.flatMap((s) => s.children.map((c) => ({ suite: s.attrs.name, name: c.attrs.name, outcome: c.children[0]?.name ?? 'passed' })))

describe.each(DB_KINDS)('JUnit of a verify run on %s', { timeout: 120_000 }, (kind) => {
  it('verify features on a database where nothing ran: parsed back, the same verdicts as the report', async () => {
    const t = await freshDatabase(kind)
    const db = await t.open()
    const file = join(mkdtempSync(join(tmpdir(), 'seedops-junit-')), 'verify.xml')
    try {
      const r = await executeVerifyParts([{ groups: [featuresGroup], stage: 'aggregate-features' }], { db, days: 7, junit: file, listCronJobs: async () => [] })
      expect(r.checks.map((c) => [c.id, c.status])).toEqual([['features.freshness', 'fail'], ['features.coverage', 'warn'], ['features.ranges', 'ok'], ['features.malformed-source', 'ok']])
      const doc = junitOf(file)
      expect(doc.attrs).toMatchObject({ name: 'seedops verify', tests: '4', failures: '1', skipped: '0' })
      expect(testcases(doc)).toEqual([
        { suite: 'verify features', name: 'features.freshness', outcome: 'failure' },
        { suite: 'verify features', name: 'features.coverage', outcome: 'system-out' },
        { suite: 'verify features', name: 'features.ranges', outcome: 'passed' },
        { suite: 'verify features', name: 'features.malformed-source', outcome: 'passed' },
      ])
      expect(doc.children[0]!.children[0]!.children[0]!.attrs.message).toBe('aggregate-features has never succeeded (run: seedops run aggregate-features)')
    } finally {
      await db.close()
    }
  })
})

describe('JUnit of a doctor run', () => {
  it('doctor --junit with a missing kubeconfig, no object store and no IRT service: the failure and every skip, parsed back', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'seedops-junit-'))
    const file = join(dir, 'doctor.xml')
    const io = { logger: { info() {}, warn() {}, debug() {}, progress() {} }, interactive: false, confirm: async () => false }
    const r = await executeDoctor({ kube: { kubeconfig: join(dir, 'no-such-kubeconfig'), namespace: 'seedtest' }, only: ['cluster.reachable', 'cronjobs.present', 'storage', 'irt'], junit: file }, io, {})
    expect(r.checks.map((c) => [c.id, c.status])).toEqual([
      ['cluster.reachable', 'fail'],
      ['cronjobs.present', 'skip'],
      ['storage.s3', 'skip'],
      ['irt.health', 'skip'],
    ])
    const doc = junitOf(file)
    expect(doc.attrs).toMatchObject({ name: 'seedops doctor', tests: '4', failures: '1', skipped: '3' })
    expect(testcases(doc)).toEqual([
      { suite: 'doctor cluster', name: 'cluster.reachable', outcome: 'failure' },
      { suite: 'doctor cluster', name: 'cronjobs.present', outcome: 'skipped' },
      { suite: 'doctor storage', name: 'storage.s3', outcome: 'skipped' },
      { suite: 'doctor irt', name: 'irt.health', outcome: 'skipped' },
    ])
    expect(doc.children[0]!.children[0]!.children[0]!.attrs.message).toContain('no-such-kubeconfig')
    expect(doc.children[0]!.children[1]!.children[0]!.attrs.message).toBe('cluster.reachable failed')
    expect(doc.children[1]!.children[0]!.children[0]!.attrs.message).toBe('S3_BUCKET not set')
  })
})
