import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parse as parseYaml, parseAllDocuments, stringify } from 'yaml'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import * as models from 'kubernetes-models'
import { buildKustomization, loadManifests, podContainers } from '../../src/lib/kube/manifests.js'
import { expectedCronJobs, EVENT_DRIVEN_STAGES } from '../../src/lib/kube/expected.js'
import { findResource, kubectl, startStandin, type Standin } from '../support/kube-standin/index.js'
import { strictProblems } from '../support/kube-standin/schema.js'
import { ROOT } from '../support/cli.js'

const K8S = join(ROOT, 'k8s')
const OVERLAYS = readdirSync(join(K8S, 'overlays'))
const STANDALONE = ['jobs/generate-report-indexed.yaml', 'examples/secrets.example.yaml']
/**
 * Custom resources (Prometheus Operator, overlays/monitoring): kubernetes-models and the stand-in
 * API server know no CRDs, so these are checked here by what they point at, and their alert rules
 * by promtool (test/monitoring/rules.test.ts); they are left out of the server dry run.
 */
const CRD_KINDS = new Set(['monitoring.coreos.com/v1 ServiceMonitor', 'monitoring.coreos.com/v1 PrometheusRule'])
const isCrd = (o: { apiVersion: string; kind: string }) => CRD_KINDS.has(`${o.apiVersion} ${o.kind}`)

function checkCustomResource(o: any, objs: any[]) {
  expect(o.metadata?.name).toMatch(/^[a-z0-9-]+$/)
  if (o.kind === 'ServiceMonitor') {
    const sel: Record<string, string> = o.spec.selector.matchLabels
    const svcs = objs.filter((x) => x.kind === 'Service' && x.metadata.namespace === o.metadata.namespace && Object.entries(sel).every(([k, v]) => x.metadata.labels?.[k] === v))
    expect(svcs.map((x) => x.metadata.name), 'ServiceMonitor selects one Service').toHaveLength(1)
    for (const e of o.spec.endpoints) expect(svcs[0].spec.ports.map((p: any) => p.name), `endpoint port ${e.port}`).toContain(e.port)
  } else {
    expect(o.spec.groups.length).toBeGreaterThan(0)
    for (const g of o.spec.groups) for (const r of g.rules) expect(typeof (r.alert ?? r.record) === 'string' && typeof r.expr === 'string', JSON.stringify(r)).toBe(true)
  }
}

/** The kubernetes-models class for an object (e.g. batch/v1 CronJob). */
function modelFor(o: { apiVersion: string; kind: string }): (new (x: unknown) => { validate(): void }) | undefined {
  const [group, version] = o.apiVersion.includes('/') ? o.apiVersion.split('/') : ['', o.apiVersion]
  // kubernetes-models names groups in camel case: rbac.authorization.k8s.io → rbacAuthorizationK8sIo.
  const ns = (models as any)[group === '' ? 'v1' : group.replace(/\.(\w)/g, (_, c: string) => c.toUpperCase())]
  const mod = group === '' ? ns : ns?.[version]
  return mod?.[o.kind]
}

function sortKeys(v: any): any {
  if (Array.isArray(v)) return v.map(sortKeys)
  if (v && typeof v === 'object') return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortKeys(v[k])]))
  return v
}

