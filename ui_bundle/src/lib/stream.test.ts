// @vitest-environment node
import { describe, expect, it, vi } from 'vitest'
import { HttpError, NetworkError } from './errors'
import { parseChatEvent, resumeChat, streamChat, turnOf } from './stream'
import type { ChatEvent } from './types'
import { controlledStream, jsonResponse, sse, streamResponse } from '../test/sse'

const encoder = new TextEncoder()

function run(response: Response | (() => Promise<Response>), extra: Partial<Parameters<typeof streamChat>[0]> = {}) {
  const events: ChatEvent[] = []
  const fetchImpl = vi.fn(typeof response === 'function' ? response : async () => response)
  const promise = streamChat({
    project: 'proj',
    appId: 'app_1',
    prompt: 'Hello',
    apiBase: '/base/api',
    fetchImpl: fetchImpl as unknown as typeof fetch,
    onEvent: (e) => events.push(e),
    ...extra,
  })
  return { promise, events, fetchImpl }
}

const message: ChatEvent = {
  type: 'message',
  value: {
    item: { role: 'assistant', content: 'Hello there', type: 'text', mode: 'answer_question', model: 'demo', interrupted: false, reasoning: null },
    mode: 'answer_question',
    model: 'demo',
    ttft_ms: 12.5,
    deltas: 2,
    sequence_id: 4,
    path: ['prompt', 'check_safety', 'decide_mode', 'answer_question'],
    usage: null,
  },
}

