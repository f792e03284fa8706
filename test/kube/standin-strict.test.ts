import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { kubeRequest } from '../../src/lib/kube/client.js'
import { findResource, startStandin, type Standin } from '../support/kube-standin/index.js'
import { clientsFor } from './helpers.js'

/**
 * The stand-in answers as a kube-apiserver 1.35 does where seedops can go wrong: strict field
 * validation, field validation of CronJobs and labels, managed fields and apply conflicts, and
 * RBAC escalation prevention. The expected messages are the apiserver's own wording (sources in
 * each test's comment).
 */
let s: Standin
const NS = 'seedtest'
const CJ = `/apis/batch/v1/namespaces/${NS}/cronjobs`
const cj = findResource('batch', 'v1', 'cronjobs')!

function cronJob(name: string, spec: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) {
  return {
    apiVersion: 'batch/v1',
    kind: 'CronJob',
    metadata: { name, labels: { app: 'seedops' } },
    spec: { schedule: '10 2 * * *', jobTemplate: { spec: { template: { spec: { restartPolicy: 'Never', containers: [{ name: 'seedops', image: 'seedops:1' }] } } } }, ...spec },
    ...extra,
  }
}

async function call(method: string, path: string, body?: unknown, contentType = 'application/json', token?: string) {
  const k = clientsFor(s, NS, token ? s.kubeconfigFor(token, token) : s.kubeconfig)
  const res = await kubeRequest(k, path, { method, headers: { 'Content-Type': contentType }, body: typeof body === 'string' ? body : JSON.stringify(body) })
  const text = await res.text()
  return { status: res.status, body: text ? JSON.parse(text) : undefined, warning: res.headers.warning }
}

beforeAll(async () => {
  s = await startStandin()
})
afterAll(() => s?.stop())

describe('strict field validation (fieldValidation=Strict|Warn|Ignore)', () => {
  // handlers/create.go transformDecodeError + runtime.NewStrictDecodingError.
  test('create: an unknown field is a 400 in the decoder\'s words under Strict', async () => {
    const r = await call('POST', `${CJ}?fieldValidation=Strict`, cronJob('unknown-field', { foo: 1 }))
    expect(r.status).toBe(400)
    expect(r.body).toMatchObject({ kind: 'Status', reason: 'BadRequest', code: 400, message: 'CronJob in version "v1" cannot be handled as a CronJob: strict decoding error: unknown field "spec.foo"' })
    expect(s.api.store.get(cj, NS, 'unknown-field')).toBeUndefined()
  })

  test('create: unknown fields deep in the pod template and duplicate fields are named with their path', async () => {
    const obj = cronJob('deep')
    ;(obj.spec.jobTemplate.spec.template.spec.containers[0] as Record<string, unknown>).imagePullPolicyy = 'Always'
    const r = await call('POST', `${CJ}?fieldValidation=Strict`, JSON.stringify(obj))
    expect(r.body.message).toBe('CronJob in version "v1" cannot be handled as a CronJob: strict decoding error: unknown field "spec.jobTemplate.spec.template.spec.containers[0].imagePullPolicyy"')
    const dup = JSON.stringify(cronJob('dup')).replace('"schedule":"10 2 * * *"', '"schedule":"10 2 * * *","schedule":"11 2 * * *"')
    const d = await call('POST', `${CJ}?fieldValidation=Strict`, dup)
    expect(d.status).toBe(400)
    expect(d.body.message).toBe('CronJob in version "v1" cannot be handled as a CronJob: strict decoding error: duplicate field "spec.schedule"')
  })

  test('Warn (the server default) stores the object without the field and says so in a Warning header; Ignore says nothing', async () => {
    const warn = await call('POST', CJ, cronJob('warned', { foo: 1 }))
    expect(warn.status).toBe(201)
    expect(warn.warning).toBe('299 - "unknown field \\"spec.foo\\""')
    expect(s.api.store.get(cj, NS, 'warned').spec.foo).toBeUndefined()
    const ignore = await call('POST', `${CJ}?fieldValidation=Ignore`, cronJob('ignored', { foo: 1 }))
    expect(ignore.status).toBe(201)
    expect(ignore.warning).toBeUndefined()
    expect(s.api.store.get(cj, NS, 'ignored').spec.foo).toBeUndefined()
  })

  test('patches: the patched object is decoded strictly (a plain strict decoding error)', async () => {
    const r = await call('PATCH', `${CJ}/warned?fieldValidation=Strict`, { spec: { fooo: true } }, 'application/merge-patch+json')
    expect(r.status).toBe(400)
    expect(r.body.message).toBe('strict decoding error: unknown field "spec.fooo"')
    const smp = await call('PATCH', `${CJ}/warned?fieldValidation=Strict`, { spec: { jobTemplate: { spec: { template: { spec: { containers: [{ name: 'seedops', imagee: 'x' }] } } } } } }, 'application/strategic-merge-patch+json')
    expect(smp.body.message).toBe('strict decoding error: unknown field "spec.jobTemplate.spec.template.spec.containers[0].imagee"')
  })

  // structured-merge-diff's validatingObjectWalker via managedfields' "failed to create typed patch object"; not a Status error, so 500.
  test('server-side apply: an undeclared field fails with structured-merge-diff\'s path, whatever fieldValidation says', async () => {
    for (const v of ['Strict', 'Ignore']) {
      const r = await call('PATCH', `${CJ}/applied?fieldManager=t&fieldValidation=${v}`, cronJob('applied', { foo: 1 }), 'application/apply-patch+yaml')
      expect(r.status).toBe(500)
      expect(r.body.message).toBe('failed to create typed patch object (seedtest/applied; batch/v1, Kind=CronJob): .spec.foo: field not declared in schema')
    }
    const dup = 'apiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: applied\nspec:\n  schedule: "1 1 * * *"\n  schedule: "2 2 * * *"\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          restartPolicy: Never\n          containers: [{name: seedops, image: "seedops:1"}]\n'
    const d = await call('PATCH', `${CJ}/applied?fieldManager=t&fieldValidation=Strict`, dup, 'application/apply-patch+yaml')
    expect(d.status).toBe(400)
    expect(d.body.message).toBe('error strict decoding YAML: error converting YAML to JSON: yaml: unmarshal errors:\n  line 7: key "schedule" already set in map')
  })
})

