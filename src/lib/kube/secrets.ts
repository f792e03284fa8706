import { readFileSync } from 'node:fs'
import type { V1ConfigMap, V1Secret } from '@kubernetes/client-node'
import { stringify } from 'yaml'
import { registerSecret, SeedopsError, usageError } from '../errors/index.js'
import type { KubeClients } from './client.js'
import { isNotFound, kubeCall } from './errors.js'

/**
 * The secrets and config map the seedops workloads read (see k8s/), and `secrets ensure`:
 * create what is missing from values found in the environment, an env file (or stdin), or a
 * prompt; never print a value; leave existing objects alone unless asked to update them.
 */
export interface KeySpec {
  key: string
  /** Environment variables that supply the value, first found wins. */
  env: string[]
  required: boolean
  secret: boolean
  default?: string
  description: string
}

export interface ObjectSpec {
  id: 'db' | 'irt' | 's3' | 'report-config'
  kind: 'Secret' | 'ConfigMap'
  name: string
  keys: KeySpec[]
}

export const SECRET_SPECS: ObjectSpec[] = [
  { id: 'db', kind: 'Secret', name: 'seedtest-db-credentials', keys: [{ key: 'DATABASE_URL', env: ['DATABASE_URL'], required: true, secret: true, description: 'PostgreSQL URL of the platform database' }] },
  { id: 'irt', kind: 'Secret', name: 'r-irt-credentials', keys: [{ key: 'token', env: ['R_IRT_INTERNAL_TOKEN', 'IRT_TOKEN'], required: true, secret: true, description: 'bearer token of the IRT service' }] },
  {
    id: 's3',
    kind: 'Secret',
    name: 'aws-s3-credentials',
    keys: [
      { key: 'AWS_ACCESS_KEY_ID', env: ['AWS_ACCESS_KEY_ID'], required: true, secret: true, description: 'S3 access key id' },
      { key: 'AWS_SECRET_ACCESS_KEY', env: ['AWS_SECRET_ACCESS_KEY'], required: true, secret: true, description: 'S3 secret access key' },
      { key: 'AWS_ENDPOINT_URL', env: ['AWS_ENDPOINT_URL', 'S3_ENDPOINT'], required: false, secret: false, description: 'S3-compatible endpoint (MinIO…), empty for AWS' },
    ],
  },
  {
    id: 'report-config',
    kind: 'ConfigMap',
    name: 'report-config',
    keys: [
      { key: 'S3_BUCKET', env: ['S3_BUCKET'], required: true, secret: false, description: 'bucket for the weekly reports' },
      { key: 'AWS_REGION', env: ['AWS_REGION', 'AWS_DEFAULT_REGION'], required: true, secret: false, default: 'us-east-1', description: 'region of the bucket' },
      { key: 'REPORT_FORMAT', env: ['REPORT_FORMAT'], required: false, secret: false, description: 'html or pdf' },
    ],
  },
]

export type Prompt = (q: { message: string; secret: boolean; default?: string }) => Promise<string>

export interface EnsureOptions {
  only?: ObjectSpec['id'][]
  /** none: write; client: print the manifests (redacted), no API writes; server: send with dryRun=All. */
  dryRun?: 'none' | 'client' | 'server'
  update?: boolean
  /** Values by env name (the process environment, then an env file / stdin, merged by the caller). */
  values: Record<string, string | undefined>
  /** Asks for a missing value (only on a TTY); absent → missing required values are an error. */
  prompt?: Prompt
  labels?: Record<string, string>
}

export type EnsureAction = 'created' | 'exists' | 'updated' | 'would-create' | 'would-update' | 'incomplete'

export interface EnsureItem {
  kind: 'Secret' | 'ConfigMap'
  name: string
  action: EnsureAction
  /** Keys written (never values). */
  keys: string[]
  /** Keys the existing object lacks. */
  missingKeys: string[]
}

export interface EnsureResult {
  namespace: string
  dryRun: 'none' | 'client' | 'server'
  items: EnsureItem[]
  /** The manifests with values replaced by [REDACTED] (dry-run=client). */
  manifests?: string
}