describe('streamChat', () => {
  it('POSTs the prompt as JSON to the response endpoint', async () => {
    const { promise, fetchImpl } = run(streamResponse([sse(message)]))
    await promise
    expect(fetchImpl).toHaveBeenCalledTimes(1)
    const [url, init] = fetchImpl.mock.calls[0] as unknown as [string, RequestInit]
    expect(url).toBe('/base/api/response/proj/app_1')
    expect(init.method).toBe('POST')
    expect(JSON.parse(init.body as string)).toEqual({ prompt: 'Hello' })
  })

  it('asks for the history after the messages the caller has (history_after)', async () => {
    const { promise, fetchImpl } = run(streamResponse([sse(message)]), { historyAfter: 6 })
    await promise
    const [url] = fetchImpl.mock.calls[0] as unknown as [string]
    expect(url).toBe('/base/api/response/proj/app_1?history_after=6')
  })

  it('delivers events in order and resolves with the message', async () => {
    const { promise, events } = run(
      streamResponse([
        sse({ type: 'chat_history', value: [] }),
        sse({ type: 'action', value: { action: 'prompt', sequence_id: 0 } }),
        sse({ type: 'mode', value: 'answer_question' }),
        sse({ type: 'reasoning', value: 'A greeting.' }),
        sse({ type: 'delta', value: 'Hello' }) + sse({ type: 'delta', value: ' there' }),
        sse(message),
      ]),
    )
    const outcome = await promise
    expect(events.map((e) => e.type)).toEqual(['chat_history', 'action', 'mode', 'reasoning', 'delta', 'delta', 'message'])
    expect(events[3]).toEqual({ type: 'reasoning', value: 'A greeting.' })
    expect(outcome).toEqual({ kind: 'message', value: message.value })
  })

  it('joins an event split across two chunks', async () => {
    const text = sse({ type: 'delta', value: 'split across chunks' })
    const cut = text.indexOf('across')
    const { promise, events } = run(streamResponse([text.slice(0, cut), text.slice(cut), sse(message)]))
    await promise
    expect(events[0]).toEqual({ type: 'delta', value: 'split across chunks' })
  })

  it('decodes a multi-byte UTF-8 character split across two chunks', async () => {
    const bytes = encoder.encode(sse({ type: 'delta', value: 'café 🎉 done' }))
    // Cut inside the 4-byte emoji.
    const emoji = encoder.encode('🎉')
    let at = -1
    for (let i = 0; i < bytes.length; i++) if (bytes[i] === emoji[0]) at = i
    expect(at).toBeGreaterThan(0)
    const { promise, events } = run(streamResponse([bytes.slice(0, at + 2), bytes.slice(at + 2), sse(message)]))
    await promise
    expect(events[0]).toEqual({ type: 'delta', value: 'café 🎉 done' })
  })

  it('does not split on "data: " inside a value', async () => {
    const { promise, events } = run(streamResponse([sse({ type: 'delta', value: 'x\ndata: {"type":"delta"}\n\ny' }), sse(message)]))
    await promise
    expect(events[0]).toEqual({ type: 'delta', value: 'x\ndata: {"type":"delta"}\n\ny' })
    expect(events).toHaveLength(2)
  })

  it('accepts CRLF line endings and comments, and ignores unknown event types', async () => {
    const { promise, events } = run(
      streamResponse([
        ': keep-alive\r\n\r\n',
        'data: {"type":"future_thing","value":1}\r\n\r\n',
        'data: not json\r\n\r\n',
        'data: {"type":"delta","value":"ok"}\r\n\r\n',
        sse(message),
      ]),
    )
    await promise
    expect(events.map((e) => e.type)).toEqual(['delta', 'message'])
  })

  it('resolves with the error event', async () => {
    const error: ChatEvent = { type: 'error', value: { code: 'upstream_timeout', message: 'The model timed out.', retryable: true } }
    const { promise, events } = run(streamResponse([sse({ type: 'delta', value: 'par' }), sse(error)]))
    const outcome = await promise
    expect(outcome).toEqual({ kind: 'error', value: error.value })
    expect(events.map((e) => e.type)).toEqual(['delta', 'error'])
  })

  it('reports a stream that closes before its message or error', async () => {
    const { promise } = run(streamResponse([sse({ type: 'delta', value: 'par' })]))
    expect(await promise).toMatchObject({ kind: 'incomplete' })
  })

  it('dispatches a last event that has no blank line after it', async () => {
    const { promise, events } = run(streamResponse([`data: ${JSON.stringify(message)}`]))
    expect((await promise).kind).toBe('message')
    expect(events).toHaveLength(1)
  })

  it('stops on abort and cancels the body', async () => {
    const stream = controlledStream()
    const abort = new AbortController()
    const events: ChatEvent[] = []
    const promise = streamChat({
      project: 'p',
      appId: 'a',
      prompt: 'x',
      signal: abort.signal,
      fetchImpl: (async () => stream.response) as unknown as typeof fetch,
      onEvent: (e) => {
        events.push(e)
        if (e.type === 'delta') abort.abort()
      },
    })
    stream.push({ type: 'delta', value: 'first' })
    const outcome = await promise
    expect(outcome).toEqual({ kind: 'aborted' })
    expect(events).toHaveLength(1)
    expect(stream.cancelled).toBe(true)
  })

  it('resolves as aborted when fetch itself is aborted', async () => {
    const abort = new AbortController()
    abort.abort()
    const { promise } = run(async () => {
      throw new DOMException('aborted', 'AbortError')
    }, { signal: abort.signal })
    expect(await promise).toEqual({ kind: 'aborted' })
  })

  it.each([
    [409, { detail: 'A reply is already streaming in this conversation; wait for it or stop it.' }, 'A reply is already streaming in this conversation; wait for it or stop it.'],
    [422, { detail: 'The prompt is blank.' }, 'The prompt is blank.'],
    [
      422,
      { detail: [{ loc: ['path', 'app_id'], msg: "String should match pattern '^[A-Za-z0-9_-]{1,64}$'", type: 'string_pattern_mismatch' }] },
      "path.app_id: String should match pattern '^[A-Za-z0-9_-]{1,64}$'",
    ],
    [503, { detail: 'The model is not configured.' }, 'The model is not configured.'],
  ])('turns a %i answer into an HttpError with the server detail', async (status, body, detail) => {
    const { promise, events } = run(jsonResponse(body, status))
    const error = await promise.then(
      () => null,
      (e: unknown) => e,
    )
    expect(error).toBeInstanceOf(HttpError)
    expect((error as HttpError).status).toBe(status)
    expect((error as HttpError).detail).toBe(detail)
    expect((error as HttpError).retryable).toBe(status !== 422)
    expect(events).toHaveLength(0)
  })

  it('describes a non-JSON error body by its text', async () => {
    const { promise } = run(new Response('Service Unavailable', { status: 503 }))
    await expect(promise).rejects.toMatchObject({ status: 503, detail: 'Service Unavailable' })
  })

  it('throws NetworkError when the server cannot be reached', async () => {
    const { promise } = run(async () => {
      throw new TypeError('fetch failed')
    })
    await expect(promise).rejects.toBeInstanceOf(NetworkError)
  })
})