describe('validation of CronJobs and labels (422 Invalid with the field in details.causes)', () => {
  // pkg/apis/batch/validation: validateTimeZone, ValidateNonnegativeField; apimachinery ValidateLabels.
  test.each([
    ['an unknown time zone', cronJob('tz', { timeZone: 'Mars/Olympus_Mons' }), 'spec.timeZone', 'Invalid value: "Mars/Olympus_Mons": unknown time zone Mars/Olympus_Mons'],
    ['a time zone with a bad character', cronJob('tz2', { timeZone: 'Europe/Ber lin' }), 'spec.timeZone', 'Invalid value: "Europe/Ber lin": unknown time zone Europe/Ber lin'],
    ['a negative startingDeadlineSeconds', cronJob('deadline', { startingDeadlineSeconds: -5 }), 'spec.startingDeadlineSeconds', 'Invalid value: -5: must be greater than or equal to 0'],
    ['a negative history limit', cronJob('history', { successfulJobsHistoryLimit: -1 }), 'spec.successfulJobsHistoryLimit', 'Invalid value: -1: must be greater than or equal to 0'],
    ['a negative activeDeadlineSeconds', cronJob('active', { jobTemplate: { spec: { activeDeadlineSeconds: -1, template: { spec: { restartPolicy: 'Never', containers: [{ name: 'a', image: 'a:1' }] } } } } }), 'spec.jobTemplate.spec.activeDeadlineSeconds', 'Invalid value: -1: must be greater than or equal to 0'],
    ['an invalid schedule', cronJob('sched', { schedule: '61 * * * *' }), 'spec.schedule', 'Invalid value: "61 * * * *": '],
    ['a label key with a space', { ...cronJob('label'), metadata: { name: 'label', labels: { 'bad key': 'x' } } }, 'metadata.labels', `Invalid value: "bad key": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')`],
    ['a label value ending in a dash', { ...cronJob('value'), metadata: { name: 'value', labels: { app: 'seedops-' } } }, 'metadata.labels', `Invalid value: "seedops-": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')`],
  ])('%s', async (_what, obj, field, message) => {
    const r = await call('POST', `${CJ}?fieldValidation=Strict`, obj)
    expect(r.status).toBe(422)
    expect(r.body.reason).toBe('Invalid')
    const cause = r.body.details.causes.find((c: { field: string }) => c.field === field)
    expect(cause.reason).toBe('FieldValueInvalid')
    expect(cause.message.startsWith(message)).toBe(true)
    expect(r.body.message).toContain(`CronJob.batch "${(obj as { metadata: { name: string } }).metadata.name}" is invalid: `)
  })

  test('a real IANA zone and zero limits are accepted', async () => {
    const r = await call('POST', `${CJ}?fieldValidation=Strict`, cronJob('berlin', { timeZone: 'Europe/Berlin', successfulJobsHistoryLimit: 0, startingDeadlineSeconds: 0 }))
    expect(r.status).toBe(201)
  })
})

