const FENCE = /^\s*(`{3,}|~{3,})/

interface Scan {
  blocks: string[]
  /** Whether the text ends inside a fenced code block (its closing fence has not arrived). */
  openFence: boolean
}

function scan(markdown: string): Scan {
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
  return { blocks, openFence: fence !== null }
}

/**
 * Splits markdown into top-level blocks so a streamed answer re-parses only its last block.
 *
 * A block ends at a blank line followed by a line that starts at column 0, outside fenced code.
 * Indented lines after a blank line stay in the block (list continuations, nested lists).
 * Joining the blocks with "\n" gives the text back.
 */
export function splitBlocks(markdown: string): string[] {
  return scan(markdown).blocks
}

/** Whether markdown ends inside a fenced code block: that code is still being written. */
export function endsInOpenFence(markdown: string): boolean {
  return scan(markdown).openFence
}

/** A block that is one fenced code block and nothing else. */
export interface FencedCode {
  code: string
  /** The first word of the info string. */
  language: string | undefined
  /** False while the closing fence has not arrived (the block is still being streamed). */
  closed: boolean
}

const OPENING = /^( {0,3})(`{3,}|~{3,})(.*)$/
const CLOSING = /^ {0,3}(`{3,}|~{3,})[ \t]*$/

/**
 * The code of a block made of one fenced code block (closed or not, blank lines after it
 * allowed), read without the markdown parser: a code block being streamed is shown as plain
 * text at the cost of a split, and a finished one goes to the highlighter directly. Null for any
 * other block, and for the rare fences whose info string needs the parser (escapes, entities).
 * Gives what remark gives: the lines between the fences, less the opening fence's indentation.
 */
export function fencedCode(block: string): FencedCode | null {
  const lines = block.split('\n')
  const open = OPENING.exec(lines[0] ?? '')
  if (!open) return null
  const indent = open[1]?.length ?? 0
  const fence = open[2] ?? '```'
  const info = (open[3] ?? '').trim()
  if ((fence[0] === '`' && info.includes('`')) || /[\\&]/.test(info)) return null
  let end = lines.length
  let closed = false
  for (let i = 1; i < lines.length; i++) {
    const close = CLOSING.exec(lines[i] ?? '')
    if (close?.[1] && close[1][0] === fence[0] && close[1].length >= fence.length) {
      end = i
      closed = true
      break
    }
  }
  let body = lines.slice(1, end)
  if (closed) {
    if (lines.slice(end + 1).some((line) => line.trim() !== '')) return null
  } else if (body.length && body[body.length - 1] === '') {
    body = body.slice(0, -1) // the line ending before the end of the text is not code
  }
  const strip = new RegExp(`^ {0,${indent}}`)
  const code = (indent ? body.map((line) => line.replace(strip, '')) : body).join('\n')
  return { code, language: info.split(/\s+/)[0] || undefined, closed }
}
