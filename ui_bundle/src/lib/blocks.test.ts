import { describe, expect, it } from 'vitest'
import type { Element } from 'hast'
import { endsInOpenFence, fencedCode, splitBlocks } from './blocks'
import { codeOf, parseMarkdown } from './markdownPipeline'

describe('splitBlocks', () => {
  it('splits paragraphs at blank lines and gives the text back when joined', () => {
    const text = '# Title\n\nFirst paragraph\nstill first.\n\nSecond.'
    const blocks = splitBlocks(text)
    expect(blocks).toEqual(['# Title\n', 'First paragraph\nstill first.\n', 'Second.'])
    expect(blocks.join('\n')).toBe(text)
  })

  it('keeps a fenced code block with blank lines in one block', () => {
    const text = 'Intro\n\n```python\ndef f():\n\nreturn 1\n```\n\nAfter'
    const blocks = splitBlocks(text)
    expect(blocks).toEqual(['Intro\n', '```python\ndef f():\n\nreturn 1\n```\n', 'After'])
  })

  it('keeps an unclosed fence (still streaming) in the last block', () => {
    const blocks = splitBlocks('Intro\n\n```js\nconst a = 1\n\nconst b')
    expect(blocks).toHaveLength(2)
    expect(blocks[1]).toBe('```js\nconst a = 1\n\nconst b')
  })

  it('does not end a fence on a shorter or different fence', () => {
    const blocks = splitBlocks('````md\n```\n\ninner\n````\n\nnext')
    expect(blocks).toEqual(['````md\n```\n\ninner\n````\n', 'next'])
  })

  it('keeps indented continuations of a list item in its block', () => {
    const blocks = splitBlocks('- one\n\n  more of one\n- two\n\nAfter')
    expect(blocks).toEqual(['- one\n\n  more of one\n- two\n', 'After'])
  })

  it('gives one block for text without blank lines', () => {
    expect(splitBlocks('a\nb')).toEqual(['a\nb'])
    expect(splitBlocks('')).toEqual([''])
  })
})

/** What remark makes of a block: the code and language of its one code block, else null. */
function remarkCode(block: string): { code: string; language: string | undefined } | null {
  const tree = parseMarkdown(block)
  const elements = tree.children.filter((n): n is Element => n.type === 'element')
  const pre = elements[0]
  if (elements.length !== 1 || pre?.tagName !== 'pre') return null
  return codeOf(pre)
}

describe('fencedCode', () => {
  const blocks = [
    '```python\ndef f():\n    return 1\n```\n',
    '```python\ndef f():\n\n    return 1\n```',
    '~~~\nplain\n~~~~\n\n',
    '```js title="x.js"\nlet a = 1\n```',
    '  ```py\n   a\n b\n  ```',
    '````md\n```\ninner\n```\n````',
    // not closed: still streaming
    '```py\na\n',
    '```py\na\n\n',
    '```py\na',
    '```py\n',
    '```py',
    '```\n\n\nx\n',
  ]

  it.each(blocks)('reads %j as remark does', (block) => {
    const fenced = fencedCode(block)
    expect(fenced).not.toBeNull()
    expect({ code: fenced!.code, language: fenced!.language }).toEqual(remarkCode(block))
  })

  it('tells a closed fence from one still being written', () => {
    expect(fencedCode('```py\na\n```\n')?.closed).toBe(true)
    expect(fencedCode('```py\na\n``')?.closed).toBe(false)
    expect(fencedCode('````\na\n```\n')?.closed).toBe(false) // a shorter fence does not close
    expect(fencedCode('```\na\n~~~\n')?.closed).toBe(false) // nor does another character
  })

  it('leaves anything else to the parser', () => {
    for (const block of [
      'Intro\n```py\na\n```', // text before the fence
      '```py\na\n```\nAfter', // text after it
      '    ```py\n    a', // indented code, not a fence
      '```a`b\ncode', // a backtick in a backtick fence's info string: inline code
      '```py\\_x\ncode\n```', // an escape in the info string
      'Just text',
    ]) {
      expect(fencedCode(block), block).toBeNull()
    }
  })
})

describe('endsInOpenFence', () => {
  it('is true while a fence waits for its end', () => {
    expect(endsInOpenFence('Intro\n\n```js\nconst a')).toBe(true)
    expect(endsInOpenFence('Intro\n```js\nconst a\n```\n')).toBe(false)
    expect(endsInOpenFence('No code')).toBe(false)
  })
})