describe('managed fields and server-side apply conflicts', () => {
  test('every write records its manager (fieldManager, else the user agent) with the fields it set', async () => {
    const created = await call('POST', `${CJ}?fieldManager=creator`, cronJob('owned'))
    expect(created.body.metadata.managedFields).toEqual([expect.objectContaining({ manager: 'creator', operation: 'Update', apiVersion: 'batch/v1', fieldsType: 'FieldsV1' })])
    expect(created.body.metadata.managedFields[0].fieldsV1['f:spec']['f:schedule']).toEqual({})
    expect(created.body.metadata.managedFields[0].fieldsV1['f:spec']['f:jobTemplate']['f:spec']['f:template']['f:spec']['f:containers']['k:{"name":"seedops"}']).toMatchObject({ '.': {}, 'f:image': {} })
    const applied = await call('PATCH', `${CJ}/owned?fieldManager=deployer`, cronJob('owned', { schedule: '10 2 * * *' }), 'application/apply-patch+yaml')
    expect(applied.status).toBe(200)
    // Same values: both own them, nothing conflicts.
    expect(applied.body.metadata.managedFields.map((m: { manager: string; operation: string }) => `${m.manager}/${m.operation}`)).toEqual(['creator/Update', 'deployer/Apply'])
  })

  // managedfields/internal/conflict.go NewConflictError / getConflictMessage / printManager.
  test('applying a field another manager changed is a 409 naming manager and field, unless force=true, which moves ownership', async () => {
    const patched = await call('PATCH', `${CJ}/owned?fieldManager=kubectl-patch`, { spec: { schedule: '5 5 * * *' } }, 'application/merge-patch+json')
    expect(patched.status).toBe(200)
    const r = await call('PATCH', `${CJ}/owned?fieldManager=deployer`, cronJob('owned'), 'application/apply-patch+yaml')
    expect(r.status).toBe(409)
    expect(r.body).toMatchObject({
      kind: 'Status',
      status: 'Failure',
      reason: 'Conflict',
      code: 409,
      message: 'Apply failed with 1 conflict: conflict with "kubectl-patch" using batch/v1: .spec.schedule',
      details: { causes: [{ reason: 'FieldManagerConflict', message: 'conflict with "kubectl-patch" using batch/v1', field: '.spec.schedule' }] },
    })
    expect(s.api.store.get(cj, NS, 'owned').spec.schedule).toBe('5 5 * * *')
    const forced = await call('PATCH', `${CJ}/owned?fieldManager=deployer&force=true`, cronJob('owned'), 'application/apply-patch+yaml')
    expect(forced.status).toBe(200)
    expect(forced.body.spec.schedule).toBe('10 2 * * *')
    const byManager = Object.fromEntries(forced.body.metadata.managedFields.map((m: { manager: string; fieldsV1: Record<string, Record<string, unknown>> }) => [m.manager, m.fieldsV1]))
    expect(byManager.deployer['f:spec']['f:schedule']).toEqual({})
    expect(byManager['kubectl-patch']?.['f:spec']?.['f:schedule']).toBeUndefined()
    // Applied again unchanged: no conflict, no write.
    const again = await call('PATCH', `${CJ}/owned?fieldManager=deployer`, cronJob('owned'), 'application/apply-patch+yaml')
    expect(again.status).toBe(200)
    expect(again.body.metadata.resourceVersion).toBe(forced.body.metadata.resourceVersion)
  })

  test('two conflicting managers are listed by manager, as the apiserver does', async () => {
    await call('PATCH', `${CJ}/owned?fieldManager=a-editor`, { spec: { suspend: true } }, 'application/merge-patch+json')
    await call('PATCH', `${CJ}/owned?fieldManager=b-editor`, { spec: { schedule: '7 7 * * *' } }, 'application/merge-patch+json')
    const r = await call('PATCH', `${CJ}/owned?fieldManager=deployer`, cronJob('owned', { suspend: false }), 'application/apply-patch+yaml')
    expect(r.status).toBe(409)
    expect(r.body.message).toBe('Apply failed with 2 conflicts: conflicts with "a-editor" using batch/v1:\n- .spec.suspend\nconflicts with "b-editor" using batch/v1:\n- .spec.schedule')
  })

  test('a field the applier stops applying is removed when nobody else owns it', async () => {
    await call('PATCH', `${CJ}/pruned?fieldManager=deployer`, cronJob('pruned', { startingDeadlineSeconds: 60 }), 'application/apply-patch+yaml')
    const r = await call('PATCH', `${CJ}/pruned?fieldManager=deployer`, cronJob('pruned'), 'application/apply-patch+yaml')
    expect(r.status).toBe(200)
    expect(r.body.spec.startingDeadlineSeconds).toBeUndefined()
  })
})

