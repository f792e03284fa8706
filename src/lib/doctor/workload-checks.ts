import type { CoreV1Event, V1Container, V1ContainerStatus, V1CronJob, V1Deployment, V1Pod } from '@kubernetes/client-node'
import { CronExpressionParser } from 'cron-parser'
import { redact, SeedopsError } from '../errors/index.js'
import { refsOf } from '../kube/expected.js'
import { jobState } from '../kube/jobs.js'
import type { KubeObject } from '../kube/manifests.js'
import { SECRET_SPECS } from '../kube/secrets.js'
import { adoptFix, commandOf, isSeedopsCronJob, kc, lastLogLines, legacyEntrypoint, scheduleText, stageOf } from './cluster-checks.js'
import { age } from './service-checks.js'
import { currentPods, jobOfPod, latestJobs, ownerCronJob, ownerJob } from './snapshot.js'
import type { ClusterSnapshot, DoctorCheck, Finding } from './types.js'
import { legacyJobFix, legacyRuns } from './legacy.js'

/**
 * Checks of what else runs in the namespace: whether the CronJobs fire, the IRT service
 * Deployment (the predecessor's r-irt-plumber too), pods that cannot start, jobs that never got a
 * pod, and legacy commands whose module is not in the image. Each reads the kubelet's and the
 * controllers' own words (container states, conditions, events) and names the fix.
 */

/** A missed run is reported once the controller has had this long to start it. */
const FIRE_SLACK_MS = 10 * 60_000

export const cronjobsFired: DoctorCheck = {
  id: 'cronjobs.fired',
  category: 'cluster',
  description: 'Every CronJob that is not suspended fired when its schedule (and time zone) said it should',
  dependsOn: 'cluster.reachable',
  async run(ctx) {
    const s = await ctx.cluster()
    const ns = ctx.namespace
    const out: Finding[] = []
    let checked = 0
    for (const cj of s.cronjobs) {
      const name = cj.metadata!.name!
      if (cj.spec?.suspend) continue
      checked++
      const last = cj.status?.lastScheduleTime ? new Date(cj.status.lastScheduleTime) : undefined
      const since = last ?? new Date(cj.metadata?.creationTimestamp ?? ctx.now)
      const tz = cj.spec?.timeZone ?? 'UTC'
      let due: Date[]
      try {
        due = CronExpressionParser.parse(cj.spec!.schedule, { currentDate: since, tz })
          .take(50)
          .map((d) => d.toDate())
          .filter((d) => d.getTime() + FIRE_SLACK_MS < ctx.now.getTime())
      } catch (e) {
        out.push({ status: 'fail', subject: name, message: `CronJob ${name}: schedule ${scheduleText(cj)} cannot be evaluated: ${(e as Error).message}`, fix: [`seedops schedule set ${name} "<cron>" -n ${ns}`] })
        continue
      }
      if (!due.length) continue
      const missed = due.length >= 50 ? '50 or more' : String(due.length)
      const active = (cj.status?.active ?? []).map((a) => a.name!).filter(Boolean)
      const fix: string[] = []
      let why: string
      if (active.length && cj.spec?.concurrencyPolicy === 'Forbid') {
        why = `job ${active.join(', ')} is still active and concurrencyPolicy Forbid skips every run while it is`
        fix.push(`${kc(ns)} delete job ${active.join(' ')}`, `see why it hangs first: seedops jobs logs ${active[0]} -n ${ns}`)
      } else if (cj.spec?.startingDeadlineSeconds !== undefined && cj.spec.startingDeadlineSeconds < 300) {
        why = `startingDeadlineSeconds ${cj.spec.startingDeadlineSeconds} is shorter than the controller's delay, so late runs are dropped`
        fix.push(`${kc(ns)} patch cronjob ${name} --type=json -p '[{"op":"remove","path":"/spec/startingDeadlineSeconds"}]'`)
      } else {
        why = 'the CronJob controller did not start it (kube-controller-manager not running, clock skew, or more than 100 missed runs, after which it gives up)'
        fix.push(`${kc(ns)} get events --field-selector involvedObject.kind=CronJob,involvedObject.name=${name}`)
      }
      fix.push(`run it now: seedops jobs trigger ${name} -n ${ns} --wait`)
      out.push({
        status: 'fail',
        subject: name,
        message: `CronJob ${name} (${scheduleText(cj)}) has not fired since ${last ? `its last run ${last.toISOString()}` : `it was created ${since.toISOString()}`}: due ${due[0].toISOString()} (${age(ctx.now.getTime() - due[0].getTime())} ago), ${missed} run${due.length === 1 ? '' : 's'} missed; ${why}`,
        fix,
      })
    }
    if (!out.length) out.push({ status: 'ok', message: `${checked} active CronJobs fired on schedule` })
    return out
  },
}

