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
