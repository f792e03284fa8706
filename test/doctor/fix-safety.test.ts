import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { findResource, startStandin, type Standin } from '../support/kube-standin/index.js'
import { runCli } from '../support/cli.js'
import { kubeEnv } from '../kube/helpers.js'
import { secretLeaks, seedSecrets } from './helpers.js'

/**
 * `doctor --fix` is safe: it restores only the image `seedops deploy` recorded (or --image), asks
 * the apiserver (SelfSubjectAccessReview) before each fix, and runs as the operator
 * ServiceAccount of k8s/ without a 403; as the read-only doctor identity it says what is missing
 * and does not try. And first contact: no kubeconfig at all.
 */
let s: Standin
const NS = 'fixsafe'
const IMAGE = 'registry.example/seedops:1.4.0'
const CJ = () => findResource('batch', 'v1', 'cronjobs')!
const image = (name: string) => s.api.store.get(CJ(), NS, name).spec.jobTemplate.spec.template.spec.containers[0].image
const ONLY = ['--only', 'cronjobs.present,cronjobs.spec']

/** What `kubectl set image cronjob/<name> seedops=<image>` does: the container changes, the record stays. */
function setImage(name: string, img: string) {
  const o = s.api.store.get(CJ(), NS, name)
  o.spec.jobTemplate.spec.template.spec.containers[0].image = img
  s.api.store.update(CJ(), o)
}

beforeAll(async () => {
  s = await startStandin()
  const r = await runCli(['deploy', '-n', NS, '--image', IMAGE], { env: kubeEnv(s) })
  expect(r.code).toBe(0)
  seedSecrets(s, NS)
  s.api.addToken('operator-token', `system:serviceaccount:${NS}:seedops-operator`)
  s.api.addToken('doctor-token', `system:serviceaccount:${NS}:seedops-doctor`)
})
afterAll(() => s?.stop())

describe('doctor --fix is safe', { timeout: 180_000 }, () => {
  test('deploy records the image on each CronJob; doctor without --image is content with it (no reset to the overlay tag)', async () => {
    for (const cj of s.api.store.list(CJ(), NS)) {
      const want = cj.metadata.name === 'generate-report' ? `${IMAGE}-report` : IMAGE
      expect(cj.metadata.annotations['seedops.io/deployed-image']).toBe(want)
      expect(cj.spec.jobTemplate.spec.template.spec.containers[0].image).toBe(want)
    }
    const r = await runCli(['doctor', '-n', NS, ...ONLY, '--fix', '--yes'], { env: kubeEnv(s, s.kubeconfigFor('operator-token', 'operator')) })
    expect(r.code).toBe(0)
    expect(r.stderr).toContain('--fix: nothing that doctor can fix safely')
    expect(s.api.store.list(CJ(), NS).map((c: any) => c.spec.jobTemplate.spec.template.spec.containers[0].image).filter((i: string) => !i.startsWith(IMAGE))).toEqual([])
  })

  test('as the operator identity: the drifted image goes back to 1.4.0 and an exact duplicate is deleted, nothing forbidden', async () => {
    setImage('compute-kpis', 'registry.example/seedops:1.5.0-rc1')
    const dup = s.api.store.get(CJ(), NS, 'aggregate-features')
    s.seed({ apiVersion: 'batch/v1', kind: 'CronJob', metadata: { name: 'aggregate-features-copy', namespace: NS }, spec: dup.spec })
    const since = s.api.requests.length
    const r = await runCli(['doctor', '-n', NS, ...ONLY, '--fix', '--yes'], { env: kubeEnv(s, s.kubeconfigFor('operator-token', 'operator')) })
    expect(secretLeaks(r.stdout + r.stderr)).toEqual([])
    expect(r.stderr).toContain(`set the image of CronJob compute-kpis container seedops back to ${IMAGE}, the image seedops deploy put there`)
    expect(r.stderr).toContain(`fixed: CronJob compute-kpis: seedops image set to ${IMAGE}`)
    expect(r.stderr).toContain('fixed: CronJob aggregate-features-copy deleted (duplicate of aggregate-features)')
    expect(r.code).toBe(0)
    expect(image('compute-kpis')).toBe(IMAGE)
    expect(image('generate-report')).toBe(`${IMAGE}-report`)
    expect(s.api.store.get(CJ(), NS, 'aggregate-features-copy')).toBeUndefined()
    const mine = s.api.requests.slice(since).filter((x) => x.user === `system:serviceaccount:${NS}:seedops-operator`)
    expect(mine.filter((x) => x.path.endsWith('/selfsubjectaccessreviews')).length).toBe(3) // get+patch, delete
    expect(mine.filter((x) => x.status === 403)).toEqual([])
  })

  test('as the read-only doctor identity: says which verb is missing with the can-i line, and does not try', async () => {
    setImage('compute-kpis', 'registry.example/seedops:1.5.0-rc1')
    const since = s.api.requests.length
    const r = await runCli(['doctor', '-n', NS, ...ONLY, '--fix', '--yes'], { env: kubeEnv(s, s.kubeconfigFor('doctor-token', 'doctor')) })
    expect(r.code).toBe(1)
    expect(r.stderr).toContain(`fix failed: set the image of CronJob compute-kpis container seedops back to ${IMAGE}`)
    expect(r.stderr).toContain(`not attempted, this identity may not patch cronjobs.batch "compute-kpis" in namespace ${NS} (check: kubectl auth can-i patch cronjobs.batch/compute-kpis -n ${NS})`)
    const mine = s.api.requests.slice(since).filter((x) => x.user === `system:serviceaccount:${NS}:seedops-doctor`)
    expect(mine.filter((x) => x.method === 'PATCH' || x.method === 'DELETE')).toEqual([])
    expect(image('compute-kpis')).toBe('registry.example/seedops:1.5.0-rc1')
  })

  test('an explicit --image is the other image --fix may set', async () => {
    const r = await runCli(['doctor', '-n', NS, ...ONLY, '--fix', '--yes', '--image', 'registry.example/seedops:1.4.1'], { env: kubeEnv(s, s.kubeconfigFor('operator-token', 'operator')) })
    expect(r.stderr).toContain('back to registry.example/seedops:1.4.1, as --image says')
    expect(image('compute-kpis')).toBe('registry.example/seedops:1.4.1')
    expect(image('generate-report')).toBe('registry.example/seedops:1.4.1-report')
  })
})