describe('RBAC escalation prevention', () => {
  const ROLES = `/apis/rbac.authorization.k8s.io/v1/namespaces/${NS}/roles`
  const BINDINGS = `/apis/rbac.authorization.k8s.io/v1/namespaces/${NS}/rolebindings`
  const USER = 'system:serviceaccount:seedtest:role-writer'
  const secretsRole = { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: { name: 'secret-reader' }, rules: [{ apiGroups: [''], resources: ['secrets'], verbs: ['get', 'list'] }] }

  beforeAll(() => {
    s.api.addToken('role-writer', USER)
    s.seed({ apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: { name: 'rbac-writer', namespace: NS }, rules: [{ apiGroups: ['rbac.authorization.k8s.io'], resources: ['roles', 'rolebindings'], verbs: ['create', 'get', 'patch', 'update'] }, { apiGroups: [''], resources: ['configmaps'], verbs: ['get'] }] })
    s.seed({ apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: { name: 'rbac-writer', namespace: NS }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'rbac-writer' }, subjects: [{ kind: 'ServiceAccount', name: 'role-writer', namespace: NS }] })
  })

  // pkg/registry/rbac/validation/rule.go ConfirmNoEscalation + CompactString; errors.NewForbidden.
  test('a Role granting what the writer does not hold is 403 with the missing rules', async () => {
    const r = await call('POST', ROLES, secretsRole, 'application/json', 'role-writer')
    expect(r.status).toBe(403)
    expect(r.body).toMatchObject({ reason: 'Forbidden', details: { name: 'secret-reader', group: 'rbac.authorization.k8s.io', kind: 'roles' } })
    expect(r.body.message).toBe(`roles.rbac.authorization.k8s.io "secret-reader" is forbidden: user "${USER}" (groups=["system:authenticated"]) is attempting to grant RBAC permissions not currently held:\n{APIGroups:[""], Resources:["secrets"], Verbs:["get" "list"]}`)
  })

  test('granting only what the writer holds is allowed; a binding to a bigger Role is refused, with `bind` it is allowed', async () => {
    const ok = await call('POST', ROLES, { ...secretsRole, metadata: { name: 'cm-reader' }, rules: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get'] }] }, 'application/json', 'role-writer')
    expect(ok.status).toBe(201)
    s.seed({ ...secretsRole, metadata: { name: 'secret-reader', namespace: NS } })
    const binding = { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: { name: 'sneaky' }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'secret-reader' }, subjects: [{ kind: 'ServiceAccount', name: 'role-writer', namespace: NS }] }
    const denied = await call('POST', BINDINGS, binding, 'application/json', 'role-writer')
    expect(denied.status).toBe(403)
    expect(denied.body.message).toMatch(/^rolebindings\.rbac\.authorization\.k8s\.io "sneaky" is forbidden: user ".*" \(groups=\["system:authenticated"\]\) is attempting to grant RBAC permissions not currently held:\n\{APIGroups:\[""\], Resources:\["secrets"\], Verbs:\["get" "list"\]\}$/)
    s.seed({ apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: { name: 'binder', namespace: NS }, rules: [{ apiGroups: ['rbac.authorization.k8s.io'], resources: ['roles'], verbs: ['bind', 'escalate'], resourceNames: ['secret-reader'] }] })
    s.seed({ apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: { name: 'binder', namespace: NS }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'binder' }, subjects: [{ kind: 'ServiceAccount', name: 'role-writer', namespace: NS }] })
    expect((await call('POST', BINDINGS, binding, 'application/json', 'role-writer')).status).toBe(201)
    // `escalate` on the Role lets its rules be written too.
    const escalated = await call('PUT', `${ROLES}/secret-reader`, { ...secretsRole, rules: [{ apiGroups: [''], resources: ['secrets'], verbs: ['get', 'list', 'watch'] }] }, 'application/json', 'role-writer')
    expect(escalated.status).toBe(200)
  })
})
