import { registerSecret, SeedopsError } from '../errors/index.js'
import type { KubeClients } from '../kube/client.js'
import { applyOne } from '../kube/deploy.js'
import { expectedCronJobs } from '../kube/expected.js'
import { listJobs } from '../kube/jobs.js'
import { loadManifests, type KubeObject } from '../kube/manifests.js'
import { buildPlan, describeSource, permissionsFor, readSource, type PlanOptions, type PlanRow, type Step } from './plan.js'
import { emptyRecord, readRecord, RECORD_NAME, writeRecord, type AdoptionRecord } from './record.js'
import { createObject, deleteObject, getObject, jsonPatch, mergePatch, REF, refOf, replaceObject, requirePermissions, type Permission } from './rest.js'

/**
 * `seedops adopt --yes | --rollback | --prune-legacy`. Apply: copy secrets, deploy seedops'
 * objects, replace same-named legacy CronJobs in place, point r-irt-plumber at seedops, suspend
 * the legacy CronJobs (never delete them here), and record each of these in the adoption record as
 * it happens. Rollback undoes exactly what the record holds; prune deletes the legacy CronJobs once
 * every replacing stage has succeeded.
 */
export interface AdoptResult {
  mode: 'plan' | 'apply' | 'rollback' | 'prune'
  namespace: string
  rows: PlanRow[]
  changes: number
  /** What was done, in order (apply, rollback, prune). */
  done: string[]
  warnings: string[]
}

const ADOPTED_ANNOTATION = 'seedops.io/adopted'

export async function adoptPlan(k: KubeClients, opts: PlanOptions = {}): Promise<AdoptResult> {
  const { plan } = await buildPlan(k, opts)
  return { mode: 'plan', namespace: plan.namespace, rows: plan.rows, changes: plan.changes, done: [], warnings: plan.warnings }
}

export async function adoptApply(k: KubeClients, opts: PlanOptions = {}): Promise<AdoptResult> {
  const { plan, steps, record: existing } = await buildPlan(k, opts)
  const result = (done: string[]): AdoptResult => ({ mode: 'apply', namespace: plan.namespace, rows: plan.rows, changes: plan.changes, done, warnings: plan.warnings })
  if (!steps.length) return result([])
  await requirePermissions(k, permissionsFor(steps, Boolean(existing)), 'seedops adopt --yes')
  const record: AdoptionRecord = existing ?? emptyRecord()
  if (opts.image) record.image = opts.image
  const done: string[] = []
  try {
    await runSteps(k, steps, record, done)
  } catch (e) {
    const err = e instanceof SeedopsError ? e : new SeedopsError(String(e), { code: 'ADOPT_FAILED', cause: e })
    await writeRecord(k, record, Boolean(existing)).catch(() => {})
    throw new SeedopsError(`adopt stopped after ${done.length} step(s): ${err.message}`, {
      code: err.code,
      suggestions: [...err.suggestions, `What was done is recorded in ConfigMap ${RECORD_NAME}: fix the cause and run seedops adopt --yes again, or undo it: seedops adopt --rollback -n ${k.namespace}`],
      data: { ...err.data, done },
      cause: err,
    })
  }
  await writeRecord(k, record, Boolean(existing))
  done.push(`recorded in ConfigMap ${RECORD_NAME}`)
  return result(done)
}

