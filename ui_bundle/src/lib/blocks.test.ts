import { describe, expect, it } from 'vitest'
import { splitBlocks } from './blocks'

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