const labelsMatch = (sel: Record<string, string> | undefined, labels: Record<string, string> | undefined) => Object.entries(sel ?? {}).every(([k, v]) => labels?.[k] === v)

/** The IRT service: seedops' own (k8s/base/irt-service.yaml) and the predecessor's R Plumber. */
export const IRT_DEPLOYMENTS = ['seedops-irt', 'r-irt-plumber']
const isIrt = (d: V1Deployment) => IRT_DEPLOYMENTS.includes(d.metadata?.name ?? '') || d.metadata?.labels?.['app.kubernetes.io/component'] === 'irt'

export const irtDeployment: DoctorCheck = {
  id: 'deployments.irt',
  category: 'cluster',
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

/** Secret or config map named by a kubelet CreateContainerConfigError message. */
export function configErrorObject(msg: string): { kind: 'Secret' | 'ConfigMap'; name: string; key?: string } | undefined {
  let m = /(secret|configmap) "([^"]+)" not found/i.exec(msg)
  if (m) return { kind: m[1].toLowerCase() === 'secret' ? 'Secret' : 'ConfigMap', name: m[2] }
  m = /couldn't find key (\S+) in (Secret|ConfigMap) [^/\s]+\/(\S+)/.exec(msg)
  if (m) return { kind: m[2] as 'Secret' | 'ConfigMap', name: m[3], key: m[1] }
  return undefined
}

const ownerText = (s: ClusterSnapshot, p: V1Pod) => {
  const job = jobOfPod(s, p)
  const cj = job ? ownerCronJob(job) : undefined
  if (cj) return ` (cronjob ${cj})`
  if (job) return ` (job ${job.metadata!.name})`
  const rs = p.metadata?.ownerReferences?.find((o) => o.kind === 'ReplicaSet')?.name
  return rs ? ` (deployment ${rs.replace(/-[a-z0-9]{5,10}$/, '')})` : ''
}

