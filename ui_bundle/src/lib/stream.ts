import { createParser } from 'eventsource-parser'
import { config } from './config'
import { HttpError, httpErrorFrom, isAbortError, NetworkError } from './errors'
import { CHAT_EVENT_TYPES, type ApprovalInput, type ChatEvent, type ConversationChange, type ErrorValue, type IfBusy, type MessageValue } from './types'

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
  /**
   * What the server does when an answer is already streaming there: `reject` (its default, a
   * 409), `interrupt` (that answer is stopped and kept, marked interrupted, then this prompt is
   * answered) or `enqueue` (answered after it).
   */
  ifBusy?: IfBusy
}

export interface ApproveRequest extends Common {
  /** The waiting tool call, approved or denied, and why (optional). */
  decision: ApprovalInput
  /** As for a prompt: how many messages the caller already has. */
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
  const { project, appId, prompt, historyAfter, ifBusy } = request
  const params = new URLSearchParams()
  if (historyAfter) params.set('history_after', String(Math.floor(historyAfter)))
  if (ifBusy && ifBusy !== 'reject') params.set('if_busy', ifBusy)
  const query = params.toString() ? `?${params.toString()}` : ''
  return read(request, `/response/${encodeURIComponent(project)}/${encodeURIComponent(appId)}${query}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Accept: 'text/event-stream' },
    body: JSON.stringify({ prompt }),
  })
}

/**
 * POSTs a person's approval (or denial) of a tool call waiting in a conversation and reads the
 * answer that goes on, as streamChat reads an answer: the call runs (or the model is told it was
 * denied), then the model answers. Throws HttpError 404 (no such call), 409 (decided already, or
 * an answer streams) and 422 (bad body).
 */
export function approveToolCall(request: ApproveRequest): Promise<StreamOutcome> {
  const { project, appId, decision, historyAfter } = request
  const query = historyAfter ? `?history_after=${Math.floor(historyAfter)}` : ''
  return read(request, `/approve/${encodeURIComponent(project)}/${encodeURIComponent(appId)}${query}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Accept: 'text/event-stream' },
    body: JSON.stringify(decision),
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

// ---------------------------------------------------------------- a conversation's changes

const CHANGE_TYPES = new Set(['turn_started', 'turn_ended', 'branch_created'])

/** Parses one event of `GET /events` into a ConversationChange; null for anything else. */
export function parseChange(data: string): ConversationChange | null {
  let parsed: unknown
  try {
    parsed = JSON.parse(data)
  } catch {
    return null
  }
  if (!parsed || typeof parsed !== 'object') return null
  const { type, value } = parsed as { type?: unknown; value?: unknown }
  if (typeof type !== 'string' || !CHANGE_TYPES.has(type) || !value || typeof value !== 'object') return null
  return parsed as ConversationChange
}

export interface FollowRequest {
  project: string
  appId: string
  onChange: (change: ConversationChange) => void
  /** Called each time the stream is open; `again` is true after a reconnect (changes may have been missed). */
  onOpen?: (again: boolean) => void
  /** Ends following. */
  signal: AbortSignal
  apiBase?: string
  fetchImpl?: typeof fetch
  /** Waits before each reconnect in a row (the last one repeats); reset once a stream opened. */
  delaysMs?: readonly number[]
}

export const FOLLOW_DELAYS_MS = [250, 500, 1000, 2000, 5000] as const

function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve()
    const done = () => {
      clearTimeout(timer)
      signal.removeEventListener('abort', done)
      resolve()
    }
    const timer = setTimeout(done, ms)
    signal.addEventListener('abort', done, { once: true })
  })
}

/**
 * Follows `GET /events/{project}/{app}`, the changes of a conversation made by any tab or
 * worker (a turn started or ended, a branch created), until `signal` aborts. A stream that drops
 * or cannot be opened is opened again after a short wait (`delaysMs`). Gives up (resolves) on an
 * answer that will not change (a 404 or 422: no such conversation, or a server without
 * `/events`). Keepalive comments are skipped by the parser.
 */
export async function followConversation(request: FollowRequest): Promise<void> {
  const { project, appId, onChange, onOpen, signal } = request
  const delays = request.delaysMs ?? FOLLOW_DELAYS_MS
  const doFetch = request.fetchImpl ?? fetch
  const endpoint = `${request.apiBase ?? config.apiBase}/events/${encodeURIComponent(project)}/${encodeURIComponent(appId)}`
  let failures = 0
  let opened = false
  while (!signal.aborted) {
    try {
      const response = await doFetch(endpoint, { method: 'GET', headers: { Accept: 'text/event-stream' }, signal })
      if (!response.ok) {
        const error = await httpErrorFrom(response)
        if (!error.retryable) return
        throw error
      }
      if (!response.body) throw new NetworkError('The event stream had no body.')
      onOpen?.(opened)
      opened = true
      failures = 0
      const parser = createParser({
        onEvent(message) {
          const change = parseChange(message.data)
          if (change && !signal.aborted) onChange(change)
        },
      })
      const reader = response.body.getReader()
      const decoder = new TextDecoder('utf-8')
      const cancel = () => {
        reader.cancel().catch(() => undefined)
      }
      signal.addEventListener('abort', cancel, { once: true })
      try {
        for (;;) {
          const { done, value } = await reader.read()
          if (done || signal.aborted) break
          parser.feed(decoder.decode(value, { stream: true }))
        }
      } finally {
        signal.removeEventListener('abort', cancel)
      }
    } catch (error) {
      if (signal.aborted || isAbortError(error)) return
      if (error instanceof HttpError && !error.retryable) return
    }
    if (signal.aborted) return
    await pause(delays[Math.min(failures, delays.length - 1)] ?? 1000, signal)
    failures += 1
  }
}
