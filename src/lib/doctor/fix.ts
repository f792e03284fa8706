import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node'
import { SeedopsError } from '../errors/index.js'
import { kubeRequest, type KubeClients } from '../kube/client.js'
import { kubeCall, withConflictRetry } from '../kube/errors.js'
import { ensureSecrets, SECRET_SPECS } from '../kube/secrets.js'
import type { DoctorReport, FixOutcome, SafeFix } from './types.js'

/**
 * `doctor --fix`: only the fixes that add what is missing or undo drift from k8s/: create a
 * missing secret/config map (values from the environment, through `secrets ensure`), add missing
 * keys to one (only those keys), delete a CronJob that exactly duplicates an expected one, set a
 * CronJob's image back to the expected one. Nothing else is touched.
 */
export function safeFixes(r: DoctorReport): SafeFix[] {
  const out: SafeFix[] = []
  const seen = new Set<string>()
  for (const f of r.checks) {
    if ((f.status !== 'fail' && f.status !== 'warn') || !f.safeFix) continue
    const key = JSON.stringify(f.safeFix)
    if (seen.has(key)) continue
    seen.add(key)
    out.push(f.safeFix)
  }
  return out
}

export function describeFix(f: SafeFix, ns: string): string {
  switch (f.kind) {
    case 'ensure-secret':
      return f.missingKeys?.length ? `add key(s) ${f.missingKeys.join(', ')} to ${f.object} (seedops secrets ensure --only ${f.only} --update -n ${ns})` : `create ${f.object} (seedops secrets ensure --only ${f.only} -n ${ns})`
    case 'delete-cronjob':
      return `delete CronJob ${f.name}, a duplicate of ${f.duplicateOf} (kubectl -n ${ns} delete cronjob ${f.name})`
    case 'set-image':
      return `set the image of CronJob ${f.cronjob} container ${f.container} back to ${f.image}, ${f.source === 'flag' ? 'as --image says' : 'the image seedops deploy put there'} (kubectl -n ${ns} set image cronjob/${f.cronjob} ${f.container}=${f.image})`
  }
}

interface Permission {
  verb: string
  group: string
  resource: string
  name?: string
}

const qualified = (p: Permission) => (p.group ? `${p.resource}.${p.group}` : p.resource)

/** What each fix will call, so it can be asked first (the operator Role in k8s/ grants exactly these). */
export function permissionsFor(f: SafeFix): Permission[] {
  switch (f.kind) {
    case 'ensure-secret': {
      const spec = SECRET_SPECS.find((s) => s.id === f.only)!
      const resource = spec.kind === 'Secret' ? 'secrets' : 'configmaps'
      // create cannot be limited by name: the apiserver has no name before the object exists.
      return [{ verb: 'get', group: '', resource, name: spec.name }, f.missingKeys?.length ? { verb: 'patch', group: '', resource, name: spec.name } : { verb: 'create', group: '', resource }]
    }
    case 'delete-cronjob':
      return [{ verb: 'delete', group: 'batch', resource: 'cronjobs', name: f.name }]
    case 'set-image':
      return [
        { verb: 'get', group: 'batch', resource: 'cronjobs', name: f.cronjob },
        { verb: 'patch', group: 'batch', resource: 'cronjobs', name: f.cronjob },
      ]
  }
}

/**
 * SelfSubjectAccessReview for each permission; the ones denied. When the review itself cannot be
 * made (an old or locked-down server), nothing is reported missing and the call's own 403 speaks.
 */
