import type { Clock } from './clock.js'
import { findResource } from './resources.js'
import { randomSuffix, type Store } from './store.js'

const EVENT = findResource('', 'v1', 'events')!

/** A core/v1 Event about `involved`, as a controller's event recorder writes it. */
export function recordEvent(store: Store, clock: Clock, involved: any, type: 'Normal' | 'Warning', reason: string, message: string, component: string): void {
  const now = clock.nowIso()
  const ns = involved.metadata.namespace
  store.create(EVENT, {
    metadata: { name: `${involved.metadata.name}.${randomSuffix(8)}`, namespace: ns },
    involvedObject: { kind: involved.kind, namespace: ns, name: involved.metadata.name, uid: involved.metadata.uid, apiVersion: involved.apiVersion, resourceVersion: involved.metadata.resourceVersion },
    reason,
    message,
    source: { component },
    firstTimestamp: now,
    lastTimestamp: now,
    count: 1,
    type,
    reportingComponent: component,
    reportingInstance: '',
  })
}
