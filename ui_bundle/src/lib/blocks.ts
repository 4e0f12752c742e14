const FENCE = /^\s*(`{3,}|~{3,})/

/**
 * Splits markdown into top-level blocks so a streamed answer re-parses only its last block.
 *
 * A block ends at a blank line followed by a line that starts at column 0, outside fenced code.
 * Indented lines after a blank line stay in the block (list continuations, nested lists).
 * Joining the blocks with "\n" gives the text back.
 */
export function splitBlocks(markdown: string): string[] {
  const lines = markdown.split('\n')
  const blocks: string[] = []
  let current: string[] = []
  let fence: { char: string; length: number } | null = null
  let previousBlank = false
  let hasContent = false

  for (const line of lines) {
    if (fence) {
      current.push(line)
      const close = FENCE.exec(line)
      if (close && close[1]?.[0] === fence.char && close[1].length >= fence.length && line.trim() === close[1]) {
        fence = null
      }
      previousBlank = false
      continue
    }
    const blank = line.trim() === ''
    if (!blank && previousBlank && hasContent && !/^\s/.test(line)) {
      blocks.push(current.join('\n'))
      current = []
      hasContent = false
    }
    current.push(line)
    if (!blank) hasContent = true
    const open = FENCE.exec(line)
    if (open?.[1]) fence = { char: open[1][0] ?? '`', length: open[1].length }
    previousBlank = blank
  }
  blocks.push(current.join('\n'))
  return blocks
}
