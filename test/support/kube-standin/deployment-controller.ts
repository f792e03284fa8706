import { applyDefaults } from './admission.js'
import type { Clock } from './clock.js'
import { pullFailure } from './controller.js'
import { recordEvent } from './events.js'
import { clone } from './patch.js'
import { findResource } from './resources.js'
import type { Store } from './store.js'

/**
 * The Deployment and ReplicaSet controllers and a kubelet for their pods, enough for a Deployment
 * to become ready or to stay not ready for a reason an operator can read. Behaviour follows
 * kubernetes/kubernetes pkg/controller/deployment (sync.go getNewReplicaSet/syncDeploymentStatus,
 * progress.go syncRolloutStatus, util/deployment_util.go condition reasons and messages) and
 * pkg/controller/replicaset. Rolling updates are simplified: old ReplicaSets scale to 0 once the
 * new one is fully available. Runs only once started.
 */
const DEPLOYMENT = findResource('apps', 'v1', 'deployments')!
const REPLICASET = findResource('apps', 'v1', 'replicasets')!
const POD = findResource('', 'v1', 'pods')!

/** How a Deployment's pod behaves, scripted per test (the Job controller's `image-pull` convention, reused). */
export type PodBehaviour =
  | { kind: 'ready' }
  | { kind: 'image-pull'; reason?: 'not-found' | 'unauthorized' }
  /** The container exits at once and the kubelet backs off (CrashLoopBackOff). */
  | { kind: 'crash'; exitCode?: number }
  /** Running, but its readiness probe never passes. */
  | { kind: 'unready' }

export interface PodScript {
  behaviour: PodBehaviour
  /** Pending → started after this long (real time). */
  startDelayMs?: number
}

const controllerOf = (o: any) => (o.metadata.ownerReferences ?? []).find((r: any) => r.controller)
const cond = (o: any, type: string) => (o.status?.conditions ?? []).find((c: any) => c.type === type)

/** k8s.io/apimachinery/pkg/util/rand SafeEncodeString: no vowels, no confusable digits. */
function safeEncode(s: string): string {
  const alphanums = 'bcdfghjklmnpqrstvwxz2456789'
  return [...s].map((c) => alphanums[c.charCodeAt(0) % alphanums.length]).join('')
}

/** controller.ComputeHash: FNV-32a of the pod template (here over sorted JSON, not Go's spew, so values differ from a real cluster's). */
export function podTemplateHash(template: any, collisionCount = 0): string {
  const text = JSON.stringify(sortKeys(template)) + (collisionCount ? String(collisionCount) : '')
  let h = 0x811c9dc5
  for (const b of Buffer.from(text)) {
    h ^= b
    h = Math.imul(h, 0x01000193) >>> 0
  }
  return safeEncode(String(h))
}

function sortKeys(v: any): any {
  if (Array.isArray(v)) return v.map(sortKeys)
  if (v && typeof v === 'object') return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortKeys(v[k])]))
  return v
}

/** intstr.GetScaledValueFromIntOrPercent, rounding down as maxUnavailable does. */
function scaled(v: number | string | undefined, total: number, roundUp: boolean): number {
  if (v === undefined) return 0
  if (typeof v === 'number') return v
  const pct = Number(v.replace('%', ''))
  return roundUp ? Math.ceil((pct * total) / 100) : Math.floor((pct * total) / 100)
}

export class DeploymentController {
  script: (deployment: any, pod: { replicaSet: string; name: string }) => PodScript = () => ({ behaviour: { kind: 'ready' } })
  private unsubs: (() => void)[] = []
  private timers = new Set<NodeJS.Timeout>()
  private deadlines = new Map<string, () => void>()
  private queue = new Set<string>()
  private draining = false
  private running = false
  private crashes = new Map<string, number>()

  constructor(
    private store: Store,
    private clock: Clock,
  ) {}

  start(): this {
    if (this.running) return this
    this.running = true
    this.unsubs.push(
      this.store.subscribe((e) => {
        if (e.rt === DEPLOYMENT && e.type !== 'DELETED') this.enqueue(key(e.object.metadata.namespace, e.object.metadata.name))
        else if (e.rt === REPLICASET) this.enqueueOwner(e.object)
        else if (e.rt === POD) {
          const ref = controllerOf(e.object)
          if (ref?.kind !== 'ReplicaSet') return
          const rs = this.store.get(REPLICASET, e.object.metadata.namespace, ref.name)
          if (rs) this.enqueueOwner(rs)
        }
      }),
      // A jump can put a Deployment past its progress deadline.
      this.clock.onJump(() => this.syncAll()),
    )
    this.syncAll()
    return this
  }