async function runSteps(k: KubeClients, steps: Step[], record: AdoptionRecord, done: string[]) {
  const created = (kind: string, name: string) => {
    if (!record.created.some((c) => c.kind === kind && c.name === name)) record.created.push({ kind, name })
  }
  // Secrets first, so the workloads find them when they start.
  const copies = steps.filter((s): s is Extract<Step, { kind: 'copy' }> => s.kind === 'copy')
  const targets = [...new Set(copies.map((c) => `${c.target.kind}/${c.target.name}`))]
  for (const t of targets) {
    const mine = copies.filter((c) => `${c.target.kind}/${c.target.name}` === t)
    const { kind, name } = mine[0].target
    const data: Record<string, string> = {}
    for (const c of mine) {
      const v = await readSource(k, c.source)
      if (v === undefined) throw new SeedopsError(`${describeSource(c.source)} is gone since the plan was made`, { code: 'ADOPT_SOURCE_GONE' })
      registerSecret(kind === 'Secret' ? v : undefined)
      data[c.key] = kind === 'Secret' ? Buffer.from(v, 'utf8').toString('base64') : v
    }
    const from = mine.map((c) => `${c.key}←${describeSource(c.source)}`).join('; ')
    if (mine[0].targetExists) {
      await mergePatch(k, refOf(kind, name), { data })
      for (const c of mine) record.keysAdded.push({ kind, name, key: c.key })
      done.push(`added ${mine.map((c) => c.key).join(', ')} to ${t} (from ${mine.map((c) => describeSource(c.source)).join(', ')})`)
    } else {
      const obj: KubeObject = {
        apiVersion: 'v1',
        kind,
        metadata: { name, namespace: k.namespace, labels: { 'app.kubernetes.io/part-of': 'seedops' }, annotations: { 'seedops.io/copied-from': from } },
        ...(kind === 'Secret' ? { type: 'Opaque' } : {}),
        data,
      }
      await createObject(k, refOf(kind, name), obj)
      created(kind, name)
      done.push(`created ${t} (${mine.map((c) => c.key).join(', ')} from ${mine.map((c) => describeSource(c.source)).join(', ')})`)
    }
  }
  for (const s of steps) {
    if (s.kind === 'apply') {
      const action = await applyOne(k, s.object, { dryRun: false, force: false })
      if (action === 'created') created(s.object.kind, s.object.metadata.name)
      done.push(`${action} ${s.object.kind}/${s.object.metadata.name}`)
    } else if (s.kind === 'replace') {
      const { metadata, spec } = s.live
      record.replaced.push({ name: s.object.metadata.name, stage: s.stage, before: { labels: metadata.labels, annotations: metadata.annotations, spec } })
      const body: KubeObject = { ...s.object, metadata: { ...s.object.metadata, resourceVersion: metadata.resourceVersion as string } }
      await replaceObject(k, REF.cronjob(s.object.metadata.name), body)
      done.push(`replaced legacy CronJob/${s.object.metadata.name} in place with seedops' (stage ${s.stage})`)
    }
  }
  for (const s of steps) {
    if (s.kind !== 'service') continue
    const name = s.object.metadata.name
    if (!s.live) {
      await applyOne(k, s.object, { dryRun: false, force: false })
      created('Service', name)
      done.push(`created Service/${name} → seedops irt serve`)
      continue
    }
    const before = { selector: s.live.spec.selector, ports: s.live.spec.ports, labels: s.live.metadata.labels, annotations: s.live.metadata.annotations }
    record.service = { name, before }
    const nulls = (cur: Record<string, string> | undefined, want: Record<string, string>) => ({ ...Object.fromEntries(Object.keys(cur ?? {}).map((x) => [x, null])), ...want })
    await mergePatch(k, REF.service(name), {
      metadata: { resourceVersion: s.live.metadata.resourceVersion, labels: nulls(s.live.metadata.labels, s.object.metadata.labels ?? {}), annotations: { [ADOPTED_ANNOTATION]: 'selector and ports point at seedops irt serve; seedops adopt --rollback restores them' } },
      spec: { selector: nulls(s.live.spec.selector, s.object.spec.selector), ports: s.object.spec.ports },
    })
    done.push(`pointed Service/${name} at seedops irt serve (old selector and ports recorded)`)
  }
  for (const s of steps) {
    if (s.kind === 'suspend' || s.kind === 'record-legacy') {
      if (!record.legacyCronJobs.some((r) => r.name === s.name)) record.legacyCronJobs.push({ name: s.name, stage: s.stage, schedule: s.schedule, wasSuspended: s.kind === 'record-legacy', suspendedByAdopt: s.kind === 'suspend' })
      if (s.kind === 'suspend') {
        await mergePatch(k, REF.cronjob(s.name), { spec: { suspend: true } })
        done.push(`suspended legacy CronJob/${s.name} (stage ${s.stage})`)
      }
    }
  }
}

const noRecord = (ns: string, what: string) =>
  new SeedopsError(`nothing to ${what}: no adoption recorded in namespace ${ns} (ConfigMap ${RECORD_NAME})`, { code: 'ADOPT_NOT_ADOPTED', suggestions: [`See the plan: seedops adopt -n ${ns}`, `Apply it: seedops adopt --yes -n ${ns}`] })

