import { describe, expect, it } from 'vitest'
import type { ElementContent } from 'hast'
import { LINES_PER_BLOCK, packBlocks, splitLines } from './codeLines'
import { highlightLines } from './highlight'
import { textOf } from './markdownPipeline'

const span = (className: string, ...children: ElementContent[]): ElementContent => ({
  type: 'element',
  tagName: 'span',
  properties: { className: [className] },
  children,
})

describe('splitLines', () => {
  it('cuts a token that spans lines, repeating its span on each line', () => {
    const lines = splitLines([
      span('hljs-keyword', { type: 'text', value: 'def' }),
      { type: 'text', value: ' f():\n    ' },
      span('hljs-string', { type: 'text', value: '"""one\ntwo"""' }),
      { type: 'text', value: '\n' },
    ])
    expect(lines.map(textOf)).toEqual(['def f():', '    """one', 'two"""', ''])
    expect(lines[1]?.[1]).toMatchObject({ tagName: 'span', properties: { className: ['hljs-string'] } })
    expect(lines[2]?.[0]).toMatchObject({ tagName: 'span', properties: { className: ['hljs-string'] } })
  })

  it('gives the lines of real highlighted code, nested spans included', () => {
    const code = 'class A:\n    """Doc\n    more"""\n    def f(self, x=1):\n        return x  # done'
    const lines = highlightLines(code, 'python')
    expect(lines).not.toBeNull()
    expect(lines!.map(textOf)).toEqual(code.split('\n'))
  })

  it('is null for a language it does not know', () => {
    expect(highlightLines('x', 'no-such-language')).toBeNull()
  })
})

describe('packBlocks', () => {
  it('packs lines in blocks of LINES_PER_BLOCK, as JSON', () => {
    const lines: ElementContent[][] = Array.from({ length: LINES_PER_BLOCK * 2 + 1 }, (_, i) => [{ type: 'text', value: `l${i}` }])
    const blocks = packBlocks(lines)
    expect(blocks).toHaveLength(3)
    expect((JSON.parse(blocks[2]!) as ElementContent[][]).map(textOf)).toEqual([`l${LINES_PER_BLOCK * 2}`])
    expect(blocks.flatMap((b) => (JSON.parse(b) as ElementContent[][]).map(textOf))).toEqual(lines.map(textOf))
  })
})