  stop(): void {
    this.running = false
    for (const u of this.unsubs) u()
    this.unsubs = []
    for (const t of this.timers) clearTimeout(t)
    for (const c of this.deadlines.values()) c()
    this.deadlines.clear()
  }

  private enqueueOwner(rs: any) {
    const ref = controllerOf(rs)
    if (ref?.kind === 'Deployment') this.enqueue(key(rs.metadata.namespace, ref.name))
  }

  private syncAll() {
    for (const d of this.store.list(DEPLOYMENT)) this.queue.add(key(d.metadata.namespace, d.metadata.name))
    this.drain()
  }

  private enqueue(k: string) {
    this.queue.add(k)
    if (!this.draining) queueMicrotask(() => this.drain())
  }

  private drain() {
    if (this.draining || !this.running) return
    this.draining = true
    try {
      for (let i = 0; this.queue.size && i < 1000; i++) {
        const k = this.queue.values().next().value!
        this.queue.delete(k)
        this.sync(k)
      }
    } finally {
      this.draining = false
    }
  }

  private later(ms: number, fn: () => void) {
    if (!this.running) return
    const t = setTimeout(() => {
      this.timers.delete(t)
      if (this.running) fn()
    }, ms)
    this.timers.add(t)
  }

  private sync(k: string) {
    const [ns, name] = k.split('/')
    const d = this.store.get(DEPLOYMENT, ns, name)
    this.deadlines.get(k)?.()
    this.deadlines.delete(k)
    if (!d || d.spec.paused) return
    const desired = d.spec.replicas ?? 1
    const owned = this.store.list(REPLICASET, ns).filter((rs) => controllerOf(rs)?.uid === d.metadata.uid)
    const hash = podTemplateHash(d.spec.template, d.status?.collisionCount)
    const rsName = `${name}-${hash}`
    let newRs = owned.find((rs) => rs.metadata.name === rsName)
    const old = owned.filter((rs) => rs !== newRs)
    let created = false
    const revision = Math.max(0, ...owned.map((rs) => Number(rs.metadata.annotations?.['deployment.kubernetes.io/revision'] ?? 0)))
    if (!newRs) {
      newRs = this.createReplicaSet(d, rsName, hash, desired, revision + 1)
      created = true
    } else if (newRs.spec.replicas !== desired) {
      newRs = this.store.update(REPLICASET, { ...newRs, spec: { ...newRs.spec, replicas: desired } })
    }
    const rev = newRs.metadata.annotations['deployment.kubernetes.io/revision']
    if (d.metadata.annotations?.['deployment.kubernetes.io/revision'] !== rev) {
      this.store.update(DEPLOYMENT, { ...d, metadata: { ...d.metadata, annotations: { ...(d.metadata.annotations ?? {}), 'deployment.kubernetes.io/revision': rev } } })
    }
    for (const rs of [newRs, ...old]) this.reconcilePods(d, rs)
    const newStatus = this.replicaSetStatus(newRs)
    // Old ReplicaSets go once the new one serves every replica (maxSurge taken as 100%).
    if (newStatus.availableReplicas >= desired) {
      for (const rs of old.filter((x) => x.spec.replicas !== 0)) this.store.update(REPLICASET, { ...rs, spec: { ...rs.spec, replicas: 0 } })
    }
    const all = [newRs, ...old].map((rs) => this.store.get(REPLICASET, ns, rs.metadata.name)).filter(Boolean)
    for (const rs of all) this.reconcilePods(d, rs)
    this.writeStatus(k, d, rsName, all, created)
  }

