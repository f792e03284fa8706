/**
 * The RBAC authorizer, evaluated over the Roles/RoleBindings/ClusterRoles/ClusterRoleBindings
 * stored in the stand-in, as the real one does: a request is allowed when any rule of any
 * role bound to the user (or one of the user's groups) matches group, resource[/subresource],
 * verb and, when the rule lists them, the object's name. `system:masters` may do anything.
 */
export interface UserInfo {
  name: string
  groups: string[]
}

export interface Attributes {
  verb: string
  group: string
  resource: string
  subresource?: string
  namespace?: string
  name?: string
}

interface PolicyRule {
  apiGroups?: string[]
  resources?: string[]
  verbs: string[]
  resourceNames?: string[]
  nonResourceURLs?: string[]
}

interface Subject {
  kind: string
  name: string
  namespace?: string
}

export interface RbacSource {
  list(resource: 'roles' | 'rolebindings' | 'clusterroles' | 'clusterrolebindings', namespace?: string): any[]
  get(resource: 'roles' | 'clusterroles', namespace: string | undefined, name: string): any | undefined
}

function subjectMatches(s: Subject, user: UserInfo, bindingNs?: string): boolean {
  if (s.kind === 'User') return s.name === user.name
  if (s.kind === 'Group') return user.groups.includes(s.name)
  if (s.kind === 'ServiceAccount') return user.name === `system:serviceaccount:${s.namespace ?? bindingNs}:${s.name}`
  return false
}

export function ruleAllows(rule: PolicyRule, a: Attributes): boolean {
  const res = a.subresource ? `${a.resource}/${a.subresource}` : a.resource
  const groupOk = (rule.apiGroups ?? []).some((g) => g === '*' || g === a.group)
  const resOk = (rule.resources ?? []).some((r) => r === '*' || r === res || (a.subresource && r === `*/${a.subresource}`))
  const verbOk = rule.verbs.some((v) => v === '*' || v === a.verb)
  const nameOk = !rule.resourceNames?.length || (a.name !== undefined && a.name !== '' && rule.resourceNames.includes(a.name))
  return groupOk && resOk && verbOk && nameOk
}

export function authorize(src: RbacSource, user: UserInfo, a: Attributes): boolean {
  if (user.groups.includes('system:masters')) return true
  const rulesOf = (ref: { kind: string; name: string }, ns?: string): PolicyRule[] =>
    (ref.kind === 'ClusterRole' ? src.get('clusterroles', undefined, ref.name) : src.get('roles', ns, ref.name))?.rules ?? []
  for (const b of src.list('clusterrolebindings')) {
    if ((b.subjects ?? []).some((s: Subject) => subjectMatches(s, user))) {
      if (rulesOf(b.roleRef).some((r) => ruleAllows(r, a))) return true
    }
  }
  if (a.namespace) {
    for (const b of src.list('rolebindings', a.namespace)) {
      if ((b.subjects ?? []).some((s: Subject) => subjectMatches(s, user, a.namespace))) {
        if (rulesOf(b.roleRef, a.namespace).some((r) => ruleAllows(r, a))) return true
      }
    }
  }
  return false
}

/** The apiserver's wording of a denial. */
export function forbiddenMessage(user: UserInfo, a: Attributes, qualified: string): string {
  const res = a.subresource ? `${a.resource}/${a.subresource}` : a.resource
  const subject = a.name ? `${qualified} "${a.name}"` : qualified
  const where = a.namespace ? ` in the namespace "${a.namespace}"` : ' at the cluster scope'
  return `${subject} is forbidden: User "${user.name}" cannot ${a.verb} resource "${res}" in API group "${a.group}"${where}`
}

/** `%q` of a Go []string: `["a" "b"]`. */
function goQuoted(xs: string[]): string {
  return `[${xs.map((x) => JSON.stringify(x)).join(' ')}]`
}

