/**
 * A tiny well-formedness check for the SVG/HTML fragments we write: every tag closes in order,
 * attributes are quoted, no stray `<`, `&` only as an entity. Enough for hand-written markup.
 */
export function checkWellFormed(xml: string): string | null {
  const stack: string[] = []
  const tag = /<(\/?)([a-zA-Z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>/y
  let i = 0
  while (i < xml.length) {
    const lt = xml.indexOf('<', i)
    const text = xml.slice(i, lt === -1 ? xml.length : lt)
    if (/&(?!(amp|lt|gt|quot|#39|#\d+);)/.test(text)) return `bad entity in text ${JSON.stringify(text.slice(0, 40))}`
    if (lt === -1) break
    tag.lastIndex = lt
    const m = tag.exec(xml)
    if (!m) return `malformed tag at ${lt}: ${JSON.stringify(xml.slice(lt, lt + 60))}`
    const [, close, name, , selfClose] = m
    if (close) {
      if (stack.pop() !== name) return `unbalanced </${name}> at ${lt}`
    } else if (!selfClose) stack.push(name!)
    i = tag.lastIndex
  }
  return stack.length ? `unclosed <${stack.join('> <')}>` : null
}

export function svgsOf(html: string): string[] {
  return [...html.matchAll(/<svg[\s\S]*?<\/svg>/g)].map((m) => m[0])
}