describe('event ids', () => {
  it('hands each event its SSE id', async () => {
    const ids: (string | undefined)[] = []
    const { promise } = run(
      streamResponse([sse({ type: 'chat_history', value: [] }, 'abc.0'), sse({ type: 'delta', value: 'x' }, 'abc.6'), sse(message)]),
      { onEvent: (_event, id) => ids.push(id) },
    )
    await promise
    expect(ids).toEqual(['abc.0', 'abc.6', undefined])
  })

  it('names the turn of an id', () => {
    expect(turnOf('747e5a52.13')).toBe('747e5a52')
    expect(turnOf('plain')).toBe('plain')
  })
})

describe('resumeChat', () => {
  function resume(response: Response, lastEventId?: string) {
    const events: ChatEvent[] = []
    const fetchImpl = vi.fn(async () => response)
    const promise = resumeChat({
      project: 'proj',
      appId: 'app_1',
      apiBase: '/base/api',
      lastEventId,
      fetchImpl: fetchImpl as unknown as typeof fetch,
      onEvent: (e) => events.push(e),
    })
    return { promise, events, fetchImpl }
  }

  it('GETs the stream after the last event id', async () => {
    const { promise, events, fetchImpl } = resume(streamResponse([sse({ type: 'delta', value: 'more' }, 't.8'), sse(message, 't.9')]), 't.7')
    expect((await promise).kind).toBe('message')
    const [url, init] = fetchImpl.mock.calls[0] as unknown as [string, RequestInit]
    expect(url).toBe('/base/api/stream/proj/app_1')
    expect(init.method).toBe('GET')
    expect(new Headers(init.headers).get('Last-Event-ID')).toBe('t.7')
    expect(events.map((e) => e.type)).toEqual(['delta', 'message'])
  })

  it('asks for the whole turn without an id, and throws a 404 as HttpError', async () => {
    const { promise, fetchImpl } = resume(jsonResponse({ detail: 'No answer is streaming here.' }, 404))
    await expect(promise).rejects.toMatchObject({ status: 404 })
    const [, init] = fetchImpl.mock.calls[0] as unknown as [string, RequestInit]
    expect(new Headers(init.headers).has('Last-Event-ID')).toBe(false)
  })
})

describe('parseChatEvent', () => {
  it('keeps known events and drops unknown or malformed ones', () => {
    expect(parseChatEvent('{"type":"delta","value":"a"}')).toEqual({ type: 'delta', value: 'a' })
    expect(parseChatEvent('{"type":"reasoning","value":"hm"}')).toEqual({ type: 'reasoning', value: 'hm' })
    expect(parseChatEvent('{"type":"new_kind","value":"a"}')).toBeNull()
    expect(parseChatEvent('{"type":"delta"}')).toBeNull()
    expect(parseChatEvent('[1,2]')).toBeNull()
    expect(parseChatEvent('nope')).toBeNull()
  })
})
