import { SeedopsError } from '../../errors/index.js'
import { readNamespace } from '../snapshot.js'
import { CheckSkipped, type ClusterSnapshot, type DoctorCheck } from '../types.js'

/** Cluster family: the cluster answers and the namespace exists. */

export const clusterReachable: DoctorCheck = {
  id: 'cluster.reachable',
  group: 'cluster',
  description: 'The cluster answers and the namespace exists',
  async run(ctx) {
    let s: ClusterSnapshot
    try {
      s = await ctx.cluster()
    } catch (e) {
      const err = e instanceof SeedopsError ? e : new SeedopsError(String(e), { code: 'KUBE_ERROR' })
      if (err.code === 'KUBE_NO_CONFIG') {
        const how = 'point seedops at a cluster with --kubeconfig PATH, --context NAME or KUBECONFIG'
        if (ctx.requireCluster) return [{ status: 'fail', message: `${err.message} (--require-cluster)`, fix: err.suggestions }]
        throw new CheckSkipped(`${err.message}: cluster checks skipped; ${how} (--require-cluster makes this a failure)`, 'no cluster configured')
      }
      if (err.code === 'KUBE_NAMESPACE_NOT_FOUND') return [{ status: 'fail', message: `namespace ${ctx.namespace} does not exist`, fix: [`seedops deploy -n ${ctx.namespace}`, 'Or pick another namespace with -n/--namespace'] }]
      return [{ status: 'fail', message: `${err.message} (${err.code})`, fix: err.suggestions }]
    }
    const nsState = await readNamespace(s.k)
    if (!nsState.present) return [{ status: 'fail', message: `namespace ${ctx.namespace} does not exist on ${s.k.server}`, fix: [`kubectl create namespace ${ctx.namespace}`, `then: seedops deploy -n ${ctx.namespace}`, 'Or pick another namespace with -n/--namespace'] }]
    return [{ status: 'ok', message: `${s.k.server} (context ${s.k.context}) answers; namespace ${ctx.namespace}${nsState.verifiable ? ' exists' : ' (existence not verifiable: no permission to get namespaces)'}` }]
  },
}
