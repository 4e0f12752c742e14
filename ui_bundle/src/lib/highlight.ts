// lowlight with its common grammars: run in the render worker, or (no worker) loaded on demand
// on the main thread, so the grammars stay out of the initial bundle either way.
import { common, createLowlight } from 'lowlight'
import type { ElementContent } from 'hast'
import { packBlocks, splitLines, type HighlightedBlocks } from './codeLines'

const lowlight = createLowlight(common)

/** Longest code that is auto-detected when the block names no language. */
const AUTO_LIMIT = 20_000

/** Highlights code into hast lines (see splitLines); null when the language is unknown. */
export function highlightLines(code: string, language: string | undefined): ElementContent[][] | null {
  let tree
  if (language && lowlight.registered(language)) tree = lowlight.highlight(language, code)
  else if (!language && code.length <= AUTO_LIMIT) tree = lowlight.highlightAuto(code)
  else return null
  return splitLines(tree.children as ElementContent[])
}

/** highlightLines, packed in blocks for the page (see HighlightedBlocks). */
export function highlightBlocks(code: string, language: string | undefined): HighlightedBlocks | null {
  const lines = highlightLines(code, language)
  return lines && packBlocks(lines)
}