describe('k8s/ manifests', () => {
  const all = [
    ...OVERLAYS.map((o) => ({ name: `overlays/${o}`, objs: buildKustomization(join(K8S, 'overlays', o)) })),
    ...STANDALONE.map((f) => ({ name: f, objs: parseAllDocuments(readFileSync(join(K8S, f), 'utf8')).map((d) => d.toJS()) })),
  ]

  test.each(all.map((a) => [a.name, a.objs] as const))('%s validates against the Kubernetes OpenAPI schemas', (_n, objs) => {
    expect(objs.length).toBeGreaterThan(0)
    for (const o of objs) {
      if (isCrd(o)) {
        checkCustomResource(o, objs)
        continue
      }
      const M = modelFor(o)
      expect(M, `${o.apiVersion} ${o.kind} has a schema`).toBeDefined()
      expect(() => new M!(o).validate(), `${o.kind}/${o.metadata.name ?? o.metadata.generateName}`).not.toThrow()
    }
  })

  test.each(OVERLAYS)('overlays/%s: seedops builds what `kubectl kustomize` builds', async (overlay) => {
    const r = await kubectl('/dev/null', ['kustomize', join(K8S, 'overlays', overlay)])
    expect(r.stderr).toBe('')
    const theirs = parseAllDocuments(r.stdout).map((d) => d.toJS())
    const ours = buildKustomization(join(K8S, 'overlays', overlay))
    const key = (o: any) => `${o.kind}/${o.metadata.namespace}/${o.metadata.name}`
    expect(ours.map(key).sort()).toEqual(theirs.map(key).sort())
    for (const o of theirs) expect(sortKeys(ours.find((x) => key(x) === key(o))), key(o)).toEqual(sortKeys(o))
  })

  test('one CronJob per scheduled stage, on the seedops image, with the schedules of the spec', () => {
    const cj = expectedCronJobs()
    expect(cj.map((c) => [c.stage, c.schedule])).toEqual([
      ['aggregate-features', '15 1 * * *'],
      ['compute-kpis', '10 2 * * *'],
      ['calibrate-irt', '0 3 * * *'],
      ['generate-report', '0 4 * * 1'],
      ['detect-inactivity', '0 5 * * *'],
    ])
    expect(new Set(cj.map((c) => c.stage)).size).toBe(cj.length)
    expect(cj.map((c) => c.stage)).not.toContain(EVENT_DRIVEN_STAGES[0])
    for (const c of cj) {
      expect(c.command).toEqual(['seedops', 'run', c.stage])
      expect(c.concurrencyPolicy).toBe('Forbid')
      expect(c.timeZone).toBe('Etc/UTC')
      expect(c.image).toBe(c.stage === 'generate-report' ? 'ghcr.io/seedtest/seedops:0.1.0-report' : 'ghcr.io/seedtest/seedops:0.1.0')
      expect(c.refs.find((r) => r.name === 'seedtest-db-credentials')).toEqual({ kind: 'Secret', name: 'seedtest-db-credentials', keys: ['DATABASE_URL'], optional: false })
    }
    const report = cj.find((c) => c.stage === 'generate-report')!
    expect(report.refs).toContainEqual({ kind: 'ConfigMap', name: 'report-config', keys: [], optional: false })
    expect(report.refs).toContainEqual({ kind: 'Secret', name: 'aws-s3-credentials', keys: ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_ENDPOINT_URL'], optional: true })
    expect(cj.find((c) => c.stage === 'calibrate-irt')!.refs).toContainEqual({ kind: 'Secret', name: 'r-irt-credentials', keys: ['token'], optional: true })
  })

  test('every workload has history limits, backoffLimit, resources, and runs non-root', () => {
    for (const o of loadManifests()) {
      if (o.kind === 'CronJob') {
        expect(o.spec.successfulJobsHistoryLimit).toBeGreaterThan(0)
        expect(o.spec.failedJobsHistoryLimit).toBeGreaterThan(0)
        expect(o.spec.jobTemplate.spec.backoffLimit).toBeGreaterThanOrEqual(0)
      }
      for (const c of podContainers(o)) {
        expect(c.resources?.requests?.memory, `${o.metadata.name}/${c.name}`).toBeDefined()
        expect(c.resources?.limits?.memory, `${o.metadata.name}/${c.name}`).toBeDefined()
        expect(c.securityContext?.allowPrivilegeEscalation).toBe(false)
      }
      const podSpec = o.kind === 'CronJob' ? o.spec.jobTemplate.spec.template.spec : o.spec?.template?.spec
      if (podSpec) expect(podSpec.securityContext.runAsNonRoot).toBe(true)
    }
  })

  test('only overlays/monitoring has custom resources: the default overlay `seedops deploy` applies needs no CRDs', () => {
    const withCrds = all.filter((a) => a.objs.some(isCrd)).map((a) => a.name)
    expect(withCrds).toEqual(['overlays/monitoring'])
    expect(loadManifests().filter(isCrd)).toEqual([])
    const mon = buildKustomization(join(K8S, 'overlays', 'monitoring'))
    expect(mon.filter(isCrd).map((o) => `${o.kind}/${o.metadata.namespace}/${o.metadata.name}`).sort()).toEqual(['PrometheusRule/seedtest/seedops', 'ServiceMonitor/seedtest/seedops-irt'])
    // Everything else is production, unchanged.
    expect(mon.filter((o) => !isCrd(o))).toEqual(buildKustomization(join(K8S, 'overlays', 'production')))
  })

  test('the db-proxy overlay adds the proxy as a native sidecar to every CronJob', () => {
    const objs = buildKustomization(join(K8S, 'overlays', 'db-proxy')).filter((o) => o.kind === 'CronJob')
    expect(objs).toHaveLength(5)
    for (const o of objs) expect(o.spec.jobTemplate.spec.template.spec.initContainers).toEqual([expect.objectContaining({ name: 'db-proxy', restartPolicy: 'Always' })])
  })

  test('--image pins every seedops container; the report CronJob gets the -report variant; sidecars keep theirs', () => {
    const objs = loadManifests({ dir: join(K8S, 'overlays', 'db-proxy'), image: 'registry.example/seedops:2.0.1' })
    const images = objs.flatMap((o) => podContainers(o).map((c) => [o.metadata.name, c.name, c.image]))
    expect(images.filter(([, c]) => c === 'seedops')).toHaveLength(6)
    for (const [name, c, img] of images) {
      if (c === 'db-proxy') expect(img).toMatch(/cloud-sql-proxy/)
      else expect(img).toBe(name === 'generate-report' ? 'registry.example/seedops:2.0.1-report' : 'registry.example/seedops:2.0.1')
    }
  })

  describe('against the API server (kubectl apply --server-side --dry-run=server)', () => {
    let s: Standin
    beforeAll(async () => {
      s = await startStandin()
    })
    afterAll(() => s?.stop())

    test.each([...OVERLAYS.map((o) => `overlays/${o}`), ...STANDALONE])('%s is accepted by the server', async (name) => {
      const rendered = name.startsWith('overlays/') ? (await kubectl('/dev/null', ['kustomize', join(K8S, name)])).stdout : readFileSync(join(K8S, name), 'utf8')
      const docs = parseAllDocuments(rendered).map((x) => x.toJS())
      // The stand-in has no CRDs installed (checked above instead).
      const input = docs.some(isCrd) ? docs.filter((d) => !isCrd(d)).map((d) => stringify(d)).join('---\n') : rendered
      // The namespace must exist for a server dry run; create the overlay's.
      for (const d of parseAllDocuments(input).map((x) => x.toJS())) {
        const ns = d?.metadata?.namespace
        if (ns && !s.api.store.list(findResource('', 'v1', 'namespaces')!).some((n) => n.metadata.name === ns)) s.seed({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } })
      }
      // Overlays carry their namespace; the standalone files take it from -n.
      const ns = name.startsWith('overlays/') ? [] : ['-n', 'seedtest']
      const verb = name.startsWith('jobs/') ? ['create', '--dry-run=server', ...ns, '-f', '-'] : ['apply', '--server-side', '--dry-run=server', ...ns, '-f', '-']
      const r = await kubectl(s.kubeconfig, verb, { input })
      expect(r.stderr).toBe('')
      expect(r.code).toBe(0)
      expect(r.stdout).toMatch(/server dry run/)
      // Nothing stored.
      expect(s.api.store.list(findResource('batch', 'v1', 'cronjobs')!)).toHaveLength(0)
    })

    test('a broken manifest is rejected with the server\'s message', async () => {
      const bad = readFileSync(join(K8S, 'base', 'cronjob-compute-kpis.yaml'), 'utf8').replace('"10 2 * * *"', '"10 2 * *"')
      const r = await kubectl(s.kubeconfig, ['apply', '--server-side', '--dry-run=server', '-n', 'seedtest', '-f', '-'], { input: bad.replace('image: seedops', 'image: x:1') })
      expect(r.code).toBe(1)
      expect(r.stderr).toContain('spec.schedule: Invalid value: "10 2 * *"')
    })
  })
})

/** Every YAML file under k8s/, relative. */
function manifestFiles(dir = K8S, rel = ''): string[] {
  return readdirSync(join(dir, rel), { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? manifestFiles(dir, join(rel, e.name)) : /\.ya?ml$/.test(e.name) ? [join(rel, e.name)] : []))
}

describe('k8s/ under strict field validation (the OpenAPI schemas a 1.35 apiserver checks with fieldValidation=Strict)', () => {
  const files = manifestFiles()

  test('every object in every file declares only fields of its kind\'s schema, each once', () => {
    expect(files.length).toBeGreaterThan(15)
    const skipped = new Set<string>()
    for (const f of files) {
      const r = strictProblems(readFileSync(join(K8S, f), 'utf8'))
      expect(r.problems, f).toEqual([])
      for (const k of r.skipped) skipped.add(k)
    }
    // Only kustomize's own files and the two custom resources (checked above) have no OpenAPI schema here.
    expect([...skipped].sort()).toEqual(['kustomize.config.k8s.io/v1beta1 Kustomization', 'monitoring.coreos.com/v1 PrometheusRule', 'monitoring.coreos.com/v1 ServiceMonitor'])
  })

  test('a mutated copy with one unknown or duplicated field fails, naming the object and the path', () => {
    const original = readFileSync(join(K8S, 'base', 'cronjob-compute-kpis.yaml'), 'utf8')
    expect(strictProblems(original).problems).toEqual([])
    const typo = original.replace(/^(\s+)command: (.+)$/m, '$1command: $2\n$1imagePullPolicyy: Always')
    expect(typo).not.toBe(original)
    expect(strictProblems(typo).problems).toEqual(['CronJob compute-kpis: unknown field "spec.jobTemplate.spec.template.spec.containers[0].imagePullPolicyy"'])
    const top = original.replace(/^spec:$/m, 'spec:\n  retries: 3')
    expect(strictProblems(top).problems).toEqual(['CronJob compute-kpis: unknown field "spec.retries"'])
    const dup = original.replace(/^(\s+)schedule: (.+)$/m, '$1schedule: $2\n$1schedule: "0 3 * * *"')
    expect(strictProblems(dup).problems).toEqual(['CronJob compute-kpis: duplicate field "spec.schedule"'])
  })
})

describe('Dockerfile', () => {
  const text = readFileSync(join(ROOT, 'Dockerfile'), 'utf8')
  // Instructions with continuation lines joined, comments dropped.
  const lines = text.replace(/\\\n/g, ' ').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'))
  const stages: { name: string; from: string; lines: string[] }[] = []
  const args = Object.fromEntries(lines.filter((l) => /^ARG \w+=/.test(l)).map((l) => l.slice(4).split('=')))
  for (const l of lines) {
    const m = /^FROM\s+(\S+)(?:\s+AS\s+(\S+))?/i.exec(l)
    if (m) stages.push({ name: m[2] ?? String(stages.length), from: m[1].replace(/\$\{(\w+)\}/g, (_, a) => args[a] ?? ''), lines: [] })
    else stages.at(-1)?.lines.push(l)
  }
  const stage = (n: string) => stages.find((s) => s.name === n)!
  const last = (s: { lines: string[] }, instr: string) => [...s.lines].reverse().find((l) => l.startsWith(instr + ' '))

  test('multi-stage on node:22 slim, with build, deps, runtime and report targets', () => {
    expect(stages.map((s) => s.name)).toEqual(['build', 'deps', 'runtime', 'report'])
    for (const s of stages.slice(0, 3)) expect(s.from).toMatch(/^node:22(\.\d+)*-(bookworm-|bullseye-)?slim$/)
    expect(stage('report').from).toBe('runtime')
  })

  test('the runtime gets production dependencies only, the compiled dist and the migrations', () => {
    expect(stage('deps').lines.some((l) => /npm ci\b.*--omit=dev/.test(l))).toBe(true)
    const rt = stage('runtime').lines
    expect(rt.some((l) => /^COPY --from=deps .*node_modules/.test(l))).toBe(true)
    expect(rt.some((l) => /^COPY --from=build .*\/app\/dist \.\/dist/.test(l))).toBe(true)
    expect(rt.some((l) => /^COPY .*migrations \.\/migrations/.test(l))).toBe(true)
    expect(rt.some((l) => /^COPY .*bin \.\/bin/.test(l))).toBe(true)
    expect(rt.some((l) => /npm (ci|install)(?!.*--omit=dev)/.test(l))).toBe(false)
    expect(stage('build').lines).toContain('RUN npm run build')
    // The build starts from an empty dist/ (no stale module of a deleted file can ship), compiles, writes the manifest.
    expect(JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).scripts.build).toMatch(/^node -e "fs\.rmSync\('dist', \{recursive: true, force: true\}\)" && tsc -p tsconfig\.build\.json && node scripts\/oclif-manifest\.mjs$/)
    // The command manifest the build writes ships with dist (without it every start imports every command).
    expect(rt.some((l) => /^COPY --from=build .*\/app\/oclif\.manifest\.json \.\//.test(l))).toBe(true)
    // Benchmarks are built apart (dist-bench/) and never reach the image.
    expect(stage('build').lines.some((l) => /^COPY .*bench/.test(l))).toBe(false)
  })

  test('non-root, and `seedops` is the entrypoint in both runnable targets', () => {
    for (const n of ['runtime', 'report']) {
      const user = last(stage(n), 'USER')!.split(/\s+/)[1]
      expect(user).not.toMatch(/^(root|0)(:|$)/)
      expect(JSON.parse(last(stage(n), 'ENTRYPOINT')!.slice('ENTRYPOINT '.length))).toEqual(['seedops'])
    }
    expect(stage('runtime').lines.some((l) => l.includes('ln -s /app/bin/run.js /usr/local/bin/seedops'))).toBe(true)
    // The k8s securityContext runs as 10001: the image's user must match.
    const pod = parseYaml(readFileSync(join(K8S, 'base', 'cronjob-compute-kpis.yaml'), 'utf8')).spec.jobTemplate.spec.template.spec
    expect(last(stage('runtime'), 'USER')).toBe(`USER ${pod.securityContext.runAsUser}:${pod.securityContext.runAsGroup}`)
  })

  test('the report target adds Quarto and Chromium', () => {
    const run = stage('report').lines.filter((l) => l.startsWith('RUN')).join(' ')
    expect(run).toMatch(/apt-get install[^&]*\bchromium\b/)
    expect(run).toMatch(/quarto-\$\{QUARTO_VERSION\}-linux-amd64\.deb/)
    expect(run).toContain('rm -rf /var/lib/apt/lists/*')
  })

  test('.dockerignore keeps node_modules, dist and env files out of the context', () => {
    const ignore = readFileSync(join(ROOT, '.dockerignore'), 'utf8').split('\n')
    for (const p of ['node_modules', 'dist', '.env', '*.env', '.git']) expect(ignore).toContain(p)
  })
})