describe('first contact: no kubeconfig anywhere, not in a pod', { timeout: 120_000 }, () => {
  const env = () => ({ KUBECONFIG: '', HOME: mkdtempSync(join(tmpdir(), 'seedops-nohome-')), SEEDOPS_KUBE_POLL_MS: '100' })

  test('doctor runs the other checks, marks the cluster ones skipped and exits from the rest; --require-cluster fails', async () => {
    const e = env()
    // From an empty directory: no embedded database (.seedops) either.
    const r = await runCli(['doctor'], { env: e, cwd: e.HOME })
    expect(r.stdout + r.stderr).not.toContain('HTTP protocol')
    expect(r.code).toBe(0)
    const lines = r.stdout.trim().split('\n')
    expect(lines).toContain(
      `skip  cluster.reachable  no kubeconfig found (KUBECONFIG is empty, ${join(e.HOME, '.kube', 'config')} does not exist) and seedops is not running in a pod: cluster checks skipped; point seedops at a cluster with --kubeconfig PATH, --context NAME or KUBECONFIG (--require-cluster makes this a failure)`,
    )
    expect(lines.filter((l) => /^skip\s+(cronjobs\.|config\.|deployments\.|pods\.|jobs\.)/.test(l)).every((l) => l.endsWith('no cluster configured'))).toBe(true)
    expect(lines.filter((l) => /^skip\s+(cronjobs\.|config\.|deployments\.|pods\.|jobs\.)/.test(l))).toHaveLength(12)
    expect(lines).toEqual(expect.arrayContaining([expect.stringMatching(/^WARN\s+db\.reachable\s+no database configured/)]))
    expect(lines.at(-1)).toMatch(/^Found issues in 1 check: 0 failures, 1 warning, 0 ok, 17 skipped\.$/)

    const strict = await runCli(['doctor', '--require-cluster'], { env: e, cwd: e.HOME })
    expect(strict.code).toBe(1)
    expect(strict.stdout).toMatch(/FAIL\s+cluster\.reachable\s+no kubeconfig found .* and seedops is not running in a pod \(--require-cluster\)/)
    expect(strict.stdout).toContain('fix: Point seedops at a cluster: --kubeconfig PATH, or export KUBECONFIG=PATH')
  })

  test('another cluster command says the same, with how to point it at a cluster', async () => {
    const e = env()
    const r = await runCli(['jobs', 'list'], { env: e, cwd: e.HOME })
    expect(r.code).toBe(1)
    expect(r.stderr).not.toContain('HTTP protocol')
    expect(r.stderr).toContain(`Error (KUBE_NO_CONFIG): no kubeconfig found (KUBECONFIG is empty, ${join(e.HOME, '.kube', 'config')} does not exist) and seedops is not running in a pod`)
    expect(r.stderr).toContain('--kubeconfig PATH, or export KUBECONFIG=PATH')
    expect(r.stderr).toContain('--context NAME')
  })
})
