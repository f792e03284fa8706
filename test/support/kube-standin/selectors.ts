/**
 * Label and field selectors with the apiserver's grammar:
 * `a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x)`, `a`, `!a` (labels); `path=v`, `path!=v` (fields).
 */
type Req = { key: string; op: 'eq' | 'neq' | 'in' | 'notin' | 'exists' | 'notexists'; values: string[] }

/** Splits on commas that are not inside parentheses. */
function splitTop(s: string): string[] {
  const out: string[] = []
  let depth = 0
  let cur = ''
  for (const ch of s) {
    if (ch === '(') depth++
    if (ch === ')') depth--
    if (ch === ',' && depth === 0) {
      out.push(cur)
      cur = ''
    } else cur += ch
  }
  if (cur.trim()) out.push(cur)
  return out.map((x) => x.trim()).filter(Boolean)
}

export class SelectorError extends Error {}

export function parseLabelSelector(s: string | null | undefined): Req[] {
  if (!s) return []
  return splitTop(s).map((part) => {
    let m = /^([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(part)
    if (m) return { key: m[1], op: m[2] as 'in' | 'notin', values: m[3].split(',').map((v) => v.trim()).filter(Boolean) }
    m = /^([\w./-]+)\s*(==|=|!=)\s*([\w.-]*)$/.exec(part)
    if (m) return { key: m[1], op: m[2] === '!=' ? 'neq' : 'eq', values: [m[3]] }
    m = /^!\s*([\w./-]+)$/.exec(part)
    if (m) return { key: m[1], op: 'notexists', values: [] }
    m = /^([\w./-]+)$/.exec(part)
    if (m) return { key: m[1], op: 'exists', values: [] }
    throw new SelectorError(`unable to parse requirement: ${part}`)
  })
}

export function matchLabels(reqs: Req[], labels: Record<string, string> | undefined): boolean {
  const l = labels ?? {}
  return reqs.every((r) => {
    const has = Object.prototype.hasOwnProperty.call(l, r.key)
    switch (r.op) {
      case 'eq': return has && l[r.key] === r.values[0]
      case 'neq': return !has || l[r.key] !== r.values[0]
      case 'in': return has && r.values.includes(l[r.key])
      case 'notin': return !has || !r.values.includes(l[r.key])
      case 'exists': return has
      case 'notexists': return !has
    }
  })
}

/** The label selector of a workload (`matchLabels` + `matchExpressions`) as a predicate. */
export function labelSelectorFromObject(sel: { matchLabels?: Record<string, string>; matchExpressions?: { key: string; operator: string; values?: string[] }[] } | undefined): Req[] {
  if (!sel) return []
  const reqs: Req[] = Object.entries(sel.matchLabels ?? {}).map(([key, v]) => ({ key, op: 'eq', values: [v] }))
  for (const e of sel.matchExpressions ?? []) {
    const op = ({ In: 'in', NotIn: 'notin', Exists: 'exists', DoesNotExist: 'notexists' } as const)[e.operator as 'In']
    reqs.push({ key: e.key, op, values: e.values ?? [] })
  }
  return reqs
}

export type FieldReq = { path: string; neq: boolean; value: string }

export function parseFieldSelector(s: string | null | undefined): FieldReq[] {
  if (!s) return []
  return splitTop(s).map((part) => {
    const m = /^([\w.]+)\s*(==|=|!=)\s*(.*)$/.exec(part)
    if (!m) throw new SelectorError(`invalid selector: '${part}'; can't understand '${part}'`)
    return { path: m[1], neq: m[2] === '!=', value: m[3] }
  })
}

function getPath(obj: unknown, path: string): string {
  let cur: any = obj
  for (const p of path.split('.')) cur = cur?.[p]
  return cur === undefined || cur === null ? '' : String(cur)
}

export function matchFields(reqs: FieldReq[], obj: unknown): boolean {
  return reqs.every((r) => (getPath(obj, r.path) === r.value) !== r.neq)
}