  /** sync.go getNewReplicaSet: labels and selector with pod-template-hash, revision annotations, a controller reference. */
  private createReplicaSet(d: any, name: string, hash: string, replicas: number, revision: number) {
    const tpl = clone(d.spec.template)
    tpl.metadata ??= {}
    tpl.metadata.labels = { ...(tpl.metadata.labels ?? {}), 'pod-template-hash': hash }
    const surge = d.spec.strategy?.type === 'Recreate' ? 0 : scaled(d.spec.strategy?.rollingUpdate?.maxSurge ?? '25%', replicas, true)
    const rs = this.store.create(REPLICASET, {
      metadata: {
        name,
        namespace: d.metadata.namespace,
        labels: tpl.metadata.labels,
        annotations: { 'deployment.kubernetes.io/desired-replicas': String(replicas), 'deployment.kubernetes.io/max-replicas': String(replicas + surge), 'deployment.kubernetes.io/revision': String(revision) },
        ownerReferences: [{ apiVersion: 'apps/v1', kind: 'Deployment', name: d.metadata.name, uid: d.metadata.uid, controller: true, blockOwnerDeletion: true }],
      },
      spec: { replicas, minReadySeconds: d.spec.minReadySeconds ?? 0, selector: { ...clone(d.spec.selector), matchLabels: { ...(d.spec.selector?.matchLabels ?? {}), 'pod-template-hash': hash } }, template: tpl },
      status: { replicas: 0 },
    })
    recordEvent(this.store, this.clock, d, 'Normal', 'ScalingReplicaSet', `Scaled up replica set ${name} from 0 to ${replicas}`, 'deployment-controller')
    return rs
  }

  private podsOf(rs: any): any[] {
    return this.store.list(POD, rs.metadata.namespace).filter((p) => controllerOf(p)?.uid === rs.metadata.uid)
  }

  /** The ReplicaSet controller: as many pods as spec.replicas (newest deleted first), and its status. */
  private reconcilePods(d: any, rs: any) {
    const pods = this.podsOf(rs)
    const want = rs.spec.replicas ?? 0
    for (let i = pods.length; i < want; i++) this.createPod(d, rs)
    if (pods.length > want) {
      const byNewest = [...pods].sort((a, b) => b.metadata.creationTimestamp.localeCompare(a.metadata.creationTimestamp) || b.metadata.name.localeCompare(a.metadata.name))
      for (const p of byNewest.slice(0, pods.length - want)) {
        this.store.delete(POD, p.metadata.namespace, p.metadata.name)
        recordEvent(this.store, this.clock, rs, 'Normal', 'SuccessfulDelete', `Deleted pod: ${p.metadata.name}`, 'replicaset-controller')
      }
    }
    const st = { ...this.replicaSetStatus(rs), observedGeneration: rs.metadata.generation }
    const cur = this.store.get(REPLICASET, rs.metadata.namespace, rs.metadata.name)
    if (cur) this.store.update(REPLICASET, { ...cur, status: st })
  }

  private replicaSetStatus(rs: any) {
    const pods = this.podsOf(rs)
    const minReady = (rs.spec.minReadySeconds ?? 0) * 1000
    const ready = pods.filter((p) => cond(p, 'Ready')?.status === 'True')
    const available = ready.filter((p) => Date.parse(cond(p, 'Ready').lastTransitionTime) + minReady <= this.clock.now().getTime())
    return { replicas: pods.length, fullyLabeledReplicas: pods.length, readyReplicas: ready.length, availableReplicas: available.length }
  }

