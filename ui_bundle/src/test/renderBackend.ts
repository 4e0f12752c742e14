import { vi } from 'vitest'
import type { RenderBackend } from '../lib/renderClient'
import type { Piece } from '../lib/markdownPipeline'
import { highlightBlocks } from '../lib/highlight'
import type { HighlightedBlocks } from '../lib/codeLines'

// The real parser even where a test counts calls to a mocked one: this is the worker's thread.
const { parsePieces } = await vi.importActual<typeof import('../lib/markdownPipeline')>('../lib/markdownPipeline')

interface Waiting<T> {
  input: string
  resolve: (value: T) => void
}

/**
 * A render worker the test answers by hand: requests wait until `answerParse()` /
 * `answerHighlight()`, which do the real work (on the test's thread).
 */
export function manualBackend() {
  const parses: Waiting<Piece[]>[] = []
  const highlights: (Waiting<HighlightedBlocks | null> & { language: string | undefined })[] = []
  const backend: RenderBackend = {
    parse: (text) => new Promise((resolve) => parses.push({ input: text, resolve })),
    highlight: (code, language) => new Promise((resolve) => highlights.push({ input: code, language, resolve })),
  }
  return {
    backend,
    /** Texts asked to be parsed and not answered yet. */
    get parses() {
      return parses.map((p) => p.input)
    },
    get highlights() {
      return highlights.map((h) => h.input)
    },
    /** Answers the oldest parse request. */
    answerParse() {
      const next = parses.shift()
      if (!next) throw new Error('no parse request waiting')
      next.resolve(parsePieces(next.input))
    },
    answerHighlight() {
      const next = highlights.shift()
      if (!next) throw new Error('no highlight request waiting')
      next.resolve(highlightBlocks(next.input, next.language))
    },
  }
}
