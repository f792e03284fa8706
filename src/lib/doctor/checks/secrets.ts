import type { V1CronJob } from '@kubernetes/client-node'
import { keyAliases, PREDECESSOR_SECRETS } from '../../adopt/mapping.js'
import { SeedopsError } from '../../errors/index.js'
import { refsOf } from '../../kube/expected.js'
import type { KubeObject } from '../../kube/manifests.js'
import { SECRET_SPECS } from '../../kube/secrets.js'
import { kc } from '../cluster-helpers.js'
import type { ClusterSnapshot, DoctorCheck, Finding } from '../types.js'

/** Secrets family: the secrets and config maps the CronJobs read exist with their keys (and where the predecessor keeps them). */

/** List items carry no `kind`; manifests.ts finds a CronJob's containers by it. */
const asObject = (cj: V1CronJob): KubeObject => ({ ...(cj as unknown as KubeObject), kind: 'CronJob', apiVersion: 'batch/v1' })

interface RefUse {
  kind: 'Secret' | 'ConfigMap'
  name: string
  keys: Set<string>
  /** CronJob → optional? */
  users: Map<string, boolean>
}

export const configRefs: DoctorCheck = {
  id: 'config.refs',
  group: 'cluster',
  description: 'The secrets and config maps the CronJobs read exist and hold the keys they read',
  dependsOn: 'cluster.reachable',
  async run(ctx) {
    const s = await ctx.cluster()
    const ns = ctx.namespace
    const uses = new Map<string, RefUse>()
    const add = (cronjob: string, refs: ReturnType<typeof refsOf>) => {
      for (const r of refs) {
        const id = `${r.kind}/${r.name}`
        const u = uses.get(id) ?? { kind: r.kind, name: r.name, keys: new Set<string>(), users: new Map<string, boolean>() }
        // A key read with optional: true may be absent (AWS_ENDPOINT_URL on AWS proper).
        if (!r.optional) for (const k of r.keys) u.keys.add(k)
        u.users.set(cronjob, (u.users.get(cronjob) ?? true) && r.optional)
        uses.set(id, u)
      }
    }
    for (const e of ctx.expected) {
      const live = s.cronjobs.find((c) => c.metadata?.name === e.name)
      add(e.name, live ? refsOf(asObject(live)) : e.refs)
    }
    const out: Finding[] = []
    for (const u of [...uses.values()].sort((a, b) => a.name.localeCompare(b.name))) {
      const spec = SECRET_SPECS.find((x) => x.name === u.name && x.kind === u.kind)
      const users = [...u.users.entries()].map(([c, opt]) => `${c}${opt ? ' (optional)' : ''}`).join(', ')
      const required = [...u.users.values()].some((opt) => !opt)
      const what = `${u.kind === 'Secret' ? 'secret' : 'configmap'} ${u.name}`
      let obj
      try {
        obj = await s.object(u.kind, u.name)
      } catch (e) {
        const err = e as SeedopsError
        out.push({ status: 'warn', subject: u.name, message: `cannot read ${what}: ${err.message}`, fix: err.suggestions })
        continue
      }
      const ensure = spec ? `seedops secrets ensure --only ${spec.id} -n ${ns}` : `${kc(ns)} create ${u.kind === 'Secret' ? 'secret generic' : 'configmap'} ${u.name} ${[...u.keys].map((k) => `--from-literal=${k}=…`).join(' ')}`
      if (!obj) {
        const copies = spec ? await predecessorCopies(s, spec) : []
        // adopt copies from one of them (its plan says which); doctor names every candidate.
        const copyText = `into ${u.name}[${[...new Set(copies.flatMap((c) => c.keys.map((k) => k.to)))].join(', ')}] from ${copies.flatMap((c) => c.keys.map((k) => `${c.secret}[${k.from}]`)).join(' or ')}`
        out.push({
          status: required ? 'fail' : 'warn',
          subject: u.name,
          message: `${what} is missing; read by ${users}${required ? '' : ' — they start without it, but the feature that needs it will not work'}${copies.length ? `; the predecessor keeps it as ${copies.map((c) => `secret ${c.secret}`).join(' and ')}` : ''}`,
          fix: [...(copies.length ? [`seedops adopt -n ${ns} --yes   # copies ${copyText} (values not shown)`] : []), ensure],
          ...(spec ? { safeFix: { kind: 'ensure-secret', only: spec.id, object: u.name } as const } : {}),
        })
        for (const c of copies) {
          out.push({
            status: 'warn',
            subject: c.secret,
            message: `secret ${c.secret} holds what seedops reads from ${u.name} under another name and key (${c.keys.map((k) => `${k.from} for ${k.to}`).join(', ')}): the predecessor's name, which seedops does not read`,
            fix: [`seedops adopt -n ${ns}   # shows the copy into ${u.name}`, `seedops adopt -n ${ns} --yes   # copies it (value not shown; --rollback deletes the copy)`],
          })
        }
        continue
      }
      const have = new Set(Object.keys(obj.data ?? {}))
      const needed = new Set([...u.keys, ...(spec?.keys.filter((k) => k.required).map((k) => k.key) ?? [])])
      const missing = [...needed].filter((k) => !have.has(k))
      if (missing.length) {
        const readers = [...u.users.keys()].filter((c) => {
          const live = s.cronjobs.find((x) => x.metadata?.name === c)
          const refs = live ? refsOf(asObject(live)) : (ctx.expected.find((x) => x.name === c)?.refs ?? [])
          return refs.some((r) => r.name === u.name && (r.keys.length === 0 || r.keys.some((k) => missing.includes(k))))
        })
        out.push({
          status: required ? 'fail' : 'warn',
          subject: u.name,
          message: `${what} lacks key${missing.length > 1 ? 's' : ''} ${missing.join(', ')}; read by ${readers.join(', ') || users}`,
          fix: [spec ? `seedops secrets ensure --only ${spec.id} --update -n ${ns}   # with ${missing.map((k) => spec.keys.find((x) => x.key === k)?.env[0] ?? k).join(', ')} set` : `${kc(ns)} edit ${u.kind.toLowerCase()} ${u.name}`],
          ...(spec ? { safeFix: { kind: 'ensure-secret', only: spec.id, object: u.name, missingKeys: missing } as const } : {}),
        })
      }
    }
    if (!out.length) out.push({ status: 'ok', message: `${uses.size} secrets/config maps present with the keys the CronJobs read (${[...uses.values()].map((u) => u.name).join(', ')})` })
    return out
  },
}


/** The predecessor's secrets (by name, read only if allowed) holding a value a seedops secret needs, under its keys. */
async function predecessorCopies(s: ClusterSnapshot, spec: (typeof SECRET_SPECS)[number]): Promise<{ secret: string; keys: { from: string; to: string }[] }[]> {
  const out: { secret: string; keys: { from: string; to: string }[] }[] = []
  for (const name of PREDECESSOR_SECRETS) {
    let o
    try {
      o = await s.object('Secret', name)
    } catch {
      continue // the doctor Role may not read it; adopt's plan (as the operator) still finds it
    }
    const have = Object.keys(o?.data ?? {})
    const keys = spec.keys.flatMap((k) => {
      const from = keyAliases({ name: spec.name, key: k.key, env: k.env }).flatMap((a) => (!a.inSecretNamed || a.inSecretNamed.test(name) ? a.keys : [])).find((x) => have.includes(x))
      return from ? [{ from, to: k.key }] : []
    })
    if (keys.length) out.push({ secret: name, keys })
  }
  return out
}
