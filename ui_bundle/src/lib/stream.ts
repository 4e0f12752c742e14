import { createParser } from 'eventsource-parser'
import { config } from './config'
import { httpErrorFrom, isAbortError, NetworkError } from './errors'
import { CHAT_EVENT_TYPES, type ChatEvent, type ErrorValue, type MessageValue } from './types'

/** How a response stream ended. */
export type StreamOutcome =
  | { kind: 'message'; value: MessageValue }
  | { kind: 'error'; value: ErrorValue }
  /** Stopped by the caller's AbortSignal. */
  | { kind: 'aborted' }
  /** The stream closed (or broke) before its `message` or `error` event. */
  | { kind: 'incomplete'; reason: string }

/** Called with each event, and its SSE id (`<turn>.<n>`) when the server sent one. */
export type EventHandler = (event: ChatEvent, id: string | undefined) => void

interface Common {
  project: string
  appId: string
  onEvent: EventHandler
  signal?: AbortSignal
  apiBase?: string
  fetchImpl?: typeof fetch
}

export interface StreamRequest extends Common {
  prompt: string
  /**
   * How many messages of the conversation the caller already has: the `chat_history` event then
   * carries only the later ones (from its `start`), not the whole conversation again.
   */
  historyAfter?: number
}

export interface ResumeRequest extends Common {
  /** The id of the last event already handled; without it the turn is replayed from its start. */
  lastEventId?: string | undefined
}

const KNOWN = new Set<string>(CHAT_EVENT_TYPES)

/** Parses one event's `data` into a ChatEvent; null for unknown types or malformed data. */
export function parseChatEvent(data: string): ChatEvent | null {
  let parsed: unknown
  try {
    parsed = JSON.parse(data)
  } catch {
    return null
  }
  if (!parsed || typeof parsed !== 'object') return null
  const { type } = parsed as { type?: unknown }
  if (typeof type !== 'string' || !KNOWN.has(type) || !('value' in parsed)) return null
  return parsed as ChatEvent
}

/**
 * POSTs a prompt and reads the answer's server-sent events as they arrive.
 *
 * Each event goes to `onEvent` in order. Resolves with how the turn ended. Throws HttpError for
 * a non-2xx answer (with the server's `detail`) and NetworkError when the server cannot be
 * reached; an abort through `signal` resolves with `{kind: 'aborted'}`.
 */
export function streamChat(request: StreamRequest): Promise<StreamOutcome> {
  const { project, appId, prompt, historyAfter } = request
  const query = historyAfter ? `?history_after=${Math.floor(historyAfter)}` : ''
  return read(request, `/response/${encodeURIComponent(project)}/${encodeURIComponent(appId)}${query}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Accept: 'text/event-stream' },
    body: JSON.stringify({ prompt }),
  })
}

/**
 * Reattaches to the answer being generated (or just finished) in a conversation: `GET /stream`,
 * the events after `lastEventId` (all of the turn's without it), then the rest as they come.
 * Throws HttpError 404 when there is no such answer; otherwise as streamChat.
 */
export function resumeChat(request: ResumeRequest): Promise<StreamOutcome> {
  const { project, appId, lastEventId } = request
  const headers: Record<string, string> = { Accept: 'text/event-stream' }
  if (lastEventId) headers['Last-Event-ID'] = lastEventId
  return read(request, `/stream/${encodeURIComponent(project)}/${encodeURIComponent(appId)}`, { method: 'GET', headers })
}

/** The turn an event id names (`<turn>.<n>`). */
export function turnOf(id: string): string {
  const dot = id.lastIndexOf('.')
  return dot === -1 ? id : id.slice(0, dot)
}

async function read(request: Common, path: string, init: RequestInit): Promise<StreamOutcome> {
  const { onEvent, signal } = request
  const doFetch = request.fetchImpl ?? fetch
  const endpoint = `${request.apiBase ?? config.apiBase}${path}`

  let response: Response
  try {
    response = await doFetch(endpoint, { ...init, signal: signal ?? null })
  } catch (error) {
    if (isAbortError(error) || signal?.aborted) return { kind: 'aborted' }
    throw new NetworkError(undefined, { cause: error })
  }
  if (!response.ok) throw await httpErrorFrom(response)
  if (!response.body) return { kind: 'incomplete', reason: 'The response had no body.' }

  // Held in an object: the parser's callback sets it, which control-flow narrowing cannot see.
  const end: { outcome: StreamOutcome | null } = { outcome: null }
  const parser = createParser({
    onEvent(message) {
      if (end.outcome) return // a turn ends with its message or error; later events are not ours
      const event = parseChatEvent(message.data)
      if (!event) return
      onEvent(event, message.id)
      if (event.type === 'message') end.outcome = { kind: 'message', value: event.value }
      else if (event.type === 'error') end.outcome = { kind: 'error', value: event.value }
    },
  })

  const reader = response.body.getReader()
  const decoder = new TextDecoder('utf-8')
  const onAbort = () => {
    reader.cancel().catch(() => undefined)
  }
  signal?.addEventListener('abort', onAbort, { once: true })
  try {
    for (;;) {
      if (signal?.aborted) return end.outcome ?? { kind: 'aborted' }
      const { done, value } = await reader.read()
      if (done) break
      parser.feed(decoder.decode(value, { stream: true }))
      if (end.outcome) break
    }
    if (!end.outcome) {
      // Flush the decoder, then end a last event the server did not close with a blank line.
      parser.feed(decoder.decode() + '\n\n')
    }
  } catch (error) {
    if (end.outcome) return end.outcome
    if (isAbortError(error) || signal?.aborted) return { kind: 'aborted' }
    return { kind: 'incomplete', reason: 'The connection broke before the answer finished.' }
  } finally {
    signal?.removeEventListener('abort', onAbort)
    if (end.outcome) reader.cancel().catch(() => undefined)
  }
  if (end.outcome) return end.outcome
  if (signal?.aborted) return { kind: 'aborted' }
  return { kind: 'incomplete', reason: 'The connection closed before the answer finished.' }
}
