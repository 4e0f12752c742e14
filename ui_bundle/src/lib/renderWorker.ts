// The render worker: parses markdown and highlights code off the main thread, so a long block
// being streamed, or a long code block being highlighted, never holds up the page.
import { highlightBlocks } from './highlight'
import { parsePieces } from './markdownPipeline'
import type { RenderRequest, RenderResponse } from './renderProtocol'

const scope = self as unknown as {
  onmessage: ((event: MessageEvent<RenderRequest>) => void) | null
  postMessage: (message: RenderResponse) => void
}

// Dates are formatted on the page (the conversation list, the notes) with the browser's Intl, whose
// first use loads the locale's data: tens of milliseconds, paid once per browser process. Paid
// here, off the page's thread, as the worker starts (the page starts it as it loads).
new Date(0).toLocaleString(undefined, { dateStyle: 'short', timeStyle: 'short' })

scope.onmessage = ({ data }) => {
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
