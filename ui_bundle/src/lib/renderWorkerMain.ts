// The render worker's work: parses markdown and highlights code off the main thread, so a long
// block being streamed, or a long code block being highlighted, never holds up the page. (Loaded
// by renderWorker.ts, the worker's entry.)
import { highlightBlocks } from './highlight'
import { parsePieces } from './markdownPipeline'
import type { RenderRequest, RenderResponse } from './renderProtocol'

const scope = self as unknown as { postMessage: (message: RenderResponse) => void }

/** Answers one request of the page. */
export function answer({ data }: MessageEvent<RenderRequest>): void {
  let response: RenderResponse
  try {
    response =
      data.kind === 'parse'
        ? { id: data.id, ok: true, kind: 'parse', pieces: parsePieces(data.text) }
        : { id: data.id, ok: true, kind: 'highlight', blocks: highlightBlocks(data.code, data.language) }
  } catch (error) {
    response = { id: data.id, ok: false, error: error instanceof Error ? error.message : String(error) }
  }
  scope.postMessage(response)
}
