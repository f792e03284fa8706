import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { connect, parseDuration } from '../../src/lib/kube/connect.js'
import { translateKubeError, withConflictRetry } from '../../src/lib/kube/errors.js'
import { getSchedules } from '../../src/lib/kube/schedule.js'
import { startStandin, writeKubeconfig, type Standin } from '../support/kube-standin/index.js'

let s: Standin
beforeAll(async () => {
  s = await startStandin()
})
afterAll(() => s?.stop())

describe('connection flags and error translation', () => {
  test('--request-timeout aborts a slow request: KUBE_TIMEOUT with the flag to raise', async () => {
    s.api.faults.delayMs = 1500
    try {
      const k = connect({ kubeconfig: s.kubeconfig, requestTimeout: '300ms' })
      const e = await getSchedules(k).catch((x) => x)
      expect(e).toMatchObject({ code: 'KUBE_TIMEOUT' })
      expect(e.suggestions).toContain('Raise --request-timeout')
    } finally {
      s.api.faults.delayMs = 0
    }
  })

  test('an unreachable server names the server and the context', async () => {
    const cfg = writeKubeconfig(join(s.dir, 'dead'), 'https://127.0.0.1:9', 'x', { context: 'prod-eu' })
    const e = await getSchedules(connect({ kubeconfig: cfg })).catch((x) => x)
    expect(e).toMatchObject({ code: 'KUBE_UNREACHABLE', message: 'cannot reach the cluster at https://127.0.0.1:9 (ECONNREFUSED)' })
    expect(e.suggestions[0]).toContain('seedops used "prod-eu"')
  })

  test('a bad token is 401 → KUBE_UNAUTHORIZED; namespace defaults to seedtest, -n and --context are honoured', async () => {
    // Same cluster and CA, wrong token.
    const cfg = join(s.dir, 'badtoken')
    writeFileSync(cfg, readFileSync(s.kubeconfig, 'utf8').replace('admin-token', 'wrong-token'))
    expect(await getSchedules(connect({ kubeconfig: cfg })).catch((x) => x.code)).toBe('KUBE_UNAUTHORIZED')
    expect(connect({ kubeconfig: s.kubeconfig }).namespace).toBe('seedtest')
    expect(connect({ kubeconfig: s.kubeconfig, namespace: 'other' }).namespace).toBe('other')
    expect(() => connect({ kubeconfig: s.kubeconfig, context: 'nope' })).toThrow(expect.objectContaining({ code: 'USAGE', message: 'context "nope" is not in the kubeconfig' }))
    expect(() => connect({ kubeconfig: join(s.dir, 'missing') })).toThrow(expect.objectContaining({ exitCode: 2 }))
  })

  test('durations and Status bodies', () => {
    expect([parseDuration('30s'), parseDuration('2m'), parseDuration('500ms'), parseDuration('0'), parseDuration('1.5')]).toEqual([30_000, 120_000, 500, 0, 1500])
    expect(() => parseDuration('soon')).toThrow(expect.objectContaining({ exitCode: 2 }))
    const forbidden = translateKubeError({ code: 403, body: JSON.stringify({ kind: 'Status', message: 'pods "p" is forbidden: …', reason: 'Forbidden', code: 403 }) }, { verb: 'get', resource: 'pods/log', namespace: 'seedtest', name: 'p' })
    expect(forbidden.suggestions[0]).toBe('Check the permission: kubectl auth can-i get pods/log -n seedtest')
    const invalid = translateKubeError({ code: 422, body: { kind: 'Status', message: 'CronJob.batch "x" is invalid: spec.schedule: Invalid value', reason: 'Invalid', details: { causes: [{ field: 'spec.schedule' }] } } }, { verb: 'patch', resource: 'cronjobs.batch', name: 'x' })
    expect(invalid).toMatchObject({ code: 'KUBE_INVALID', data: { causes: [{ field: 'spec.schedule' }] } })
  })

  test('conflicts are retried, other errors are not', async () => {
    let n = 0
    const conflict = { code: 409, body: { reason: 'Conflict', code: 409 } }
    expect(await withConflictRetry(async () => (++n < 3 ? Promise.reject(conflict) : 'ok'))).toBe('ok')
    expect(n).toBe(3)
    let m = 0
    await expect(withConflictRetry(async () => { m++; return Promise.reject({ code: 404, body: {} }) })).rejects.toMatchObject({ code: 404 })
    expect(m).toBe(1)
  })
})