export async function adoptRollback(k: KubeClients): Promise<AdoptResult> {
  const ns = k.namespace
  const record = await readRecord(k)
  if (!record) throw noRecord(ns, 'roll back')
  if (record.pruned.length) {
    throw new SeedopsError(`the legacy CronJobs ${record.pruned.join(', ')} were deleted by --prune-legacy; rollback cannot bring them back`, {
      code: 'ADOPT_PRUNED',
      suggestions: ['Re-create them from the predecessor\'s manifests if you need them'],
    })
  }
  const rows: PlanRow[] = []
  const needs: Permission[] = []
  for (const r of record.replaced) {
    rows.push({ legacy: `CronJob/${r.name}`, seedops: `CronJob/${r.name}`, action: 'replace', note: 'the legacy definition put back' })
    needs.push({ verb: 'update', group: 'batch', resource: 'cronjobs', name: r.name, why: 'put the legacy CronJob back' })
  }
  for (const c of [...record.created].reverse()) {
    const ref = refOf(c.kind, c.name)
    if (record.service && c.kind === 'Service' && c.name === record.service.name) continue
    rows.push({ legacy: '—', seedops: `${c.kind}/${c.name}`, action: 'none', note: 'created by adopt: deleted' })
    needs.push({ verb: 'delete', group: ref.group, resource: ref.resource, name: c.name, why: `delete ${c.kind} ${c.name} that adopt created` })
  }
  for (const l of record.legacyCronJobs) {
    rows.push({ legacy: `CronJob/${l.name}`, seedops: '—', action: 'none', note: l.suspendedByAdopt ? `resumed, schedule "${l.schedule}"` : `stays suspended (it was before adopt), schedule "${l.schedule}"` })
    needs.push({ verb: 'patch', group: 'batch', resource: 'cronjobs', name: l.name, why: 'resume the legacy CronJob' })
  }
  if (record.service) {
    rows.push({ legacy: `Service/${record.service.name}`, seedops: '—', action: 'none', note: 'selector and ports restored' })
    needs.push({ verb: 'patch', group: '', resource: 'services', name: record.service.name, why: 'restore the legacy Service' })
  }
  for (const a of record.keysAdded) {
    rows.push({ legacy: '—', seedops: `${a.kind}/${a.name}[${a.key}]`, action: 'none', note: 'key added by adopt: removed' })
    const ref = refOf(a.kind, a.name)
    needs.push({ verb: 'patch', group: ref.group, resource: ref.resource, name: a.name, why: `remove ${a.key} from ${a.kind} ${a.name}` })
  }
  needs.push({ verb: 'delete', group: '', resource: 'configmaps', name: RECORD_NAME, why: 'delete the adoption record' })
  await requirePermissions(k, needs, 'seedops adopt --rollback')

  const done: string[] = []
  // seedops' CronJobs go first, so no stage is ever scheduled twice.
  for (const r of record.replaced) {
    const cur = await getObject(k, REF.cronjob(r.name))
    const body: KubeObject = { apiVersion: 'batch/v1', kind: 'CronJob', metadata: { name: r.name, namespace: ns, labels: r.before.labels, annotations: r.before.annotations, resourceVersion: cur?.metadata.resourceVersion as string }, spec: r.before.spec }
    if (cur) await replaceObject(k, REF.cronjob(r.name), body)
    else await createObject(k, REF.cronjob(r.name), { ...body, metadata: { ...body.metadata, resourceVersion: undefined } })
    done.push(`put legacy CronJob/${r.name} back`)
  }
  const order = (kind: string) => ['CronJob', 'Deployment', 'Service'].indexOf(kind) + 1 || 9
  for (const c of [...record.created].reverse().sort((a, b) => order(a.kind) - order(b.kind))) {
    if (record.service && c.kind === 'Service' && c.name === record.service.name) continue
    if (await deleteObject(k, refOf(c.kind, c.name))) done.push(`deleted ${c.kind}/${c.name}`)
  }
  for (const l of record.legacyCronJobs) {
    const cur = await getObject(k, REF.cronjob(l.name))
    if (!cur) {
      done.push(`legacy CronJob/${l.name} no longer exists: not restored`)
      continue
    }
    const spec: Record<string, unknown> = {}
    if (cur.spec.schedule !== l.schedule) spec.schedule = l.schedule
    const suspend = l.suspendedByAdopt ? false : l.wasSuspended
    if (Boolean(cur.spec.suspend) !== suspend) spec.suspend = suspend
    if (Object.keys(spec).length) await mergePatch(k, REF.cronjob(l.name), { spec })
    done.push(`${suspend ? 'left suspended' : 'resumed'} legacy CronJob/${l.name} (${l.schedule})`)
  }
  if (record.service) {
    const name = record.service.name
    const cur = await getObject(k, REF.service(name))
    if (cur) {
      // A map that was absent before is removed (null), not left empty.
      const back = (now: Record<string, string> | undefined, was: Record<string, string> | undefined) => (was === undefined ? null : { ...Object.fromEntries(Object.keys(now ?? {}).map((x) => [x, null])), ...was })
      await mergePatch(k, REF.service(name), {
        metadata: { labels: back(cur.metadata.labels, record.service.before.labels), annotations: back(cur.metadata.annotations, record.service.before.annotations) },
        spec: { selector: back(cur.spec.selector, record.service.before.selector), ports: record.service.before.ports },
      })
      done.push(`restored Service/${name}`)
    }
  }
  for (const a of record.keysAdded) {
    const cur = await getObject(k, refOf(a.kind, a.name))
    if (cur?.data?.[a.key] === undefined) continue
    await jsonPatch(k, refOf(a.kind, a.name), [{ op: 'remove', path: `/data/${a.key.replace(/~/g, '~0').replace(/\//g, '~1')}` }])
    done.push(`removed ${a.key} from ${a.kind}/${a.name}`)
  }
  await deleteObject(k, REF.configmap(RECORD_NAME))
  done.push(`deleted the adoption record ${RECORD_NAME}`)
  return { mode: 'rollback', namespace: ns, rows, changes: rows.length, done, warnings: [] }
}

