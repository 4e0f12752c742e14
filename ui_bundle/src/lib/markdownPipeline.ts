// Markdown to a hast tree, the same way on the main thread and in the render worker.
//
// GitHub-flavoured markdown; raw HTML becomes text (remarkHtmlAsText, and remark-rehype drops
// any raw node left); link and image URLs go through react-markdown's defaultUrlTransform, so a
// `javascript:` URL is emptied. The tree has no positions: it is smaller to post from the worker.
import { unified } from 'unified'
import remarkParse from 'remark-parse'
import remarkGfm from 'remark-gfm'
import remarkRehype from 'remark-rehype'
import { defaultUrlTransform } from 'react-markdown'
import { urlAttributes } from 'html-url-attributes'
import type { Element, Nodes, Root, RootContent } from 'hast'
import remarkHtmlAsText from './remarkHtmlAsText'

export { codeOf, textOf } from './hastCode'

const processor = unified().use(remarkParse).use(remarkGfm).use(remarkHtmlAsText).use(remarkRehype).freeze()

function clean(node: Nodes): void {
  delete node.position
  if (node.type === 'element') {
    for (const [name, tags] of Object.entries(urlAttributes)) {
      if (Object.hasOwn(node.properties, name) && (tags === null || tags.includes(node.tagName))) {
        node.properties[name] = defaultUrlTransform(String(node.properties[name] ?? ''))
      }
    }
  }
  if ('children' in node) {
    // A raw node cannot come out of this pipeline; were one to, it would become text.
    node.children = node.children.map((child) =>
      child.type === 'raw' ? { type: 'text', value: child.value } : child,
    ) as typeof node.children
    for (const child of node.children) clean(child)
  }
}

/** Parses one block of markdown into a safe hast tree. */
export function parseMarkdown(markdown: string): Root {
  const tree = processor.runSync(processor.parse(markdown)) as Root
  clean(tree)
  return tree
}

/**
 * A parsed block as pieces: each top-level node as a JSON string, and a list as its element
 * (without children) and each of its children. Strings are cheap to post from the worker, and
 * the page renders again only the pieces whose string changed: when a list of 400 items grows,
 * only its last item is rendered again.
 */
export type Piece = { kind: 'node'; json: string } | { kind: 'list'; shell: string; items: string[] }

function isList(node: RootContent): node is Element {
  return node.type === 'element' && (node.tagName === 'ul' || node.tagName === 'ol')
}

function toPieces(tree: Root): Piece[] {
  return tree.children.map((node) =>
    isList(node)
      ? {
          kind: 'list',
          shell: JSON.stringify({ ...node, children: [] }),
          items: node.children.map((child) => JSON.stringify(child)),
        }
      : { kind: 'node', json: JSON.stringify(node) },
  )
}

/** parseMarkdown, as pieces. */
export function parsePieces(markdown: string): Piece[] {
  return toPieces(parseMarkdown(markdown))
}
