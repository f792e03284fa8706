import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { getSchedules, nextRuns, patchCronJob, resolveSchedule } from '../../src/lib/kube/schedule.js'
import { findResource, kubectl, startStandin, type Standin } from '../support/kube-standin/index.js'
import { runCli } from '../support/cli.js'
import { clientsFor, kubeEnv, seedManifests } from './helpers.js'

let s: Standin
const CJ = () => findResource('batch', 'v1', 'cronjobs')!

beforeAll(async () => {
  s = await startStandin()
  seedManifests(s)
})
afterAll(() => s?.stop())

describe('schedule', { timeout: 180_000 }, () => {
  test('next runs are computed in the CronJob time zone and reported in UTC', () => {
    expect(nextRuns('0 4 * * 1', 'Etc/UTC', 3, new Date('2026-11-18T12:00:00Z'))).toEqual(['2026-11-23T04:00:00.000Z', '2026-11-30T04:00:00.000Z', '2026-12-07T04:00:00.000Z'])
    expect(nextRuns('@daily', 'Etc/UTC', 1, new Date('2026-11-18T12:00:00Z'))).toEqual(['2026-11-19T00:00:00.000Z'])
    expect(nextRuns('0 4 * * *', 'Europe/Berlin', 1, new Date('2026-11-18T12:00:00Z'))).toEqual(['2026-11-19T03:00:00.000Z'])
  })

  test('resolveSchedule accepts cron, macros, presets and "default"; rejects what the controller would', () => {
    expect(resolveSchedule('daily')).toBe('@daily')
    expect(resolveSchedule('@weekly')).toBe('@weekly')
    expect(resolveSchedule(' 15  1 * * * ')).toBe('15 1 * * *')
    expect(resolveSchedule('default', 'generate-report')).toBe('0 4 * * 1')
    for (const bad of ['61 * * * *', '* * * *', '*/5 * * * * *', '@fortnightly', 'TZ=UTC 0 4 * * *', 'tomorrow']) {
      expect(() => resolveSchedule(bad), bad).toThrow(expect.objectContaining({ code: 'USAGE', exitCode: 2 }))
    }
  })

  test('CLI round trip: weekly → daily → default, before/after shown, the cluster holds each value', async () => {
    const env = kubeEnv(s)
    const get = await runCli(['schedule', 'get', '--json'], { env })
    expect(get.code).toBe(0)
    const rows = JSON.parse(get.stdout).result
    expect(rows.map((r: { name: string; schedule: string }) => [r.name, r.schedule])).toEqual([
      ['aggregate-features', '15 1 * * *'],
      ['calibrate-irt', '0 3 * * *'],
      ['compute-kpis', '10 2 * * *'],
      ['detect-inactivity', '0 5 * * *'],
      ['generate-report', '0 4 * * 1'],
    ])
    const report = rows.find((r: { name: string }) => r.name === 'generate-report')
    expect(report.nextRuns).toHaveLength(3)
    for (const t of report.nextRuns) expect(new Date(t).getUTCDay()).toBe(1)

    const set = await runCli(['schedule', 'set', 'generate-report', 'daily'], { env })
    expect(set.code).toBe(0)
    expect(set.stdout).toContain('before: 0 4 * * 1 (Etc/UTC)')
    expect(set.stdout).toContain('after:  @daily (Etc/UTC)')
    expect(s.api.store.get(CJ(), 'seedtest', 'generate-report').spec.schedule).toBe('@daily')
    // The patch was a merge patch guarded by the resourceVersion it read.
    const patch = s.api.requests.filter((r) => r.method === 'PATCH' && r.path.endsWith('/cronjobs/generate-report')).at(-1)!
    expect(patch.contentType).toBe('application/merge-patch+json')

    const back = await patchCronJob(clientsFor(s), 'generate-report', { schedule: resolveSchedule('default', 'generate-report') })
    expect(back).toMatchObject({ changed: true, before: { schedule: '@daily' }, after: { schedule: '0 4 * * 1' } })
    expect(s.api.store.get(CJ(), 'seedtest', 'generate-report').spec.schedule).toBe('0 4 * * 1')
  })

  test('CLI: an invalid cron is a usage error (exit 2) and nothing is sent', async () => {
    const before = s.api.requests.length
    const r = await runCli(['schedule', 'set', 'compute-kpis', '10 2 * *'], { env: kubeEnv(s) })
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('Error (USAGE): "10 2 * *" is not a cron schedule: expected 5 fields')
    expect(s.api.requests.slice(before).filter((x) => x.method === 'PATCH')).toHaveLength(0)
    expect(s.api.store.get(CJ(), 'seedtest', 'compute-kpis').spec.schedule).toBe('10 2 * * *')
  })

  test('suspend and resume; a second suspend changes nothing', async () => {
    const k = clientsFor(s)
    const a = await patchCronJob(k, 'detect-inactivity', { suspend: true })
    expect([a.changed, a.before.suspend, a.after.suspend, a.after.nextRuns]).toEqual([true, false, true, []])
    const rv = s.api.store.get(CJ(), 'seedtest', 'detect-inactivity').metadata.resourceVersion
    const b = await patchCronJob(k, 'detect-inactivity', { suspend: true })
    expect(b.changed).toBe(false)
    expect(s.api.store.get(CJ(), 'seedtest', 'detect-inactivity').metadata.resourceVersion).toBe(rv)
    const kc = await kubectl(s.kubeconfig, ['get', 'cronjob', 'detect-inactivity', '-n', 'seedtest', '-o', 'jsonpath={.spec.suspend}'])
    expect(kc.stdout).toBe('true')
    const c = await patchCronJob(k, 'detect-inactivity', { suspend: false })
    expect(c.after.suspend).toBe(false)
    expect((await getSchedules(k, 'detect-inactivity'))[0].nextRuns).toHaveLength(3)
  })

  test('a 409 Conflict is retried after re-reading', async () => {
    s.api.faults.conflicts = { resource: 'cronjobs', remaining: 2 }
    const r = await patchCronJob(clientsFor(s), 'calibrate-irt', { schedule: '30 2 * * *' })
    expect(r.after.schedule).toBe('30 2 * * *')
    expect(s.api.faults.conflicts.remaining).toBe(0)
    await patchCronJob(clientsFor(s), 'calibrate-irt', { schedule: '0 3 * * *' })
  })

  test('an unknown CronJob: the error names it and the list command to run', async () => {
    const e = await patchCronJob(clientsFor(s), 'calibrate', { schedule: '@daily' }).catch((x) => x)
    expect(e).toMatchObject({ code: 'KUBE_NOT_FOUND', exitCode: 1, message: 'cronjobs.batch "calibrate" in namespace seedtest not found' })
    expect(e.suggestions).toContain('See what exists: kubectl get cronjobs.batch -n seedtest')
  })
})
