import type { Element, ElementContent } from 'hast'

/**
 * Code is put on the page in blocks of this many lines, each its own block box, so the browser
 * lays out and restyles only the block that changed (the one growing while code streams, the one
 * turning highlighted), and highlighted code is put on the page a block per step.
 */
export const LINES_PER_BLOCK = 60

/**
 * Highlighted code, a JSON string of hast lines per block of LINES_PER_BLOCK lines: cheap to post
 * from the worker (strings, not thousands of objects to clone), and each block is parsed only
 * when it is put on the page.
 */
export type HighlightedBlocks = string[]

/** Lines in blocks of LINES_PER_BLOCK (the last one may be shorter). */
export function inBlocks<T>(lines: readonly T[]): T[][] {
  const blocks: T[][] = []
  for (let start = 0; start < lines.length; start += LINES_PER_BLOCK) {
    blocks.push(lines.slice(start, start + LINES_PER_BLOCK))
  }
  return blocks
}

export function packBlocks(lines: ElementContent[][]): HighlightedBlocks {
  return inBlocks(lines).map((block) => JSON.stringify(block))
}

/**
 * Splits highlighted code (a list of hast nodes) into lines, so a long block can be put on the
 * page a few lines at a time. A token that spans lines (a docstring) is cut at each line break
 * and its span repeated on every line, with the same classes. Line `i` holds exactly the text of
 * `code.split('\n')[i]`.
 */
export function splitLines(nodes: readonly ElementContent[]): ElementContent[][] {
  const lines: ElementContent[][] = []
  let line: ElementContent[] = []
  /** The elements being walked, each with its copy in the current line (made when needed). */
  const open: { source: Element; copy: Element | null }[] = []

  const container = (): ElementContent[] => {
    let children = line
    for (const frame of open) {
      if (!frame.copy) {
        frame.copy = { type: 'element', tagName: frame.source.tagName, properties: { ...frame.source.properties }, children: [] }
        children.push(frame.copy)
      }
      children = frame.copy.children
    }
    return children
  }

  const walk = (node: ElementContent): void => {
    if (node.type === 'text') {
      const parts = node.value.split('\n')
      parts.forEach((part, index) => {
        if (index > 0) {
          lines.push(line)
          line = []
          for (const frame of open) frame.copy = null
        }
        if (part) container().push({ type: 'text', value: part })
      })
    } else if (node.type === 'element') {
      open.push({ source: node, copy: null })
      for (const child of node.children) walk(child)
      open.pop()
    }
  }

  for (const node of nodes) walk(node)
  lines.push(line)
  return lines
}
