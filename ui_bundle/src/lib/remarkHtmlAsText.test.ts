import { describe, expect, it } from 'vitest'
import type { Root } from 'mdast'
import remarkHtmlAsText from './remarkHtmlAsText'

function run(tree: Root): Root {
  const transform = (remarkHtmlAsText as unknown as () => (tree: Root) => void)()
  transform(tree)
  return tree
}

describe('remarkHtmlAsText', () => {
  it('turns block HTML into a paragraph of text and inline HTML into text', () => {
    const tree = run({
      type: 'root',
      children: [
        { type: 'html', value: '<script>alert(1)</script>' },
        {
          type: 'paragraph',
          children: [
            { type: 'text', value: 'a ' },
            { type: 'html', value: '<img src=x onerror=alert(1)>' },
          ],
        },
      ],
    })
    expect(tree.children).toEqual([
      { type: 'paragraph', children: [{ type: 'text', value: '<script>alert(1)</script>' }] },
      {
        type: 'paragraph',
        children: [
          { type: 'text', value: 'a ' },
          { type: 'text', value: '<img src=x onerror=alert(1)>' },
        ],
      },
    ])
  })
})
