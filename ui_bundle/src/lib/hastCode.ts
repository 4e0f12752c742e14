// The code of a parsed code block: small, so the page reads it without loading the parser.
import type { Element, ElementContent } from 'hast'

/** The text of hast nodes, without their markup. */
export function textOf(nodes: ElementContent[]): string {
  return nodes.map((n) => (n.type === 'text' ? n.value : n.type === 'element' ? textOf(n.children) : '')).join('')
}

function languageOf(code: Element): string | undefined {
  const className: unknown = code.properties.className
  const classes: unknown[] = Array.isArray(className) ? className : typeof className === 'string' ? className.split(' ') : []
  for (const c of classes) {
    if (typeof c === 'string' && c.startsWith('language-')) return c.slice('language-'.length)
  }
  return undefined
}

/** The code (less its final line ending) and language of a `pre` element; null without a `code` in it. */
export function codeOf(pre: Element): { code: string; language: string | undefined } | null {
  const code = pre.children.find((c): c is Element => c.type === 'element' && c.tagName === 'code')
  if (!code) return null
  return { code: textOf(code.children).replace(/\n$/, ''), language: languageOf(code) }
}