export interface StageEvidence {
  stage: string
  cronjob: string
  succeeded: boolean
  /** How we know: `job <name>`, `lastSuccessfulTime`, `run log`. */
  by?: string
}

/**
 * Which replacing stages have succeeded: the seedops CronJob's lastSuccessfulTime, a Job of it
 * that completed, or (when a database is configured) a succeeded run in seedops_stage_runs.
 */
export async function stageEvidence(k: KubeClients, stages: string[], opts: { dir?: string; runLog?: (stages: string[]) => Promise<Record<string, string | undefined>> } = {}): Promise<StageEvidence[]> {
  const expected = expectedCronJobs(loadManifests({ dir: opts.dir, namespace: k.namespace }))
  const jobs = await listJobs(k)
  const log = opts.runLog ? await opts.runLog(stages).catch(() => ({}) as Record<string, string | undefined>) : {}
  const out: StageEvidence[] = []
  for (const stage of stages) {
    const cronjob = expected.find((e) => e.stage === stage)?.name ?? stage
    const cj = await getObject(k, REF.cronjob(cronjob))
    const job = jobs.find((j) => j.cronjob === cronjob && j.state === 'succeeded')
    const by = cj?.status?.lastSuccessfulTime ? `lastSuccessfulTime ${new Date(cj.status.lastSuccessfulTime).toISOString()}` : job ? `job ${job.name}` : log[stage] ? `run log ${log[stage]}` : undefined
    out.push({ stage, cronjob, succeeded: Boolean(by), by })
  }
  return out
}

export async function adoptPrune(k: KubeClients, opts: { dir?: string; runLog?: (stages: string[]) => Promise<Record<string, string | undefined>> } = {}): Promise<AdoptResult & { evidence: StageEvidence[] }> {
  const ns = k.namespace
  const record = await readRecord(k)
  if (!record) throw noRecord(ns, 'prune')
  const legacy = record.legacyCronJobs.filter((l) => !record.pruned.includes(l.name))
  const stages = [...new Set(legacy.map((l) => l.stage))]
  const evidence = await stageEvidence(k, stages, opts)
  const lacking = evidence.filter((e) => !e.succeeded)
  if (lacking.length) {
    throw new SeedopsError(`not pruning: ${lacking.length === 1 ? 'stage' : 'stages'} ${lacking.map((e) => e.stage).join(', ')} ${lacking.length === 1 ? 'has' : 'have'} no successful run yet`, {
      code: 'ADOPT_PRUNE_REFUSED',
      suggestions: [...lacking.map((e) => `Run it once: seedops jobs trigger ${e.cronjob} --wait -n ${ns}`), `Then: seedops adopt --prune-legacy -n ${ns}`],
      data: { lacking: lacking.map((e) => e.stage), evidence },
    })
  }
  await requirePermissions(k, [...legacy.map((l): Permission => ({ verb: 'delete', group: 'batch', resource: 'cronjobs', name: l.name, why: 'delete the legacy CronJob' })), { verb: 'patch', group: '', resource: 'configmaps', name: RECORD_NAME, why: 'update the adoption record' }], 'seedops adopt --prune-legacy')
  const done: string[] = []
  const rows: PlanRow[] = []
  try {
    for (const l of legacy) {
      const ev = evidence.find((e) => e.stage === l.stage)!
      await deleteObject(k, REF.cronjob(l.name))
      record.pruned.push(l.name)
      rows.push({ legacy: `CronJob/${l.name}`, seedops: `CronJob/${ev.cronjob}`, action: 'none', note: `deleted; ${ev.cronjob} succeeded (${ev.by})` })
      done.push(`deleted legacy CronJob/${l.name}`)
    }
  } finally {
    if (done.length) await writeRecord(k, record, true)
  }
  return { mode: 'prune', namespace: ns, rows, changes: done.length, done, warnings: [], evidence }
}

