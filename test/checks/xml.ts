/**
 * A small strict XML reader for the JUnit files the checks write: the prolog, elements with
 * double-quoted attributes, text and the five predefined entities. Anything else (an unclosed or
 * mismatched tag, a bare `<` or `&`, a control character, text outside the root) throws.
 */
export interface XmlElement {
  name: string
  attrs: Record<string, string>
  children: XmlElement[]
  text: string
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" }

function decode(s: string, at: number): string {
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u0008\u000B\u000C\u000E-\u001F]/.test(s)) throw new Error(`control character in text near ${at}`)
  return s.replace(/&([^;&\s]*);|&/g, (m, name: string | undefined) => {
    if (name === undefined || !(name in ENTITIES)) throw new Error(`bad entity ${JSON.stringify(m)} near ${at}`)
    return ENTITIES[name]!
  })
}

export function parseXml(xml: string): XmlElement {
  let i = 0
  const prolog = /^<\?xml version="1\.0" encoding="UTF-8"\?>\n/.exec(xml)
  if (!prolog) throw new Error('missing <?xml version="1.0" encoding="UTF-8"?> prolog')
  i = prolog[0].length
  const stack: XmlElement[] = []
  let root: XmlElement | undefined
  const open = /<([A-Za-z_][\w.-]*)((?:\s+[A-Za-z_][\w.-]*="[^"<]*")*)\s*(\/?)>/y
  const close = /<\/([A-Za-z_][\w.-]*)\s*>/y
  while (i < xml.length) {
    const lt = xml.indexOf('<', i)
    const text = xml.slice(i, lt === -1 ? xml.length : lt)
    if (stack.length) stack.at(-1)!.text += decode(text, i)
    else if (text.trim()) throw new Error(`text outside the root near ${i}`)
    if (lt === -1) break
    close.lastIndex = lt
    const c = close.exec(xml)
    if (c) {
      const top = stack.pop()
      if (!top || top.name !== c[1]) throw new Error(`</${c[1]}> does not close <${top?.name}> at ${lt}`)
      i = close.lastIndex
      continue
    }
    open.lastIndex = lt
    const o = open.exec(xml)
    if (!o) throw new Error(`malformed tag at ${lt}: ${JSON.stringify(xml.slice(lt, lt + 60))}`)
    const attrs: Record<string, string> = {}
    for (const a of o[2]!.matchAll(/([A-Za-z_][\w.-]*)="([^"]*)"/g)) {
      if (a[1]! in attrs) throw new Error(`duplicate attribute ${a[1]} at ${lt}`)
      attrs[a[1]!] = decode(a[2]!, lt)
    }
    const el: XmlElement = { name: o[1]!, attrs, children: [], text: '' }
    if (stack.length) stack.at(-1)!.children.push(el)
    else if (root) throw new Error(`second root element <${el.name}> at ${lt}`)
    else root = el
    if (!o[3]) stack.push(el)
    i = open.lastIndex
  }
  if (stack.length) throw new Error(`unclosed <${stack.map((s) => s.name).join('> <')}>`)
  if (!root) throw new Error('no root element')
  return root
}
