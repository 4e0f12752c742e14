// Where markdown is parsed and code highlighted: in a Web Worker when the browser has one, else
// on the main thread. Callers get promises either way; a worker that fails is dropped and the
// work is done on the main thread from then on.
import type { HighlightedBlocks } from './codeLines'
import { parseHere } from './markdownHere'
import type { Piece } from './markdownPipeline'
import type { RenderRequest, RenderResponse } from './renderProtocol'

export interface RenderBackend {
  parse(text: string): Promise<Piece[]>
  highlight(code: string, language: string | undefined): Promise<HighlightedBlocks | null>
}

type Pending = { resolve: (value: RenderResponse) => void; reject: (error: Error) => void }

function workerBackend(): RenderBackend | null {
  if (typeof Worker === 'undefined') return null
  let worker: Worker
  try {
    worker = new Worker(new URL('./renderWorker.ts', import.meta.url), { type: 'module', name: 'render' })
  } catch {
    return null
  }
  const pending = new Map<number, Pending>()
  let next = 0
  const fail = (reason: string) => {
    if (current === self) current = null
    worker.terminate()
    for (const { reject } of pending.values()) reject(new Error(reason))
    pending.clear()
  }
  worker.onmessage = ({ data }: MessageEvent<RenderResponse>) => {
    const waiting = pending.get(data.id)
    pending.delete(data.id)
    if (!waiting) return
    if (data.ok) waiting.resolve(data)
    else waiting.reject(new Error(data.error))
  }
  worker.onerror = (event) => {
    event.preventDefault()
    console.warn('The render worker failed; markdown is rendered on the main thread.', event.message)
    fail(event.message || 'The render worker failed.')
  }
  worker.onmessageerror = () => fail('A message from the render worker could not be read.')

  const ask = (request: RenderRequest) =>
    new Promise<RenderResponse>((resolve, reject) => {
      pending.set(request.id, { resolve, reject })
      worker.postMessage(request)
    })

  const self: RenderBackend = {
    async parse(text) {
      const response = await ask({ id: next++, kind: 'parse', text })
      if (response.ok && response.kind === 'parse') return response.pieces
      throw new Error('Unexpected answer from the render worker.')
    },
    async highlight(code, language) {
      const response = await ask({ id: next++, kind: 'highlight', code, language })
      if (response.ok && response.kind === 'highlight') return response.blocks
      throw new Error('Unexpected answer from the render worker.')
    },
  }
  return self
}

/** undefined: not made yet (the worker starts on first use). */
let current: RenderBackend | null | undefined

function backend(): RenderBackend | null {
  if (current === undefined) current = workerBackend()
  return current
}

/** Whether work can go off the main thread (starts the worker). */
export function hasRenderWorker(): boolean {
  return backend() !== null
}

/** Replaces the backend (tests); null means the main thread, undefined the default. */
export function setRenderBackend(value: RenderBackend | null | undefined): void {
  current = value
}

/** Parses markdown, off the main thread when possible. */
export function parseAsync(text: string): Promise<Piece[]> {
  const worker = backend()
  if (!worker) return parseHere(text)
  return worker.parse(text).catch(() => parseHere(text))
}

async function highlightHere(code: string, language: string | undefined): Promise<HighlightedBlocks | null> {
  const { highlightBlocks } = await import('./highlight')
  return highlightBlocks(code, language)
}

/** Highlights code, off the main thread when possible; null for an unknown language. */
export function highlightAsync(code: string, language: string | undefined): Promise<HighlightedBlocks | null> {
  const worker = backend()
  if (!worker) return highlightHere(code, language)
  return worker.highlight(code, language).catch(() => highlightHere(code, language))
}

/** Starts the worker and warms its parser up (call when idle), so the first answer is quick. */
export function warmUpRenderer(): void {
  const worker = backend()
  worker?.parse('# Warm\n\nSome *text*, **bold**, `code` and a [link](https://example.com).\n\n- a\n- b\n').catch(() => undefined)
}