export const podsStuck: DoctorCheck = {
  id: 'pods.stuck',
  category: 'cluster',
  description: 'No pod is stuck: CreateContainerConfigError, CrashLoopBackOff, unschedulable (FailedScheduling), or in Init (a native sidecar on a server older than 1.29)',
  dependsOn: 'cluster.reachable',
  async run(ctx) {
    const s = await ctx.cluster()
    const ns = ctx.namespace
    const out: Finding[] = []
    const pods = currentPods(s)
    let events: CoreV1Event[] | undefined
    const podEvents = async (pod: string, reason: string) => {
      events ??= await s.events().catch(() => [])
      return events.filter((e) => e.involvedObject?.kind === 'Pod' && e.involvedObject.name === pod && e.reason === reason)
    }
    for (const p of pods) {
      const podName = p.metadata!.name!
      const who = `pod ${podName}${ownerText(s, p)}`
      for (const st of p.status?.containerStatuses ?? []) {
        const w = st.state?.waiting
        if (w?.reason === 'CreateContainerConfigError') {
          const ref = configErrorObject(w.message ?? '')
          const spec = ref && SECRET_SPECS.find((x) => x.name === ref.name && x.kind === ref.kind)
          const what = ref ? `${ref.kind === 'Secret' ? 'secret' : 'configmap'} ${ref.name}${ref.key ? ` has no key ${ref.key}` : ' does not exist'}` : (w.message ?? 'its configuration is invalid')
          out.push({
            status: 'fail',
            subject: podName,
            message: `${who} cannot start container ${st.name}: ${what} [CreateContainerConfigError]`,
            details: w.message ? [`kubelet: ${redact(w.message)}`] : undefined,
            fix: spec
              ? [`seedops secrets ensure --only ${spec.id}${ref?.key ? ' --update' : ''} -n ${ns}`]
              : ref
                ? [ref.key ? `${kc(ns)} edit ${ref.kind.toLowerCase()} ${ref.name}   # add key ${ref.key}` : `${kc(ns)} create ${ref.kind === 'Secret' ? 'secret generic' : 'configmap'} ${ref.name} --from-literal=<key>=…`, ...(ownerText(s, p).includes('cronjob') ? adoptFix(ns).slice(0, 1).map((x) => `or, for a predecessor's CronJob, copy it under seedops' names: ${x}`) : [])]
                : [`${kc(ns)} describe pod ${podName}`],
          })
        }
        if (w?.reason === 'CrashLoopBackOff') {
          const t = st.lastState?.terminated
          const lines = await lastLogLines(s, podName, st.name, 5, true)
          out.push({
            status: 'fail',
            subject: podName,
            message: `${who}: container ${st.name} is in CrashLoopBackOff, restarted ${st.restartCount ?? 0} times${t ? `, last exit ${t.exitCode}${t.reason ? ` (${t.reason})` : ''}` : ''}`,
            details: lines.length ? lines.map((l) => `| ${l}`) : ['(no log lines)'],
            fix: [`${kc(ns)} logs ${podName} -c ${st.name} --previous`],
          })
        }
      }
      if (p.status?.phase !== 'Pending') continue
      const sched = p.status?.conditions?.find((c) => c.type === 'PodScheduled' && c.status === 'False')
      const failedScheduling = (await podEvents(podName, 'FailedScheduling')).at(-1)
      if (sched?.reason === 'Unschedulable' || failedScheduling) {
        const msg = failedScheduling?.message ?? sched?.message ?? ''
        const res = [...msg.matchAll(/Insufficient (\w+)/g)].map((m) => m[1])
        const c0 = p.spec?.containers?.[0]
        const req = res.map((r) => `${r} ${c0?.resources?.requests?.[r] ?? '(none)'}`).join(', ')
        out.push({
          status: 'fail',
          subject: podName,
          message: `${who} cannot be scheduled: ${msg}`,
          fix: res.length
            ? [`lower the requests (container ${c0?.name} requests ${req}) or add nodes with more ${res.join(' and ')}`, `${kc(ns)} describe nodes | grep -A5 'Allocated resources'`]
            : [`${kc(ns)} describe pod ${podName}`],
        })
        continue
      }
      // Stuck in Init: an init container still running while the regular ones wait.
      const runningInit = (p.status?.initContainerStatuses ?? []).find((x) => x.state?.running)
      if (!runningInit) continue
      const v = await s.serverVersion()
      const old = v && (v.major < 1 || (v.major === 1 && v.minor < 29))
      const ageMs = ctx.now.getTime() - new Date(p.status?.startTime ?? p.metadata?.creationTimestamp ?? ctx.now).getTime()
      const specInit = p.spec?.initContainers?.find((c) => c.name === runningInit.name) as (V1Container & { restartPolicy?: string }) | undefined
      if (old) {
        out.push({
          status: 'fail',
          subject: podName,
          message: `${who} is stuck in Init: init container ${runningInit.name} never exits; it is meant as a native sidecar (initContainers with restartPolicy: Always), which needs Kubernetes ≥ 1.29, and this server is ${v!.gitVersion}${specInit?.restartPolicy === 'Always' ? '' : ' (it dropped restartPolicy: Always)'}`,
          fix: [
            `upgrade the cluster to 1.29 or later, or deploy without the db-proxy overlay: seedops deploy -n ${ns} --manifests k8s/overlays/production (DATABASE_URL then points at the database directly)`,
            ...(jobOfPod(s, p) ? [`then delete the stuck job: ${kc(ns)} delete job ${jobOfPod(s, p)!.metadata!.name}`] : []),
          ],
        })
      } else if (ageMs > 10 * 60_000 && specInit?.restartPolicy !== 'Always') {
        out.push({ status: 'warn', subject: podName, message: `${who} has been in Init for ${age(ageMs)}: init container ${runningInit.name} is still running`, fix: [`${kc(ns)} logs ${podName} -c ${runningInit.name}`] })
      }
    }
    // A leftover pod of a suspended or replaced legacy CronJob: still worth deleting, no longer a failure of the namespace.
    const legacy = await legacyRuns(s)
    for (const f of out) {
      const p = pods.find((x) => x.metadata?.name === f.subject)
      const job = p ? jobOfPod(s, p) : undefined
      const old = legacy(job)
      if (!old || !job) continue
      f.status = 'warn'
      f.message = `${f.message} — a leftover of ${old.text}`
      f.fix = legacyJobFix(ns, job.metadata!.name!, old)
    }
    if (!out.length) out.push({ status: 'ok', message: `no stuck pod among ${pods.length} current pods` })
    return out
  },
}