/** Parses KEY=VALUE lines (comments, `export `, single or double quotes) as docker/kubectl env files do. */
export function parseEnvFile(text: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim()
    if (!line || line.startsWith('#')) continue
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(line)
    if (!m) throw usageError(`env file: cannot read line "${line.split('=')[0]}=…"`, ['Use KEY=VALUE lines'])
    let v = m[2]
    if ((v.startsWith('"') && v.endsWith('"')) || (v.startsWith("'") && v.endsWith("'"))) v = v.slice(1, -1)
    out[m[1]] = v
  }
  return out
}

export function readEnvFile(path: string, stdin: () => string = () => readFileSync(0, 'utf8')): Record<string, string> {
  const values = parseEnvFile(path === '-' ? stdin() : readFileSync(path, 'utf8'))
  for (const v of Object.values(values)) registerSecret(v)
  return values
}

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64')

function existingKeys(o: V1Secret | V1ConfigMap): string[] {
  return [...Object.keys(o.data ?? {}), ...Object.keys((o as V1Secret).stringData ?? {})]
}

async function readObject(k: KubeClients, spec: ObjectSpec): Promise<V1Secret | V1ConfigMap | undefined> {
  const op = { verb: 'get' as const, resource: spec.kind === 'Secret' ? 'secrets' : 'configmaps', namespace: k.namespace, name: spec.name }
  try {
    return await kubeCall(k, op, () => (spec.kind === 'Secret' ? k.core.readNamespacedSecret({ name: spec.name, namespace: k.namespace }) : k.core.readNamespacedConfigMap({ name: spec.name, namespace: k.namespace })))
  } catch (e) {
    if (isNotFound(e)) return undefined
    throw e
  }
}

async function resolveValues(spec: ObjectSpec, keys: KeySpec[], opts: EnsureOptions): Promise<Record<string, string>> {
  const out: Record<string, string> = {}
  const missing: KeySpec[] = []
  for (const ks of keys) {
    const v = ks.env.map((e) => opts.values[e]).find((x) => x !== undefined && x !== '')
    if (v !== undefined) out[ks.key] = v
    else if (ks.required) missing.push(ks)
  }
  for (const ks of missing) {
    if (!opts.prompt) {
      if (ks.default !== undefined) {
        out[ks.key] = ks.default
        continue
      }
      throw new SeedopsError(`no value for ${spec.name}/${ks.key} (${ks.description})`, {
        code: 'SECRET_VALUE_MISSING',
        exitCode: 2,
        suggestions: [`Set ${ks.env[0]} in the environment`, `Or put ${ks.env[0]}=… in a file and pass --from-env-file FILE (or - for stdin)`, 'Or run on a terminal to be prompted'],
        data: { object: spec.name, key: ks.key, env: ks.env },
      })
    }
    const v = await opts.prompt({ message: `${spec.name} ${ks.key} (${ks.description})`, secret: ks.secret, default: ks.default })
    if (!v) throw usageError(`no value given for ${spec.name}/${ks.key}`)
    out[ks.key] = v
  }
  for (const ks of keys) if (ks.secret && out[ks.key]) registerSecretValue(out[ks.key])
  return out
}

/** Registers a value and its base64 form (what a Secret carries on the wire) for redaction. */
export function registerSecretValue(v: string): void {
  registerSecret(v)
  registerSecret(b64(v))
}

function manifestFor(spec: ObjectSpec, namespace: string, values: Record<string, string>, labels: Record<string, string>, redacted: boolean): V1Secret | V1ConfigMap {
  const metadata = { name: spec.name, namespace, labels }
  if (spec.kind === 'Secret') {
    const data = Object.fromEntries(Object.entries(values).map(([k, v]) => [k, redacted ? '[REDACTED]' : b64(v)]))
    return { apiVersion: 'v1', kind: 'Secret', metadata, type: 'Opaque', data }
  }
  const secretKeys = new Set(spec.keys.filter((k) => k.secret).map((k) => k.key))
  return { apiVersion: 'v1', kind: 'ConfigMap', metadata, data: Object.fromEntries(Object.entries(values).map(([k, v]) => [k, redacted && secretKeys.has(k) ? '[REDACTED]' : v])) }
}

