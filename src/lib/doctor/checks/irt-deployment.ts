import type { V1Deployment } from '@kubernetes/client-node'
import { SeedopsError } from '../../errors/index.js'
import { refsOf } from '../../kube/expected.js'
import type { KubeObject } from '../../kube/manifests.js'
import { SECRET_SPECS } from '../../kube/secrets.js'
import { kc } from '../cluster-helpers.js'
import type { DoctorCheck, Finding } from '../types.js'

/** IRT service family: the seedops-irt (and predecessor r-irt-plumber) Deployment, its secrets, replicas, Service and NetworkPolicy ports. */

const labelsMatch = (sel: Record<string, string> | undefined, labels: Record<string, string> | undefined) => Object.entries(sel ?? {}).every(([k, v]) => labels?.[k] === v)

/** The IRT service: seedops' own (k8s/base/irt-service.yaml) and the predecessor's R Plumber. */
export const IRT_DEPLOYMENTS = ['seedops-irt', 'r-irt-plumber']
const isIrt = (d: V1Deployment) => IRT_DEPLOYMENTS.includes(d.metadata?.name ?? '') || d.metadata?.labels?.['app.kubernetes.io/component'] === 'irt'

export const irtDeployment: DoctorCheck = {
  id: 'deployments.irt',
  group: 'cluster',
  description: 'The IRT service Deployment (seedops-irt, r-irt-plumber): secrets it reads, ready replicas, restarts, Service and NetworkPolicy ports',
  dependsOn: 'cluster.reachable',
  async run(ctx) {
    const s = await ctx.cluster()
    const ns = ctx.namespace
    const out: Finding[] = []
    let deployments: V1Deployment[]
    try {
      deployments = (await s.deployments()).filter(isIrt)
    } catch (e) {
      const err = e as SeedopsError
      return [{ status: 'warn', message: `cannot list deployments: ${err.message}`, fix: err.suggestions }]
    }
    if (!deployments.length) return [{ status: 'ok', message: `no IRT service Deployment in ${ns} (${IRT_DEPLOYMENTS.join(', ')})` }]
    for (const d of deployments) {
      const name = d.metadata!.name!
      const tpl = d.spec?.template
      const obj = { ...(d as unknown as KubeObject), kind: 'Deployment', apiVersion: 'apps/v1' }
      const before = out.length
      // Secrets: a missing one keeps every pod in CreateContainerConfigError, so it is a failure even when the rest looks fine.
      for (const r of refsOf(obj).filter((x) => !x.optional)) {
        const what = `${r.kind === 'Secret' ? 'secret' : 'configmap'} ${r.name}`
        const spec = SECRET_SPECS.find((x) => x.name === r.name && x.kind === r.kind)
        const ensure = spec ? `seedops secrets ensure --only ${spec.id} -n ${ns}` : `${kc(ns)} create ${r.kind === 'Secret' ? 'secret generic' : 'configmap'} ${r.name} ${r.keys.map((k) => `--from-literal=${k}=…`).join(' ')}`
        let o
        try {
          o = await s.object(r.kind, r.name)
        } catch (e) {
          out.push({ status: 'warn', subject: name, message: `Deployment ${name}: cannot read ${what}: ${(e as SeedopsError).message}`, fix: (e as SeedopsError).suggestions })
          continue
        }
        if (!o) {
          out.push({ status: 'fail', subject: name, message: `Deployment ${name} reads ${what}, which is missing: its pods cannot start`, fix: [ensure], ...(spec ? { safeFix: { kind: 'ensure-secret', only: spec.id, object: r.name } as const } : {}) })
          continue
        }
        const missing = r.keys.filter((k) => !Object.keys(o.data ?? {}).includes(k))
        if (missing.length) out.push({ status: 'fail', subject: name, message: `Deployment ${name} reads key${missing.length > 1 ? 's' : ''} ${missing.join(', ')} of ${what}, which lacks ${missing.length > 1 ? 'them' : 'it'}`, fix: [spec ? `seedops secrets ensure --only ${spec.id} --update -n ${ns}` : `${kc(ns)} edit ${r.kind.toLowerCase()} ${r.name}`] })
      }
      const desired = d.spec?.replicas ?? 1
      const ready = d.status?.readyReplicas ?? 0
      if (desired === 0) out.push({ status: 'warn', subject: name, message: `Deployment ${name} is scaled to 0: nothing serves IRT requests`, fix: [`${kc(ns)} scale deployment ${name} --replicas=1`] })
      else if (ready < desired) {
        out.push({ status: ready === 0 ? 'fail' : 'warn', subject: name, message: `Deployment ${name}: ${ready}/${desired} replicas ready`, fix: [`${kc(ns)} describe deployment ${name}`, `${kc(ns)} get pods -l ${Object.entries(d.spec?.selector?.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`).join(',')}`] })
      }
      const pods = s.pods.filter((p) => labelsMatch(d.spec?.selector?.matchLabels, p.metadata?.labels))
      for (const p of pods) {
        for (const st of p.status?.containerStatuses ?? []) {
          if (!st.restartCount) continue
          const t = st.lastState?.terminated
          out.push({
            status: 'warn',
            subject: name,
            message: `Deployment ${name}: container ${st.name} of pod ${p.metadata!.name} restarted ${st.restartCount} time${st.restartCount === 1 ? '' : 's'}${t ? `, last exit ${t.exitCode}${t.reason ? ` (${t.reason})` : ''}` : ''}`,
            fix: [`${kc(ns)} logs ${p.metadata!.name} -c ${st.name} --previous`],
          })
        }
      }
      // Ports: the Service's targetPort and the NetworkPolicy's ports both name the pod's port.
      const containerPorts = (tpl?.spec?.containers ?? []).flatMap((c) => (c.ports ?? []).map((p) => ({ port: p.containerPort, name: p.name })))
      const resolve = (t: number | string | undefined) => (typeof t === 'string' && !/^\d+$/.test(t) ? containerPorts.find((p) => p.name === t)?.port : t === undefined ? undefined : Number(t))
      const servingPorts = new Set<number>()
      let behindServices = 0
      try {
        for (const svc of (await s.services()).filter((x) => x.spec?.selector && labelsMatch(x.spec.selector, tpl?.metadata?.labels))) {
          behindServices++
          for (const sp of svc.spec?.ports ?? []) {
            const target = resolve(sp.targetPort ?? sp.port)
            if (target !== undefined && containerPorts.some((c) => c.port === target)) servingPorts.add(target)
            else {
              out.push({
                status: 'fail',
                subject: name,
                message: `Service ${svc.metadata!.name} sends port ${sp.port} to targetPort ${sp.targetPort ?? sp.port}, but ${name}'s pod listens on ${containerPorts.map((c) => c.port).join(', ') || '(no declared port)'}`,
                fix: [`${kc(ns)} patch service ${svc.metadata!.name} --type=json -p '[{"op":"replace","path":"/spec/ports/${svc.spec!.ports!.indexOf(sp)}/targetPort","value":${containerPorts[0]?.port ?? '<port>'}}]'`],
              })
            }
          }
        }
      } catch (e) {
        out.push({ status: 'warn', subject: name, message: `cannot list services: ${(e as SeedopsError).message}`, fix: (e as SeedopsError).suggestions })
      }
      if (!servingPorts.size) for (const c of containerPorts) servingPorts.add(c.port)
      try {
        for (const np of await s.networkPolicies()) {
          const types = np.spec?.policyTypes ?? ['Ingress']
          if (!types.includes('Ingress') || !labelsMatch(np.spec?.podSelector?.matchLabels, tpl?.metadata?.labels)) continue
          const rules = np.spec?.ingress ?? []
          // A rule without ports allows every port; a policy without rules denies all ingress.
          const allows = (port: number) => rules.some((r) => !r.ports?.length || r.ports.some((p) => resolve(p.port) === port || (p.port === undefined) || (p.endPort !== undefined && typeof p.port === 'number' && port >= p.port && port <= p.endPort)))
          const blocked = [...servingPorts].filter((p) => !allows(p))
          if (!blocked.length) continue
          const listed = rules.flatMap((r) => (r.ports ?? []).map((p) => p.port)).filter((p) => p !== undefined)
          const ri = rules.findIndex((r) => r.ports?.length)
          const patch = ri >= 0 ? [`${kc(ns)} patch networkpolicy ${np.metadata!.name} --type=json -p '[{"op":"replace","path":"/spec/ingress/${ri}/ports/0/port","value":${blocked[0]}}]'`] : [`add an ingress rule for port ${blocked[0]} to NetworkPolicy ${np.metadata!.name}`]
          // No Service sends to these pods any more (seedops adopt pointed r-irt-plumber at seedops-irt): only direct pod traffic is dropped.
          out.push(
            behindServices
              ? { status: 'fail', subject: name, message: `NetworkPolicy ${np.metadata!.name} allows ingress to ${name} on port ${listed.join(', ') || '(none)'} only, but the pod listens on ${blocked.join(', ')}: NetworkPolicy ports are the pod's ports (not the Service's), so every request is dropped`, fix: patch }
              : {
                  status: 'warn',
                  subject: name,
                  message: `NetworkPolicy ${np.metadata!.name} allows ingress to ${name} on port ${listed.join(', ') || '(none)'} only, but the pod listens on ${blocked.join(', ')}; no Service sends to ${name} any more, so only requests to its pods directly are dropped`,
                  fix: [`once nothing needs ${name}: ${kc(ns)} scale deployment ${name} --replicas=0`, ...patch.map((x) => `or, to keep using it: ${x}`)],
                },
          )
        }
      } catch (e) {
        out.push({ status: 'warn', subject: name, message: `cannot list networkpolicies (their ports are not checked): ${(e as SeedopsError).message}`, fix: (e as SeedopsError).suggestions })
      }
      if (out.length === before) out.push({ status: 'ok', subject: name, message: `Deployment ${name}: ${ready}/${desired} ready, no restarts, secrets present, ports reachable` })
    }
    return out
  },
}