/** `CompactString` (pkg/apis/rbac/v1/helpers.go). */
function compactString(r: PolicyRule): string {
  const parts: string[] = []
  if (r.apiGroups?.length) parts.push(`APIGroups:${goQuoted(r.apiGroups)}`)
  if (r.resources?.length) parts.push(`Resources:${goQuoted(r.resources)}`)
  if (r.nonResourceURLs?.length) parts.push(`NonResourceURLs:${goQuoted(r.nonResourceURLs)}`)
  if (r.resourceNames?.length) parts.push(`ResourceNames:${goQuoted(r.resourceNames)}`)
  if (r.verbs?.length) parts.push(`Verbs:${goQuoted(r.verbs)}`)
  return `{${parts.join(', ')}}`
}

/**
 * `ConfirmNoEscalation` (pkg/registry/rbac/validation/rule.go): every rule being granted, broken down
 * to one group, resource, verb and name, must be allowed to the requesting user in `namespace`;
 * the missing ones are compacted (verbs of one group/resource merged) and listed sorted.
 */
export function missingRights(src: RbacSource, user: UserInfo, rules: PolicyRule[], namespace?: string): string | undefined {
  if (user.groups.includes('system:masters')) return undefined
  const missing: PolicyRule[] = []
  for (const r of rules) {
    if (r.nonResourceURLs?.length) {
      // Non-resource URLs are only granted cluster-wide, which no stand-in user holds but system:masters.
      for (const u of r.nonResourceURLs) for (const v of r.verbs) missing.push({ nonResourceURLs: [u], verbs: [v] })
      continue
    }
    for (const g of r.apiGroups ?? []) {
      for (const res of r.resources ?? []) {
        const [resource, subresource] = res.split('/')
        for (const v of r.verbs) {
          const names = r.resourceNames?.length ? r.resourceNames : [undefined]
          for (const name of names) {
            if (!authorize(src, user, { verb: v, group: g, resource, subresource, namespace, name })) missing.push({ apiGroups: [g], resources: [res], verbs: [v], ...(name ? { resourceNames: [name] } : {}) })
          }
        }
      }
    }
  }
  if (!missing.length) return undefined
  // CompactRules: simple rules (one group, one resource, no names) differing only by verb are merged.
  const compact: PolicyRule[] = []
  for (const m of missing) {
    const same = !m.resourceNames && !m.nonResourceURLs && compact.find((c) => !c.resourceNames && !c.nonResourceURLs && c.apiGroups?.[0] === m.apiGroups?.[0] && c.resources?.[0] === m.resources?.[0])
    if (same) {
      if (!same.verbs.includes(m.verbs[0])) same.verbs.push(m.verbs[0])
    } else compact.push({ ...m, verbs: [...m.verbs] })
  }
  const lines = [...new Set(compact.map(compactString))].sort()
  return `user ${JSON.stringify(user.name)} (groups=${goQuoted(user.groups)}) is attempting to grant RBAC permissions not currently held:\n${lines.join('\n')}`
}

/**
 * The RBAC registry's escalation check for a Role/ClusterRole/RoleBinding/ClusterRoleBinding write:
 * allowed with `escalate` (roles) or `bind` on the referenced role (bindings), or when the user
 * already holds every permission granted. Returns the denial message, or nothing.
 */
export function escalationDenied(src: RbacSource, user: UserInfo, kind: string, obj: any, namespace?: string): string | undefined {
  const group = 'rbac.authorization.k8s.io'
  if (kind === 'Role' || kind === 'ClusterRole') {
    const resource = kind === 'Role' ? 'roles' : 'clusterroles'
    if (authorize(src, user, { verb: 'escalate', group, resource, namespace, name: obj.metadata?.name })) return undefined
    return missingRights(src, user, obj.rules ?? [], namespace)
  }
  if (kind === 'RoleBinding' || kind === 'ClusterRoleBinding') {
    const ref = obj.roleRef ?? {}
    const resource = ref.kind === 'ClusterRole' ? 'clusterroles' : 'roles'
    if (authorize(src, user, { verb: 'bind', group, resource, namespace, name: ref.name })) return undefined
    const role = ref.kind === 'ClusterRole' ? src.get('clusterroles', undefined, ref.name) : src.get('roles', namespace, ref.name)
    if (!role) return `${resource}.${group} ${JSON.stringify(ref.name)} not found`
    return missingRights(src, user, role.rules ?? [], namespace)
  }
  return undefined
}