export async function ensureSecrets(k: KubeClients, opts: EnsureOptions): Promise<EnsureResult> {
  const dryRun = opts.dryRun ?? 'none'
  const specs = SECRET_SPECS.filter((s) => !opts.only?.length || opts.only.includes(s.id))
  const labels = { 'app.kubernetes.io/part-of': 'seedops', 'app.kubernetes.io/managed-by': 'seedops', ...opts.labels }
  const items: EnsureItem[] = []
  const docs: string[] = []
  for (const spec of specs) {
    const resource = spec.kind === 'Secret' ? 'secrets' : 'configmaps'
    const cur = dryRun === 'client' && !opts.update ? await readObject(k, spec).catch(() => undefined) : await readObject(k, spec)
    const have = cur ? existingKeys(cur) : []
    const missingKeys = spec.keys.filter((ks) => ks.required && !have.includes(ks.key)).map((ks) => ks.key)
    if (cur && !opts.update) {
      items.push({ kind: spec.kind, name: spec.name, action: missingKeys.length ? 'incomplete' : 'exists', keys: [], missingKeys })
      continue
    }
    const keys = cur ? spec.keys.filter((ks) => missingKeys.includes(ks.key) || ks.env.some((e) => opts.values[e])) : spec.keys
    const values = await resolveValues(spec, keys, opts)
    const written = Object.keys(values)
    if (dryRun === 'client') {
      docs.push(stringify(manifestFor(spec, k.namespace, values, labels, true)))
      items.push({ kind: spec.kind, name: spec.name, action: cur ? 'would-update' : 'would-create', keys: written, missingKeys })
      continue
    }
    const dr = dryRun === 'server' ? 'All' : undefined
    if (!cur) {
      const body = manifestFor(spec, k.namespace, values, labels, false)
      await kubeCall(k, { verb: 'create', resource, namespace: k.namespace, name: spec.name }, () =>
        spec.kind === 'Secret' ? k.core.createNamespacedSecret({ namespace: k.namespace, body: body as V1Secret, dryRun: dr, fieldManager: 'seedops' }) : k.core.createNamespacedConfigMap({ namespace: k.namespace, body: body as V1ConfigMap, dryRun: dr, fieldManager: 'seedops' }),
      ).catch(async (e) => {
        // A create retried after an answer that hid its success (500, timeout) meets 409: if the
        // object holds exactly what we wrote, it is ours; anything else is someone else's object.
        if (dr || !(e instanceof SeedopsError && e.code === 'KUBE_ALREADY_EXISTS')) throw e
        const now = await readObject(k, spec)
        const same = now && Object.entries(body.data ?? {}).every(([kk, v]) => now.data?.[kk] === v) && Object.keys(now.data ?? {}).length === Object.keys(body.data ?? {}).length
        if (!same) throw e
      })
      items.push({ kind: spec.kind, name: spec.name, action: dr ? 'would-create' : 'created', keys: written, missingKeys: [] })
    } else {
      // Merge patch of the given keys only: other keys in the object stay as they are.
      const data = spec.kind === 'Secret' ? Object.fromEntries(Object.entries(values).map(([kk, v]) => [kk, b64(v)])) : values
      const { setHeaderOptions, PatchStrategy } = await import('@kubernetes/client-node')
      const header = setHeaderOptions('Content-Type', PatchStrategy.MergePatch)
      await kubeCall(k, { verb: 'patch', resource, namespace: k.namespace, name: spec.name }, () =>
        spec.kind === 'Secret'
          ? k.core.patchNamespacedSecret({ name: spec.name, namespace: k.namespace, body: { data }, dryRun: dr, fieldManager: 'seedops' }, header)
          : k.core.patchNamespacedConfigMap({ name: spec.name, namespace: k.namespace, body: { data }, dryRun: dr, fieldManager: 'seedops' }, header),
      )
      items.push({ kind: spec.kind, name: spec.name, action: dr ? 'would-update' : 'updated', keys: written, missingKeys: [] })
    }
  }
  return { namespace: k.namespace, dryRun, items, ...(dryRun === 'client' ? { manifests: docs.join('---\n') } : {}) }
}
