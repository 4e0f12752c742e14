import type { ChatEvent } from '../lib/types'

const encoder = new TextEncoder()

/** One SSE block for an event, as the server writes it (with its `id:` line when given). */
export function sse(event: ChatEvent | Record<string, unknown>, id?: string): string {
  return `data: ${JSON.stringify(event)}\n${id ? `id: ${id}\n` : ''}\n`
}

/** A 200 text/event-stream Response whose body yields the given chunks, in order. */
export function streamResponse(chunks: (string | Uint8Array)[]): Response {
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(typeof chunk === 'string' ? encoder.encode(chunk) : chunk)
      controller.close()
    },
  })
  return new Response(body, { status: 200, headers: { 'Content-Type': 'text/event-stream' } })
}

/** A stream the test feeds by hand: push() chunks, then close() or error(). */
export function controlledStream() {
  let controller!: ReadableStreamDefaultController<Uint8Array>
  let cancelled = false
  const body = new ReadableStream<Uint8Array>({
    start(c) {
      controller = c
    },
    cancel() {
      cancelled = true
    },
  })
  return {
    response: new Response(body, { status: 200, headers: { 'Content-Type': 'text/event-stream' } }),
    push(chunk: string | ChatEvent, id?: string) {
      controller.enqueue(encoder.encode(typeof chunk === 'string' ? chunk : sse(chunk, id)))
    },
    close() {
      // The client may have cancelled the body already (it stops reading after the last event).
      if (!cancelled) controller.close()
    },
    fail(error: unknown) {
      controller.error(error)
    },
    get cancelled() {
      return cancelled
    },
  }
}

export function jsonResponse(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } })
}

/** A fetch that answers by "METHOD path" (path without the API prefix); unknown routes are 404. */
export type Route = (init: RequestInit | undefined, url: string) => Response | Promise<Response>

export function fakeFetch(routes: Record<string, Route>, apiBase = '/api/v0/streaming_chatbot') {
  const calls: { method: string; path: string; body: unknown }[] = []
  const impl = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.toString() : input.url
    const method = (init?.method ?? 'GET').toUpperCase()
    const path = url.startsWith(apiBase) ? url.slice(apiBase.length) : url
    const body = typeof init?.body === 'string' ? (JSON.parse(init.body) as unknown) : undefined
    calls.push({ method, path, body })
    if (init?.signal?.aborted) throw new DOMException('The operation was aborted.', 'AbortError')
    for (const [key, route] of Object.entries(routes)) {
      const [m, pattern] = key.split(' ')
      if (m !== method || !pattern) continue
      const re = new RegExp(`^${pattern.replace(/\*/g, '[^/]+')}$`)
      if (re.test(path.split('?')[0] ?? path)) return route(init, url)
    }
    return jsonResponse({ detail: `No route for ${method} ${path}` }, 404)
  }
  return { fetch: impl as typeof fetch, calls }
}