/** The job controller's FailedCreate message, classified. */
export function failedCreateCause(msg: string): { kind: 'quota' | 'pod-security' | 'service-account' | 'other'; detail: string } {
  let m = /exceeded quota: ([\w.-]+)/.exec(msg)
  if (m) return { kind: 'quota', detail: m[1] }
  m = /violates PodSecurity "([^"]+)": (.*)$/.exec(msg)
  if (m) return { kind: 'pod-security', detail: `${m[1]}: ${m[2]}` }
  m = /serviceaccount "([^"]+)" not found/.exec(msg)
  if (m) return { kind: 'service-account', detail: m[1] }
  return { kind: 'other', detail: msg }
}

export const jobsNotCreated: DoctorCheck = {
  id: 'jobs.no-pods',
  category: 'cluster',
  description: 'Every running job got its pods (no FailedCreate: quota, Pod Security, missing ServiceAccount)',
  dependsOn: 'cluster.reachable',
  async run(ctx) {
    const s = await ctx.cluster()
    const ns = ctx.namespace
    const out: Finding[] = []
    const legacy = await legacyRuns(s)
    const podless = latestJobs(s).filter((j) => jobState(j) !== 'succeeded' && !legacy(j) && !s.pods.some((p) => ownerJob(p) === j.metadata!.name))
    const events = podless.length ? await s.events().catch(() => [] as CoreV1Event[]) : []
    for (const j of podless) {
      const name = j.metadata!.name!
      const ev = events.filter((e) => e.involvedObject?.kind === 'Job' && e.involvedObject.name === name && e.reason === 'FailedCreate').at(-1)
      if (!ev) continue
      const cronjob = ownerCronJob(j)
      const msg = redact(ev.message ?? '')
      const c = failedCreateCause(msg)
      const target = cronjob ? `cronjob ${cronjob}` : `job ${name}`
      const fix =
        c.kind === 'quota'
          ? [`${kc(ns)} describe resourcequota ${c.detail}`, `lower the requests/limits of ${target}, or raise the quota ${c.detail}`]
          : c.kind === 'pod-security'
            ? [`make ${target}'s pod meet the namespace's Pod Security level (${c.detail.split(': ')[0]}): set what the message lists in its securityContext (seedops' own CronJobs do: seedops deploy -n ${ns})`, `${kc(ns)} get namespace ${ns} --show-labels   # pod-security.kubernetes.io/enforce`]
            : c.kind === 'service-account'
              ? [c.detail === 'seedops-runner' ? `seedops deploy -n ${ns}   # creates the ServiceAccount seedops-runner` : `${kc(ns)} create serviceaccount ${c.detail}`, ...(cronjob && !isSeedopsCronJobName(s, cronjob) ? adoptFix(ns).slice(0, 1).map((x) => `or replace the legacy CronJob: ${x}`) : [])]
              : [`${kc(ns)} describe job ${name}`]
      const label = { quota: 'a ResourceQuota is exceeded', 'pod-security': 'Pod Security rejects the pod', 'service-account': `its ServiceAccount ${c.detail} does not exist`, other: 'the job controller cannot create it' }[c.kind]
      out.push({ status: 'fail', subject: name, message: `job ${name}${cronjob ? ` (cronjob ${cronjob})` : ''} never got a pod: ${label}`, details: [`job-controller: ${msg}`], fix })
    }
    if (!out.length) out.push({ status: 'ok', message: 'every running job has its pods' })
    return out
  },
}

