import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { deploy } from '../../src/lib/kube/deploy.js'
import { findResource, kubectl, startStandin, type Standin } from '../support/kube-standin/index.js'
import { runCli } from '../support/cli.js'
import { clientsFor, kubeEnv } from './helpers.js'

/**
 * `seedops deploy` is a server-side apply with the field manager "seedops". A real API server
 * refuses it (409) when it would change a field another manager set since — `seedops schedule set`
 * (a merge patch, operation Update) or `kubectl patch` — and deploy must say which field, who set
 * it, and how to proceed; `--force-conflicts` takes the fields back.
 */
let s: Standin
const NS = 'conf'
const cj = findResource('batch', 'v1', 'cronjobs')!
const schedule = (name: string) => s.api.store.get(cj, NS, name).spec.schedule

beforeAll(async () => {
  s = await startStandin({ namespaces: ['default', 'seedtest', NS] })
  await deploy(clientsFor(s, NS), { namespace: NS })
})
afterAll(() => s?.stop())

describe('seedops deploy after someone else changed a field it sets', { timeout: 120_000 }, () => {
  test('after `schedule set`: exit 1 naming the CronJob, the field and `schedule set`; nothing else is lost; --force-conflicts restores the manifests', async () => {
    const set = await runCli(['schedule', 'set', 'compute-kpis', '5 5 * * *', '-n', NS], { env: kubeEnv(s) })
    expect(set.code).toBe(0)
    const r = await runCli(['deploy', '-n', NS], { env: kubeEnv(s) })
    expect(r.code).toBe(1)
    expect(r.stderr).toContain('KUBE_APPLY_CONFLICT')
    expect(r.stderr).toContain('CronJob compute-kpis: .spec.schedule was last set by `seedops schedule set` (a merge patch by field manager "seedops")')
    expect(r.stderr).toContain('seedops deploy --force-conflicts')
    expect(r.stderr).toContain('seedops schedule set compute-kpis default')
    expect(schedule('compute-kpis')).toBe('5 5 * * *')
    const json = await runCli(['deploy', '-n', NS, '--json'], { env: kubeEnv(s) })
    expect(json.code).toBe(1)
    expect(json.stdout + json.stderr).toContain('KUBE_APPLY_CONFLICT')
    const forced = await runCli(['deploy', '-n', NS, '--force-conflicts'], { env: kubeEnv(s) })
    expect(forced.code).toBe(0)
    expect(schedule('compute-kpis')).toBe('10 2 * * *')
    // seedops owns the schedule again: a plain deploy succeeds.
    expect((await runCli(['deploy', '-n', NS], { env: kubeEnv(s) })).code).toBe(0)
  })

  test('`schedule set <cronjob> default` (the suggested way out) makes the next deploy succeed without forcing', async () => {
    expect((await runCli(['schedule', 'set', 'detect-inactivity', 'weekly', '-n', NS], { env: kubeEnv(s) })).code).toBe(0)
    expect((await runCli(['deploy', '-n', NS], { env: kubeEnv(s) })).code).toBe(1)
    expect((await runCli(['schedule', 'set', 'detect-inactivity', 'default', '-n', NS], { env: kubeEnv(s) })).code).toBe(0)
    const r = await runCli(['deploy', '-n', NS], { env: kubeEnv(s) })
    expect(r.stderr).not.toContain('KUBE_APPLY_CONFLICT')
    expect(r.code).toBe(0)
  })

  test('after `kubectl patch` of two CronJobs: both conflicts listed with kubectl as the writer, in one run', async () => {
    for (const name of ['aggregate-features', 'generate-report']) {
      const p = await kubectl(s.kubeconfig, ['patch', 'cronjob', name, '-n', NS, '-p', '{"spec":{"startingDeadlineSeconds":600}}'])
      expect(p.code).toBe(0)
    }
    const err = await deploy(clientsFor(s, NS), { namespace: NS }).catch((e) => e)
    expect(err.code).toBe('KUBE_APPLY_CONFLICT')
    expect(err.exitCode).toBe(1)
    expect(err.data.conflicts.map((c: any) => `${c.name} ${c.field} ${c.manager} ${c.operation}`)).toEqual(['aggregate-features .spec.startingDeadlineSeconds kubectl-patch Update', 'generate-report .spec.startingDeadlineSeconds kubectl-patch Update'])
    expect(err.message).toContain('CronJob generate-report: .spec.startingDeadlineSeconds was last set by `kubectl patch` (field manager "kubectl-patch")')
    expect(err.data.conflicts[0].serverMessage).toBe('Apply failed with 1 conflict: conflict with "kubectl-patch" using batch/v1: .spec.startingDeadlineSeconds')
    // Every other object was still applied (nothing left half-way because of one conflict).
    expect(s.api.store.get(cj, NS, 'generate-report').spec.startingDeadlineSeconds).toBe(600)
    await deploy(clientsFor(s, NS), { namespace: NS, force: true })
    expect(s.api.store.get(cj, NS, 'generate-report').spec.startingDeadlineSeconds).toBe(3600)
  })

  test('nothing seedops or kubectl sent in these runs had a field the server dropped (no Warning answered)', () => {
    expect(s.api.requests.filter((r) => r.method !== 'GET').length).toBeGreaterThan(30)
    expect(s.api.requests.filter((r) => r.warnings).map((r) => `${r.method} ${r.path}: ${r.warnings}`)).toEqual([])
  })
})