  /** sync.go syncDeploymentStatus + progress.go syncRolloutStatus: counts, Available and Progressing. */
  private writeStatus(k: string, d: any, rsName: string, all: any[], created: boolean) {
    const desired = d.spec.replicas ?? 1
    const sts = all.map((rs) => ({ name: rs.metadata.name, ...this.replicaSetStatus(rs) }))
    const newSt = sts.find((s) => s.name === rsName)!
    const sum = (f: 'replicas' | 'readyReplicas' | 'availableReplicas') => sts.reduce((n, s) => n + s[f], 0)
    const prev = d.status ?? {}
    const status: any = {
      observedGeneration: d.metadata.generation,
      replicas: sum('replicas'),
      updatedReplicas: newSt.replicas,
      readyReplicas: sum('readyReplicas'),
      availableReplicas: sum('availableReplicas'),
      unavailableReplicas: Math.max(0, desired - sum('availableReplicas')),
      ...(prev.collisionCount ? { collisionCount: prev.collisionCount } : {}),
    }
    const now = this.clock.nowIso()
    const conditions: any[] = clone(prev.conditions ?? [])
    // util.SetDeploymentCondition: an unchanged condition keeps its times; a new status gets a new transition time.
    const set = (type: string, statusV: 'True' | 'False', reason: string, message: string) => {
      const i = conditions.findIndex((c) => c.type === type)
      const c = conditions[i]
      if (c && c.status === statusV && c.reason === reason && c.message === message) return
      const next = { type, status: statusV, lastUpdateTime: now, lastTransitionTime: c && c.status === statusV ? c.lastTransitionTime : now, reason, message }
      if (i >= 0) conditions[i] = next
      else conditions.push(next)
    }
    const maxUnavailable = d.spec.strategy?.type === 'Recreate' ? 0 : scaled(d.spec.strategy?.rollingUpdate?.maxUnavailable ?? '25%', desired, false)
    if (status.availableReplicas >= desired - maxUnavailable) set('Available', 'True', 'MinimumReplicasAvailable', 'Deployment has minimum availability.')
    else set('Available', 'False', 'MinimumReplicasUnavailable', 'Deployment does not have minimum availability.')
    const deadlineS = d.spec.progressDeadlineSeconds ?? 600
    const progressing = cond({ status: { conditions } }, 'Progressing')
    const complete = status.updatedReplicas === desired && status.replicas === desired && status.availableReplicas === desired
    // DeploymentProgressing: the new ReplicaSet gained updated/ready/available pods, or old pods went away.
    const moved = status.updatedReplicas > (prev.updatedReplicas ?? 0) || status.readyReplicas > (prev.readyReplicas ?? 0) || status.availableReplicas > (prev.availableReplicas ?? 0) || status.replicas - status.updatedReplicas < (prev.replicas ?? 0) - (prev.updatedReplicas ?? 0)
    if (created) set('Progressing', 'True', 'NewReplicaSetCreated', `Created new replica set "${rsName}"`)
    else if (!progressing) set('Progressing', 'True', 'FoundNewReplicaSet', `Found new replica set "${rsName}"`)
    if (complete) set('Progressing', 'True', 'NewReplicaSetAvailable', `ReplicaSet "${rsName}" has successfully progressed.`)
    else if (moved && !created) {
      const i = conditions.findIndex((c) => c.type === 'Progressing')
      const c = conditions[i]
      conditions[i] = { type: 'Progressing', status: 'True', lastUpdateTime: now, lastTransitionTime: c?.status === 'True' ? c.lastTransitionTime : now, reason: 'ReplicaSetUpdated', message: `ReplicaSet "${rsName}" is progressing.` }
    } else {
      const c = cond({ status: { conditions } }, 'Progressing')
      if (c && c.reason !== 'NewReplicaSetAvailable' && c.reason !== 'ProgressDeadlineExceeded' && Date.parse(c.lastUpdateTime) + deadlineS * 1000 < this.clock.now().getTime()) {
        set('Progressing', 'False', 'ProgressDeadlineExceeded', `ReplicaSet "${rsName}" has timed out progressing.`)
      }
    }
    status.conditions = conditions
    const latest = this.store.get(DEPLOYMENT, d.metadata.namespace, d.metadata.name)
    if (latest) this.store.update(DEPLOYMENT, { ...latest, status })
    // progress.go requeueStuckDeployment: look again once the deadline has passed.
    const p = cond({ status }, 'Progressing')
    if (!complete && p?.status === 'True' && this.running) {
      this.deadlines.set(k, this.clock.at(new Date(Date.parse(p.lastUpdateTime) + deadlineS * 1000 + 1000), () => (this.queue.add(k), this.drain())))
    }
  }

