import { CronExpressionParser } from 'cron-parser'
import * as batch from 'kubernetes-models/batch/v1'
import * as core from 'kubernetes-models/v1'
import * as apps from 'kubernetes-models/apps/v1'
import * as rbac from 'kubernetes-models/rbac.authorization.k8s.io/v1'
import { StatusError } from './store.js'
import type { ResourceType } from './resources.js'

/** Defaulting and validation as the apiserver's registry does it, for the kinds seedops touches. */

const SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/

function defaultContainer(c: any) {
  c.terminationMessagePath ??= '/dev/termination-log'
  c.terminationMessagePolicy ??= 'File'
  if (c.image && !c.imagePullPolicy) c.imagePullPolicy = /:latest$|^[^:@]*$/.test(c.image.replace(/^[^/]*\.[^/]*\//, '')) ? 'Always' : 'IfNotPresent'
  c.resources ??= {}
  for (const p of c.ports ?? []) p.protocol ??= 'TCP'
}

function defaultPodSpec(spec: any, restartPolicy = 'Always') {
  if (!spec) return
  spec.restartPolicy ??= restartPolicy
  spec.terminationGracePeriodSeconds ??= 30
  spec.dnsPolicy ??= 'ClusterFirst'
  spec.schedulerName ??= 'default-scheduler'
  spec.securityContext ??= {}
  for (const c of [...(spec.containers ?? []), ...(spec.initContainers ?? [])]) defaultContainer(c)
}

function defaultJobSpec(spec: any) {
  if (!spec) return
  spec.parallelism ??= 1
  spec.completions ??= spec.completionMode === 'Indexed' ? spec.completions : 1
  spec.backoffLimit ??= 6
  spec.completionMode ??= 'NonIndexed'
  spec.suspend ??= false
  spec.podReplacementPolicy ??= 'TerminatingOrFailed'
  spec.template ??= {}
  spec.template.metadata ??= {}
  defaultPodSpec(spec.template.spec)
}

/** Fills defaults on create (and on update for the fields a client may drop). `uid` is the object's new uid. */
export function applyDefaults(rt: ResourceType, o: any, uid: string): void {
  switch (rt.kind) {
    case 'Namespace':
      o.metadata.labels = { ...(o.metadata.labels ?? {}), 'kubernetes.io/metadata.name': o.metadata.name }
      o.spec ??= { finalizers: ['kubernetes'] }
      o.status ??= { phase: 'Active' }
      break
    case 'Secret':
      o.type ??= 'Opaque'
      if (o.stringData) {
        o.data ??= {}
        for (const [k, v] of Object.entries(o.stringData)) o.data[k] = Buffer.from(String(v)).toString('base64')
        delete o.stringData
      }
      break
    case 'Service':
      o.spec ??= {}
      o.spec.type ??= 'ClusterIP'
      o.spec.sessionAffinity ??= 'None'
      if (!o.spec.clusterIP) {
        const n = parseInt(uid.slice(0, 4), 16)
        o.spec.clusterIP = `10.96.${(n >> 8) & 255}.${n & 255 || 1}`
        o.spec.clusterIPs = [o.spec.clusterIP]
      }
      for (const p of o.spec.ports ?? []) {
        p.protocol ??= 'TCP'
        p.targetPort ??= p.port
      }
      o.status ??= { loadBalancer: {} }
      break
    case 'Pod':
      defaultPodSpec(o.spec)
      break
    case 'Deployment':
      o.spec.replicas ??= 1
      o.spec.revisionHistoryLimit ??= 10
      o.spec.progressDeadlineSeconds ??= 600
      o.spec.strategy ??= { type: 'RollingUpdate', rollingUpdate: { maxSurge: '25%', maxUnavailable: '25%' } }
      defaultPodSpec(o.spec.template?.spec)
      break
    case 'CronJob':
      o.spec.concurrencyPolicy ??= 'Allow'
      o.spec.suspend ??= false
      o.spec.successfulJobsHistoryLimit ??= 3
      o.spec.failedJobsHistoryLimit ??= 1
      defaultJobSpec(o.spec.jobTemplate?.spec)
      break
    case 'Job': {
      defaultJobSpec(o.spec)
      if (!o.spec.manualSelector && !o.spec.selector) {
        o.spec.selector = { matchLabels: { 'batch.kubernetes.io/controller-uid': uid } }
        o.spec.template.metadata.labels = {
          ...(o.spec.template.metadata.labels ?? {}),
          'batch.kubernetes.io/controller-uid': uid,
          'batch.kubernetes.io/job-name': o.metadata.name,
          'controller-uid': uid,
          'job-name': o.metadata.name,
        }
      }
      break
    }
  }
}

const MODELS: Record<string, (o: any) => { validate(): void }> = {
  CronJob: (o) => new batch.CronJob(o),
  Job: (o) => new batch.Job(o),
  Pod: (o) => new core.Pod(o),
  Secret: (o) => new core.Secret(o),
  ConfigMap: (o) => new core.ConfigMap(o),
  ServiceAccount: (o) => new core.ServiceAccount(o),
  Service: (o) => new core.Service(o),
  Namespace: (o) => new core.Namespace(o),
  Deployment: (o) => new apps.Deployment(o),
  Role: (o) => new rbac.Role(o),
  RoleBinding: (o) => new rbac.RoleBinding(o),
  ClusterRole: (o) => new rbac.ClusterRole(o),
  ClusterRoleBinding: (o) => new rbac.ClusterRoleBinding(o),
}

type Cause = { field: string; message: string }

function podTemplateCauses(spec: any, path: string, job: boolean): Cause[] {
  const out: Cause[] = []
  if (!spec?.containers?.length) out.push({ field: `${path}.containers`, message: 'Required value' })
  ;(spec?.containers ?? []).forEach((c: any, i: number) => {
    if (!c.name) out.push({ field: `${path}.containers[${i}].name`, message: 'Required value' })
    if (!c.image) out.push({ field: `${path}.containers[${i}].image`, message: 'Required value' })
  })
  if (job && !['OnFailure', 'Never'].includes(spec?.restartPolicy)) {
    out.push({ field: `${path}.restartPolicy`, message: `Unsupported value: "${spec?.restartPolicy}": supported values: "OnFailure", "Never"` })
  }
  return out
}

/** `field.Invalid` value formatting: strings quoted, numbers bare (as Go's `%#v`-ish printing in field errors). */
function shown(v: unknown): string {
  return typeof v === 'string' ? JSON.stringify(v) : String(v)
}

function invalid(field: string, value: unknown, detail: string): Cause {
  return { field, message: `Invalid value: ${shown(value)}: ${detail}` }
}

/** apimachinery's `RegexError`: the message, examples and the regex. */
function regexError(msg: string, fmt: string, ...examples: string[]): string {
  return `${msg} (e.g. ${examples.map((e) => `'${e}', `).join(' or ')}regex used for validation is '${fmt}')`
}

const QUALIFIED_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/
const QUALIFIED_MSG = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
const SUBDOMAIN_MSG = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"

/** `IsQualifiedName` (apimachinery/pkg/util/validation): label and annotation keys. */
function qualifiedNameErrors(key: string): string[] {
  const parts = key.split('/')
  let name = key
  const errs: string[] = []
  if (parts.length === 2) {
    const [prefix] = parts
    name = parts[1]
    if (!prefix) errs.push('prefix part must be non-empty')
    else if (prefix.length > 253) errs.push('prefix part must be no more than 253 characters')
    else if (!SUBDOMAIN.test(prefix)) errs.push(`prefix part ${regexError(SUBDOMAIN_MSG, '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*', 'example.com')}`)
  } else if (parts.length > 2) {
    return [`a qualified name ${regexError(QUALIFIED_MSG, '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]', 'MyName', 'my.name', '123-abc')} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')`]
  }
  if (!name) errs.push('name part must be non-empty')
  else if (name.length > 63) errs.push('name part must be no more than 63 characters')
  if (name && !QUALIFIED_NAME.test(name)) errs.push(`name part ${regexError(QUALIFIED_MSG, '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]', 'MyName', 'my.name', '123-abc')}`)
  return errs
}

/** `ValidateLabels` (apimachinery/pkg/apis/meta/v1/validation): the field is the labels map, the value the bad key or value. */
function labelCauses(labels: Record<string, unknown> | undefined, field: string): Cause[] {
  const out: Cause[] = []
  for (const [k, v] of Object.entries(labels ?? {})) {
    for (const m of qualifiedNameErrors(k)) out.push(invalid(field, k, m))
    const value = String(v ?? '')
    if (value.length > 63) out.push(invalid(field, value, 'must be no more than 63 characters'))
    if (!LABEL_VALUE.test(value)) out.push(invalid(field, value, regexError("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character", '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?', 'MyValue', 'my_value', '12345')))
  }
  return out
}

/** `ValidateNonnegativeField`. */
function nonNegative(v: unknown, field: string): Cause[] {
  return typeof v === 'number' && v < 0 ? [invalid(field, v, 'must be greater than or equal to 0')] : []
}

/** `validateTimeZone` (pkg/apis/batch/validation): an IANA zone name, as Go's time.LoadLocation finds it. */
function timeZoneCauses(tz: unknown, field: string): Cause[] {
  if (tz === undefined || tz === null) return []
  const s = String(tz)
  if (!s) return [invalid(field, s, 'timeZone must be nil or non-empty string')]
  for (const part of s.split('/')) {
    if (part === '.' || part === '..' || part.startsWith('-') || !/^[A-Za-z.\-_0-9+]{1,14}$/.test(part)) return [invalid(field, s, `unknown time zone ${s}`)]
  }
  if (s.toLowerCase() === 'local') return [invalid(field, s, 'timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones')]
  try {
    if (s.startsWith('+')) throw new RangeError(s)
    new Intl.DateTimeFormat('en-US', { timeZone: s })
  } catch {
    return [invalid(field, s, `unknown time zone ${s}`)]
  }
  return []
}

/** The job spec checks of `validateJobSpec` that seedops' manifests can get wrong. */
function jobSpecCauses(spec: any, path: string): Cause[] {
  if (!spec) return []
  return [...nonNegative(spec.activeDeadlineSeconds, `${path}.activeDeadlineSeconds`), ...nonNegative(spec.backoffLimit, `${path}.backoffLimit`), ...nonNegative(spec.ttlSecondsAfterFinished, `${path}.ttlSecondsAfterFinished`), ...labelCauses(spec.template?.metadata?.labels, `${path}.template.metadata.labels`)]
}

export function validateCron(schedule: string): string | undefined {
  if (/^\s*(TZ|CRON_TZ)=/.test(schedule)) return 'cannot use TZ or CRON_TZ in schedule, use timeZone field instead'
  const macro = /^@(yearly|annually|monthly|weekly|daily|midnight|hourly)$/.test(schedule.trim())
  if (!macro && schedule.trim().split(/\s+/).length !== 5) return `expected exactly 5 fields, found ${schedule.trim().split(/\s+/).length}: ${schedule}`
  try {
    CronExpressionParser.parse(schedule, { tz: 'UTC' })
  } catch (e) {
    return (e as Error).message
  }
  return undefined
}

/** 422 Invalid with the apiserver's message shape, or nothing. */
export function validate(rt: ResourceType, o: any): void {
  const causes: Cause[] = []
  const name = o.metadata?.name ?? ''
  if (!name) causes.push({ field: 'metadata.name', message: 'Required value: name or generateName is required' })
  else if (!SUBDOMAIN.test(name) || name.length > 253) {
    causes.push({ field: 'metadata.name', message: `Invalid value: "${name}": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')` })
  }
  causes.push(...labelCauses(o.metadata?.labels, 'metadata.labels'))
  if (rt.kind === 'CronJob') {
    causes.push(...nonNegative(o.spec?.startingDeadlineSeconds, 'spec.startingDeadlineSeconds'))
    causes.push(...timeZoneCauses(o.spec?.timeZone, 'spec.timeZone'))
    causes.push(...nonNegative(o.spec?.successfulJobsHistoryLimit, 'spec.successfulJobsHistoryLimit'), ...nonNegative(o.spec?.failedJobsHistoryLimit, 'spec.failedJobsHistoryLimit'))
    causes.push(...jobSpecCauses(o.spec?.jobTemplate?.spec, 'spec.jobTemplate.spec'))
    if (name.length > 52) causes.push({ field: 'metadata.name', message: `Invalid value: "${name}": must be no more than 52 characters` })
    const err = typeof o.spec?.schedule === 'string' ? validateCron(o.spec.schedule) : 'Required value'
    if (err) causes.push({ field: 'spec.schedule', message: o.spec?.schedule ? `Invalid value: "${o.spec.schedule}": ${err}` : err })
    causes.push(...podTemplateCauses(o.spec?.jobTemplate?.spec?.template?.spec, 'spec.jobTemplate.spec.template.spec', true))
  }
  if (rt.kind === 'Job') {
    causes.push(...jobSpecCauses(o.spec, 'spec'))
    if (name.length > 63) causes.push({ field: 'metadata.name', message: `Invalid value: "${name}": must be no more than 63 characters` })
    causes.push(...podTemplateCauses(o.spec?.template?.spec, 'spec.template.spec', true))
    if (o.spec?.completionMode === 'Indexed' && !o.spec.completions) causes.push({ field: 'spec.completions', message: 'Required value: when completion mode is Indexed' })
  }
  if (rt.kind === 'Deployment') causes.push(...labelCauses(o.spec?.template?.metadata?.labels, 'spec.template.metadata.labels'), ...nonNegative(o.spec?.replicas, 'spec.replicas'))
  if (rt.kind === 'Deployment') causes.push(...podTemplateCauses(o.spec?.template?.spec, 'spec.template.spec', false))
  if (rt.kind === 'Secret') {
    for (const [k, v] of Object.entries(o.data ?? {})) {
      if (typeof v !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(v)) causes.push({ field: `data[${k}]`, message: 'Invalid value: illegal base64 data' })
    }
  }
  const model = MODELS[rt.kind]
  if (model && !causes.length) {
    try {
      model(o).validate()
    } catch (e) {
      causes.push({ field: '<schema>', message: (e as Error).message })
    }
  }
  if (causes.length) {
    const parts = causes.map((c) => `${c.field}: ${c.message}`)
    const qualified = rt.group ? `${rt.kind}.${rt.group}` : rt.kind
    throw new StatusError(422, 'Invalid', `${qualified} "${name}" is invalid: ${parts.length === 1 ? parts[0] : `[${parts.join(', ')}]`}`, {
      name,
      group: rt.group || undefined,
      kind: rt.kind,
      causes: causes.map((c) => ({ reason: /^Required value/.test(c.message) ? 'FieldValueRequired' : /^Unsupported value/.test(c.message) ? 'FieldValueNotSupported' : 'FieldValueInvalid', message: c.message, field: c.field })),
    })
  }
}
