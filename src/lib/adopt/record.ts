import type { KubeClients } from '../kube/client.js'
import type { KubeObject } from '../kube/manifests.js'
import { createObject, getObject, mergePatch, REF } from './rest.js'

/**
 * What `seedops adopt --yes` did, kept in the ConfigMap `seedops-adoption` in the namespace, so
 * `--rollback` undoes exactly that and `--prune-legacy` knows which CronJobs are the legacy ones.
 * Names, schedules and keys only: never a secret value.
 */
export const RECORD_NAME = 'seedops-adoption'

export interface LegacyCronJobRecord {
  name: string
  stage: string
  schedule: string
  /** Suspended before adopt touched it (then rollback leaves it suspended). */
  wasSuspended: boolean
  suspendedByAdopt: boolean
}

export interface AdoptionRecord {
  version: 1
  adoptedAt: string
  updatedAt: string
  image?: string
  legacyCronJobs: LegacyCronJobRecord[]
  /** Legacy CronJobs with a seedops name, replaced in place: their whole previous definition. */
  replaced: { name: string; stage: string; before: { labels?: Record<string, string>; annotations?: Record<string, string>; spec: unknown } }[]
  /** Objects adopt created (rollback deletes them, nothing else). */
  created: { kind: string; name: string }[]
  /** Keys adopt added to a Secret or ConfigMap that existed before. */
  keysAdded: { kind: 'Secret' | 'ConfigMap'; name: string; key: string }[]
  /** The legacy r-irt-plumber Service as it was before adopt pointed it at seedops. */
  service?: { name: string; before: { selector?: Record<string, string>; ports: unknown[]; labels?: Record<string, string>; annotations?: Record<string, string> } }
  /** Legacy CronJobs deleted by --prune-legacy (from then on rollback is refused). */
  pruned: string[]
}

export function emptyRecord(now = new Date()): AdoptionRecord {
  const t = now.toISOString()
  return { version: 1, adoptedAt: t, updatedAt: t, legacyCronJobs: [], replaced: [], created: [], keysAdded: [], pruned: [] }
}

export async function readRecord(k: KubeClients): Promise<AdoptionRecord | undefined> {
  const cm = await getObject(k, REF.configmap(RECORD_NAME))
  const text = cm?.data?.['record.json']
  return text ? (JSON.parse(text) as AdoptionRecord) : undefined
}

export async function writeRecord(k: KubeClients, r: AdoptionRecord, exists: boolean): Promise<void> {
  r.updatedAt = new Date().toISOString()
  const data = { 'record.json': JSON.stringify(r, null, 2) }
  if (exists) {
    await mergePatch(k, REF.configmap(RECORD_NAME), { data })
    return
  }
  const cm: KubeObject = {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: RECORD_NAME, namespace: k.namespace, labels: { 'app.kubernetes.io/name': 'seedops', 'app.kubernetes.io/part-of': 'seedops', 'app.kubernetes.io/component': 'adoption' }, annotations: { 'seedops.io/description': 'What seedops adopt changed; seedops adopt --rollback undoes it. Do not edit.' } },
    data,
  }
  await createObject(k, REF.configmap(RECORD_NAME), cm)
}
