import type { HighlightedBlocks } from './codeLines'
import type { Piece } from './markdownPipeline'

/** What the page asks the render worker. */
export type RenderRequest =
  | { id: number; kind: 'parse'; text: string }
  | { id: number; kind: 'highlight'; code: string; language: string | undefined }

/** The worker's answer to the request with the same id. */
export type RenderResponse =
  | { id: number; ok: true; kind: 'parse'; pieces: Piece[] }
  | { id: number; ok: true; kind: 'highlight'; blocks: HighlightedBlocks | null }
  | { id: number; ok: false; error: string }
