import type { CoreV1Event, V1Container, V1Pod } from '@kubernetes/client-node'
import { redact } from '../../errors/index.js'
import { SECRET_SPECS } from '../../kube/secrets.js'
import { adoptFix, kc, lastLogLines } from '../cluster-helpers.js'
import { legacyJobFix, legacyRuns } from '../legacy.js'
import { age } from '../service-checks.js'
import { currentPods, jobOfPod, ownerCronJob } from '../snapshot.js'
import type { ClusterSnapshot, DoctorCheck, Finding } from '../types.js'

/** Stuck pods family: config errors, crash loops, unschedulable pods, pods stuck in Init. */

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
  group: 'cluster',
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
