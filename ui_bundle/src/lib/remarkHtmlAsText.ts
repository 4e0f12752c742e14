// Model output must never become live HTML: there is no rehype-raw here, and react-markdown
// already turns raw HTML into text. This plugin makes that explicit at the markdown level, so it
// does not hang on a renderer default, and puts block-level HTML in a paragraph like other text.
import type { Plugin } from 'unified'
import type { Root, Nodes, Parent, Paragraph, Text } from 'mdast'

const FLOW_PARENTS = new Set(['root', 'blockquote', 'listItem', 'footnoteDefinition'])

function convert(parent: Parent): void {
  parent.children = parent.children.map((child) => {
    const node = child as Nodes
    if (node.type === 'html') {
      const text: Text = { type: 'text', value: node.value }
      if (FLOW_PARENTS.has(parent.type)) {
        const paragraph: Paragraph = { type: 'paragraph', children: [text] }
        return paragraph
      }
      return text
    }
    if ('children' in node) convert(node as Parent)
    return child
  }) as Parent['children']
}

const remarkHtmlAsText: Plugin<[], Root> = () => (tree) => {
  convert(tree)
}

export default remarkHtmlAsText