function isSeedopsCronJobName(s: ClusterSnapshot, name: string): boolean {
  const cj = s.cronjobs.find((c) => c.metadata?.name === name)
  return cj ? isSeedopsCronJob(cj) : false
}

/** What the runtime or Python says when a command or module is not in the image. */
export function missingEntrypoint(text: string): string | undefined {
  const m =
    /exec: "([^"]+)": (?:executable file not found in \$PATH|stat [^:]+: no such file or directory|no such file or directory)/.exec(text) ??
    /No module named '([^']+)'/.exec(text) ??
    /can't open file '([^']+)': \[Errno 2\] No such file or directory/.exec(text) ??
    /(\S+): No such file or directory/.exec(text)
  return m?.[0]
}

export const jobsModulePath: DoctorCheck = {
  id: 'jobs.module-path',
  category: 'cluster',
  description: "No job's command or Python module is missing from its image (StartError, ModuleNotFoundError)",
  dependsOn: 'cluster.reachable',
  async run(ctx) {
    const s = await ctx.cluster()
    const ns = ctx.namespace
    const out: Finding[] = []
    const stages = ctx.expected.map((e) => e.stage)
    const seen = new Set<string>()
    // A suspended or replaced legacy CronJob will not run that command again (adopt's fix is already applied).
    const legacy = await legacyRuns(s)
    for (const j of latestJobs(s)) {
      const cronjob = ownerCronJob(j)
      const key = cronjob ?? j.metadata!.name!
      if (seen.has(key)) continue
      if (legacy(j)) continue
      const pods = s.pods.filter((p) => jobOfPod(s, p) === j)
      for (const p of pods) {
        const found = await missingModule(s, p)
        if (!found) continue
        const { c0, t, evidence } = found
        seen.add(key)
        const live: V1CronJob | undefined = cronjob ? s.cronjobs.find((c) => c.metadata?.name === cronjob) : undefined
        const stage = live ? stageOf(live, stages) : undefined
        const cmd = commandOf(c0)
        const entry = legacyEntrypoint(cmd) ?? cmd.filter((x) => !['/bin/sh', '-c', 'sh', 'bash'].includes(x)).join(' ').split('\n').find((l) => l.trim())?.trim() ?? '(image default)'
        out.push({
          status: 'fail',
          subject: key,
          message: `${cronjob ? `CronJob ${cronjob}` : `job ${j.metadata!.name}`}: module path mismatch: ${entry} is not in image ${c0.image} (${redact(evidence)}, exit ${t.exitCode}${t.reason && t.reason !== 'Error' ? ` ${t.reason}` : ''})`,
          details: [`pod ${p.metadata!.name}`],
          fix: stage
            ? [...adoptFix(ns).map((x, i) => (i === 1 ? `${x.split('   #')[0]}   # replaces it with \`seedops run ${stage}\`` : x))]
            : [`fix the command of ${cronjob ? `cronjob ${cronjob}` : `job ${j.metadata!.name}`} to a module the image has (list them: kubectl -n ${ns} debug … python3 -c 'help("modules")')`],
        })
        break
      }
    }
    if (!out.length) out.push({ status: 'ok', message: 'no job failed for a missing command or module' })
    return out
  },
}

/** The main container of a pod that exited because its command or module is not in the image, with the runtime's or Python's words. */
export async function missingModule(s: ClusterSnapshot, p: V1Pod): Promise<{ c0: V1Container; t: NonNullable<ReturnType<typeof terminated>>; evidence: string } | undefined> {
  const c0 = p.spec?.containers?.[0]
  const st = p.status?.containerStatuses?.find((x) => x.name === c0?.name)
  const t = terminated(st)
  if (!c0 || !t || t.exitCode === 0) return undefined
  let evidence = t.reason === 'StartError' || t.reason === 'ContainerCannotRun' ? missingEntrypoint(t.message ?? '') : undefined
  if (!evidence) evidence = missingEntrypoint((await lastLogLines(s, p.metadata!.name!, c0.name, 10)).join('\n'))
  return evidence ? { c0, t, evidence } : undefined
}

function terminated(st: V1ContainerStatus | undefined) {
  return st?.state?.terminated ?? st?.lastState?.terminated
}

