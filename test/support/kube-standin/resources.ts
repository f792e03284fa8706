/**
 * The API resources the stand-in serves, as the real apiserver lists them in discovery.
 * Only what seedops and the kubectl calls in the tests touch.
 */
export interface ResourceType {
  group: string
  version: string
  resource: string
  singular: string
  kind: string
  namespaced: boolean
  verbs: string[]
  shortNames?: string[]
  categories?: string[]
  subresources?: { name: string; verbs: string[]; kind: string }[]
}

const RW = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch']

export const RESOURCES: ResourceType[] = [
  { group: '', version: 'v1', resource: 'namespaces', singular: 'namespace', kind: 'Namespace', namespaced: false, verbs: ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'], shortNames: ['ns'] },
  { group: '', version: 'v1', resource: 'secrets', singular: 'secret', kind: 'Secret', namespaced: true, verbs: RW },
  { group: '', version: 'v1', resource: 'configmaps', singular: 'configmap', kind: 'ConfigMap', namespaced: true, verbs: RW, shortNames: ['cm'] },
  { group: '', version: 'v1', resource: 'serviceaccounts', singular: 'serviceaccount', kind: 'ServiceAccount', namespaced: true, verbs: RW, shortNames: ['sa'] },
  { group: '', version: 'v1', resource: 'services', singular: 'service', kind: 'Service', namespaced: true, verbs: RW, shortNames: ['svc'], categories: ['all'], subresources: [{ name: 'status', verbs: ['get', 'patch', 'update'], kind: 'Service' }] },
  { group: '', version: 'v1', resource: 'pods', singular: 'pod', kind: 'Pod', namespaced: true, verbs: RW, shortNames: ['po'], categories: ['all'], subresources: [{ name: 'log', verbs: ['get'], kind: 'Pod' }, { name: 'status', verbs: ['get', 'patch', 'update'], kind: 'Pod' }] },
  { group: '', version: 'v1', resource: 'events', singular: 'event', kind: 'Event', namespaced: true, verbs: RW, shortNames: ['ev'] },
  { group: 'apps', version: 'v1', resource: 'deployments', singular: 'deployment', kind: 'Deployment', namespaced: true, verbs: RW, shortNames: ['deploy'], categories: ['all'], subresources: [{ name: 'status', verbs: ['get', 'patch', 'update'], kind: 'Deployment' }] },
  { group: 'apps', version: 'v1', resource: 'replicasets', singular: 'replicaset', kind: 'ReplicaSet', namespaced: true, verbs: RW, shortNames: ['rs'], categories: ['all'], subresources: [{ name: 'status', verbs: ['get', 'patch', 'update'], kind: 'ReplicaSet' }] },
  { group: 'batch', version: 'v1', resource: 'cronjobs', singular: 'cronjob', kind: 'CronJob', namespaced: true, verbs: RW, shortNames: ['cj'], categories: ['all'], subresources: [{ name: 'status', verbs: ['get', 'patch', 'update'], kind: 'CronJob' }] },
  { group: 'batch', version: 'v1', resource: 'jobs', singular: 'job', kind: 'Job', namespaced: true, verbs: RW, categories: ['all'], subresources: [{ name: 'status', verbs: ['get', 'patch', 'update'], kind: 'Job' }] },
  { group: 'rbac.authorization.k8s.io', version: 'v1', resource: 'roles', singular: 'role', kind: 'Role', namespaced: true, verbs: RW },
  { group: 'rbac.authorization.k8s.io', version: 'v1', resource: 'rolebindings', singular: 'rolebinding', kind: 'RoleBinding', namespaced: true, verbs: RW },
  { group: 'rbac.authorization.k8s.io', version: 'v1', resource: 'clusterroles', singular: 'clusterrole', kind: 'ClusterRole', namespaced: false, verbs: RW },
  { group: 'rbac.authorization.k8s.io', version: 'v1', resource: 'clusterrolebindings', singular: 'clusterrolebinding', kind: 'ClusterRoleBinding', namespaced: false, verbs: RW },
  { group: 'networking.k8s.io', version: 'v1', resource: 'networkpolicies', singular: 'networkpolicy', kind: 'NetworkPolicy', namespaced: true, verbs: RW, shortNames: ['netpol'] },
  { group: 'authorization.k8s.io', version: 'v1', resource: 'selfsubjectaccessreviews', singular: 'selfsubjectaccessreview', kind: 'SelfSubjectAccessReview', namespaced: false, verbs: ['create'] },
]

export function groupVersion(r: { group: string; version: string }): string {
  return r.group ? `${r.group}/${r.version}` : r.version
}

export function findResource(group: string, version: string, resource: string): ResourceType | undefined {
  return RESOURCES.find((r) => r.group === group && r.version === version && r.resource === resource)
}

export function findByKind(apiVersion: string, kind: string): ResourceType | undefined {
  return RESOURCES.find((r) => groupVersion(r) === apiVersion && r.kind === kind)
}

/** `secrets` / `cronjobs.batch`: how the apiserver names a resource in messages. */
export function qualifiedName(r: ResourceType): string {
  return r.group ? `${r.resource}.${r.group}` : r.resource
}

export function discoveryResourceList(group: string, version: string) {
  const resources = []
  for (const r of RESOURCES.filter((x) => x.group === group && x.version === version)) {
    resources.push({
      name: r.resource,
      singularName: r.singular,
      namespaced: r.namespaced,
      kind: r.kind,
      verbs: r.verbs,
      ...(r.shortNames ? { shortNames: r.shortNames } : {}),
      ...(r.categories ? { categories: r.categories } : {}),
      storageVersionHash: Buffer.from(r.resource).toString('base64').slice(0, 11),
    })
    for (const s of r.subresources ?? []) {
      resources.push({ name: `${r.resource}/${s.name}`, singularName: '', namespaced: r.namespaced, kind: s.kind, verbs: s.verbs })
    }
  }
  return { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: groupVersion({ group, version }), resources }
}

export function discoveryGroups() {
  const groups = [...new Set(RESOURCES.filter((r) => r.group).map((r) => `${r.group}/${r.version}`))]
  return {
    kind: 'APIGroupList',
    apiVersion: 'v1',
    groups: groups.map((gv) => {
      const [name, version] = gv.split('/')
      return { name, versions: [{ groupVersion: gv, version }], preferredVersion: { groupVersion: gv, version } }
    }),
  }
}
