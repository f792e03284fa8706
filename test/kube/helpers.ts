import { KubeConfig } from '@kubernetes/client-node'
import { makeClients, type KubeClients } from '../../src/lib/kube/client.js'
import { loadManifests } from '../../src/lib/kube/manifests.js'
import type { Standin } from '../support/kube-standin/index.js'

/** seedops' clients against the stand-in, as `connect()` builds them from a kubeconfig. */
export function clientsFor(s: Standin, namespace = 'seedtest', kubeconfig = s.kubeconfig): KubeClients {
  const kc = new KubeConfig()
  kc.loadFromFile(kubeconfig)
  return makeClients(kc, namespace, { timeoutMs: 10_000 })
}

/** Stores the k8s/ production objects in the stand-in (as an admin would have deployed them). */
export function seedManifests(s: Standin, namespace = 'seedtest', image?: string): void {
  for (const o of loadManifests({ namespace, image })) s.seed(o)
}

export const kubeEnv = (s: Standin, kubeconfig = s.kubeconfig) => ({ KUBECONFIG: kubeconfig, SEEDOPS_KUBE_POLL_MS: '100' })