  private createPod(d: any, rs: any) {
    const tpl = clone(rs.spec.template)
    const pod = this.store.create(
      POD,
      {
        metadata: { generateName: `${rs.metadata.name}-`, namespace: rs.metadata.namespace, labels: tpl.metadata?.labels ?? {}, annotations: tpl.metadata?.annotations, ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: rs.metadata.name, uid: rs.metadata.uid, controller: true, blockOwnerDeletion: true }] },
        spec: { ...tpl.spec, nodeName: 'standin-node', serviceAccountName: tpl.spec.serviceAccountName ?? 'default' },
        status: {
          phase: 'Pending',
          conditions: [{ type: 'PodScheduled', status: 'True', lastTransitionTime: this.clock.nowIso() }],
          hostIP: '10.0.0.10',
          qosClass: 'Burstable',
          startTime: this.clock.nowIso(),
          containerStatuses: tpl.spec.containers.map((c: any) => ({ name: c.name, image: c.image, imageID: '', ready: false, restartCount: 0, started: false, state: { waiting: { reason: 'ContainerCreating' } }, lastState: {} })),
        },
      },
      { prepare: (o) => applyDefaults(POD, o, o.metadata.uid) },
    )
    recordEvent(this.store, this.clock, rs, 'Normal', 'SuccessfulCreate', `Created pod: ${pod.metadata.name}`, 'replicaset-controller')
    const script = this.script(d, { replicaSet: rs.metadata.name, name: pod.metadata.name })
    this.later(script.startDelayMs ?? 20, () => this.runPod(pod, script.behaviour))
  }

  /** The kubelet's part: container states and pod conditions as each behaviour shows them. */
  private runPod(pod: any, b: PodBehaviour) {
    const ns = pod.metadata.namespace
    const name = pod.metadata.name
    const main = pod.spec.containers[0]
    const update = (fn: (p: any) => void) => {
      const p = this.store.get(POD, ns, name)
      if (!p) return false
      fn(p)
      this.store.update(POD, p)
      return true
    }
    const now = () => this.clock.nowIso()
    const notReady = (p: any, names: string[]) => {
      const msg = `containers with unready status: [${names.join(' ')}]`
      p.status.conditions = [
        ...p.status.conditions.filter((c: any) => !['Initialized', 'Ready', 'ContainersReady'].includes(c.type)),
        { type: 'Initialized', status: 'True', lastTransitionTime: now() },
        { type: 'Ready', status: 'False', lastTransitionTime: now(), reason: 'ContainersNotReady', message: msg },
        { type: 'ContainersReady', status: 'False', lastTransitionTime: now(), reason: 'ContainersNotReady', message: msg },
      ]
    }
    if (b.kind === 'image-pull') {
      const { why, errImagePull } = pullFailure(main.image, b.reason)
      update((p) => {
        p.status.containerStatuses[0].state = { waiting: { reason: 'ErrImagePull', message: errImagePull } }
        notReady(p, [main.name])
      })
      recordEvent(this.store, this.clock, pod, 'Normal', 'Pulling', `Pulling image "${main.image}"`, 'kubelet')
      recordEvent(this.store, this.clock, pod, 'Warning', 'Failed', `Failed to pull image "${main.image}": ${why}`, 'kubelet')
      this.later(20, () => {
        update((p) => (p.status.containerStatuses[0].state = { waiting: { reason: 'ImagePullBackOff', message: `Back-off pulling image "${main.image}"` } }))
        recordEvent(this.store, this.clock, pod, 'Normal', 'BackOff', `Back-off pulling image "${main.image}"`, 'kubelet')
      })
      return
    }
    const startedAt = now()
    update((p) => {
      p.status.phase = 'Running'
      p.status.podIP = '10.244.1.' + (2 + Math.floor(Math.random() * 200))
      const ready = b.kind === 'ready'
      for (const s of p.status.containerStatuses) Object.assign(s, { state: { running: { startedAt } }, ready, started: true })
      if (ready) {
        p.status.conditions = [
          ...p.status.conditions.filter((c: any) => !['Initialized', 'Ready', 'ContainersReady'].includes(c.type)),
          { type: 'Initialized', status: 'True', lastTransitionTime: startedAt },
          { type: 'Ready', status: 'True', lastTransitionTime: startedAt },
          { type: 'ContainersReady', status: 'True', lastTransitionTime: startedAt },
        ]
      } else notReady(p, [main.name])
    })
    if (b.kind === 'unready') recordEvent(this.store, this.clock, pod, 'Warning', 'Unhealthy', 'Readiness probe failed: HTTP probe failed with statuscode: 503', 'kubelet')
    if (b.kind === 'crash') {
      this.later(20, () => {
        const restarts = (this.crashes.get(name) ?? 0) + 1
        this.crashes.set(name, restarts)
        update((p) => {
          const s = p.status.containerStatuses[0]
          Object.assign(s, {
            ready: false,
            started: false,
            restartCount: restarts,
            lastState: { terminated: { exitCode: b.exitCode ?? 1, reason: 'Error', startedAt, finishedAt: now() } },
            state: { waiting: { reason: 'CrashLoopBackOff', message: `back-off 10s restarting failed container=${main.name} pod=${name}_${ns}(${p.metadata.uid})` } },
          })
        })
        recordEvent(this.store, this.clock, pod, 'Warning', 'BackOff', 'Back-off restarting failed container', 'kubelet')
      })
    }
  }
}

const key = (ns: string, name: string) => `${ns}/${name}`