export async function missingPermissions(k: KubeClients, perms: Permission[]): Promise<Permission[]> {
  const out: Permission[] = []
  for (const p of perms) {
    const body = { apiVersion: 'authorization.k8s.io/v1', kind: 'SelfSubjectAccessReview', spec: { resourceAttributes: { namespace: k.namespace, verb: p.verb, group: p.group, resource: p.resource, ...(p.name ? { name: p.name } : {}) } } }
    try {
      const res = await kubeRequest(k, '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) })
      const text = await res.text()
      if (res.status !== 201 && res.status !== 200) continue
      if ((JSON.parse(text) as { status?: { allowed?: boolean } }).status?.allowed !== true) out.push(p)
    } catch {
      continue
    }
  }
  return out
}

export async function applyFix(k: KubeClients, f: SafeFix, env: NodeJS.ProcessEnv): Promise<FixOutcome> {
  const ns = k.namespace
  const denied = await missingPermissions(k, permissionsFor(f))
  if (denied.length) {
    const missing = denied.map((p) => ({ verb: p.verb, resource: qualified(p), ...(p.name ? { name: p.name } : {}), canI: `kubectl auth can-i ${p.verb} ${qualified(p)}${p.name ? `/${p.name}` : ''} -n ${ns}` }))
    const what = missing.map((m) => `${m.verb} ${m.resource}${m.name ? ` "${m.name}"` : ''}`).join(', ')
    return {
      fix: f,
      ok: false,
      missing,
      message: `${describeFix(f, ns)}: not attempted, this identity may not ${what} in namespace ${ns} (check: ${missing.map((m) => m.canI).join('; ')}); run --fix as the seedops-operator ServiceAccount (k8s/base/rbac-operator.yaml grants what --fix does)`,
    }
  }
  try {
    switch (f.kind) {
      case 'ensure-secret': {
        const spec = SECRET_SPECS.find((s) => s.id === f.only)!
        let values: Record<string, string | undefined> = { ...env }
        if (f.missingKeys?.length) {
          // Only the env names of the missing keys: existing keys keep their values.
          const names = spec.keys.filter((x) => f.missingKeys!.includes(x.key)).flatMap((x) => x.env)
          values = Object.fromEntries(names.map((n) => [n, env[n]]))
        }
        const r = await ensureSecrets(k, { only: [f.only], values, update: Boolean(f.missingKeys?.length) })
        const item = r.items[0]
        return { fix: f, ok: item.action === 'created' || item.action === 'updated', message: `${item.kind} ${item.name}: ${item.action}${item.keys.length ? ` (keys ${item.keys.join(', ')})` : ''}` }
      }
      case 'delete-cronjob':
        await kubeCall(k, { verb: 'delete', resource: 'cronjobs.batch', namespace: ns, name: f.name }, () => k.batch.deleteNamespacedCronJob({ name: f.name, namespace: ns, propagationPolicy: 'Background' }))
        return { fix: f, ok: true, message: `CronJob ${f.name} deleted (duplicate of ${f.duplicateOf})` }
      case 'set-image': {
        await withConflictRetry(async () => {
          const cj = await kubeCall(k, { verb: 'get', resource: 'cronjobs.batch', namespace: ns, name: f.cronjob }, () => k.batch.readNamespacedCronJob({ name: f.cronjob, namespace: ns }))
          const cs = cj.spec?.jobTemplate?.spec?.template?.spec?.containers ?? []
          const i = cs.findIndex((c) => c.name === f.container)
          if (i < 0) throw new SeedopsError(`CronJob ${f.cronjob} has no container ${f.container}`, { code: 'KUBE_NOT_FOUND' })
          const body = [
            { op: 'replace', path: `/spec/jobTemplate/spec/template/spec/containers/${i}/image`, value: f.image },
          ]
          await kubeCall(k, { verb: 'patch', resource: 'cronjobs.batch', namespace: ns, name: f.cronjob }, () =>
            k.batch.patchNamespacedCronJob({ name: f.cronjob, namespace: ns, body, fieldManager: 'seedops' }, setHeaderOptions('Content-Type', PatchStrategy.JsonPatch)),
          )
        })
        return { fix: f, ok: true, message: `CronJob ${f.cronjob}: ${f.container} image set to ${f.image}` }
      }
    }
  } catch (e) {
    const err = e instanceof SeedopsError ? e : new SeedopsError(e instanceof Error ? e.message : String(e), { code: 'INTERNAL' })
    return { fix: f, ok: false, message: `${describeFix(f, ns)}: ${err.message}${err.suggestions.length ? ` — ${err.suggestions[0]}` : ''}` }
  }
}
