import { HttpError, NetworkError } from './errors'
import type { ChatEvent, ChatItem, MessageValue } from './types'

/** What the page shows under an answer it saw being streamed. */
export type AnswerMeta = Pick<MessageValue, 'mode' | 'model' | 'ttft_ms' | 'deltas' | 'path' | 'sequence_id' | 'usage'>

export interface DisplayMessage {
  item: ChatItem
  meta?: AnswerMeta
  /** An interrupted answer that was stopped (by this page, or the server's `stopped`): no failure. */
  stopped?: boolean
}

export type ChatStatus = 'idle' | 'streaming' | 'error'

export interface ChatError {
  /** The server's error code, or `http_<status>`, `network`, `incomplete` for client-side failures. */
  code: string
  message: string
  retryable: boolean
}

export interface ChatState {
  messages: DisplayMessage[]
  /** The answer streaming right now (empty when none). */
  streamingText: string
  /** What the model thought before that answer, as it streams (empty when none). */
  streamingReasoning: string
  status: ChatStatus
  error: ChatError | null
  /** The mode of the turn streaming now, or of the last one. */
  mode: string | null
  /** The Burr action running now. */
  activeAction: string | null
  /** The actions of the turn streaming now, or of the last answered one. */
  path: string[]
  /** The prompt of the last turn (what Retry sends again). */
  lastPrompt: string | null
  historyLoading: boolean
  /** The last turn was stopped before any text: shown as a neutral note, not as a failure. */
  stoppedEarly: boolean
}

export const initialChatState: ChatState = {
  messages: [],
  streamingText: '',
  streamingReasoning: '',
  status: 'idle',
  error: null,
  mode: null,
  activeAction: null,
  path: [],
  lastPrompt: null,
  historyLoading: false,
  stoppedEarly: false,
}

export type ChatAction =
  | { type: 'reset'; loading: boolean }
  | { type: 'history_loaded'; items: ChatItem[] }
  | { type: 'history_failed'; error: ChatError }
  /** The history loaded again while the conversation is shown (another tab changed it). */
  | { type: 'history_synced'; items: ChatItem[] }
  | { type: 'send_start'; prompt: string; optimistic: boolean }
  /** The page reattached to an answer the server is streaming (after a reload). */
  | { type: 'resume_start'; prompt: string | null }
  /** `prompt` is null when this page does not know the turn's prompt (a reattached turn). */
  | { type: 'event'; event: ChatEvent; prompt: string | null }
  /** The conversation's last turn was stopped; its interrupted answer is in the history. */
  | { type: 'mark_stopped' }
  | { type: 'aborted' }
  | { type: 'failed'; error: ChatError }

function userItem(prompt: string): ChatItem {
  return { role: 'user', content: prompt, type: 'text', mode: null, model: null, interrupted: false, reasoning: null }
}

/**
 * A partial answer cut short, kept as the server keeps it: its text with the thinking that came
 * before it. (A turn cut short while the model was still thinking, before any text, keeps
 * nothing, as on the server.)
 */
function withPartial(state: ChatState, stopped = false): DisplayMessage[] {
  const { messages, streamingText, streamingReasoning } = state
  if (!streamingText) return messages
  const item: ChatItem = {
    role: 'assistant',
    content: streamingText,
    type: 'text',
    mode: null,
    model: null,
    interrupted: true,
    reasoning: streamingReasoning || null,
  }
  return [...messages, stopped ? { item, stopped } : { item }]
}

/** The turn was stopped: what arrived is kept, and no failure is shown. */
function stopped(state: ChatState): ChatState {
  return {
    ...state,
    messages: withPartial(state, true),
    streamingText: '',
    streamingReasoning: '',
    status: 'idle',
    error: null,
    activeAction: null,
    stoppedEarly: !state.streamingText,
  }
}

/** The turn failed: what arrived is kept, marked interrupted, and the error is shown. */
function failed(state: ChatState, error: ChatError): ChatState {
  return {
    ...state,
    messages: withPartial(state),
    streamingText: '',
    streamingReasoning: '',
    status: 'error',
    error,
    activeAction: null,
  }
}

/**
 * The server's history (its messages from `start` on) over what the page shows: the server's
 * messages win, a message that did not change keeps its answer details. A `start` beyond what
 * the page has (another tab's turn) leaves the page as it is; the next history load catches up.
 */
function mergeHistory(current: DisplayMessage[], items: ChatItem[], start = 0): DisplayMessage[] {
  if (start > current.length) return current
  const tail = items.map((item, index) => {
    const known = current[start + index]
    if (known && known.item.role === item.role && known.item.content === item.content) {
      return known.item === item ? known : { item, ...(known.meta ? { meta: known.meta } : {}), ...(known.stopped ? { stopped: true } : {}) }
    }
    // A partial answer this page stopped (or interrupted with a new prompt), kept by the server
    // with the text that arrived after: still shown as stopped.
    if (known?.stopped && item.role === 'assistant' && known.item.role === 'assistant' && item.interrupted) {
      return { item, stopped: true }
    }
    return { item }
  })
  return start === 0 ? tail : [...current.slice(0, start), ...tail]
}

/**
 * What a page asks for with its next prompt (`history_after`): the messages it shows but the
 * last exchange, which the server sends again so a partial answer is replaced by what it kept.
 */
export function historyAfter(messages: DisplayMessage[]): number {
  return Math.max(0, messages.length - 2)
}

/** A turn starts streaming (sent from this page, or reattached to). */
function turnStarted(state: ChatState, messages: DisplayMessage[], lastPrompt: string | null): ChatState {
  return {
    ...state,
    messages,
    streamingText: '',
    streamingReasoning: '',
    status: 'streaming',
    error: null,
    mode: null,
    activeAction: null,
    path: [],
    lastPrompt,
    historyLoading: false,
    stoppedEarly: false,
  }
}

export function chatReducer(state: ChatState, action: ChatAction): ChatState {
  switch (action.type) {
    case 'reset':
      return { ...initialChatState, historyLoading: action.loading }
    case 'history_loaded':
      return { ...state, messages: action.items.map((item) => ({ item })), historyLoading: false, stoppedEarly: false }
    case 'history_synced':
      return { ...state, messages: mergeHistory(state.messages, action.items), historyLoading: false }
    case 'history_failed':
      return { ...state, historyLoading: false, status: 'error', error: action.error }
    case 'send_start':
      return turnStarted(
        state,
        action.optimistic ? [...state.messages, { item: userItem(action.prompt) }] : state.messages,
        action.prompt,
      )
    case 'resume_start':
      return turnStarted(state, state.messages, action.prompt ?? state.lastPrompt)
    case 'event':
      return applyEvent(state, action.event, action.prompt)
    case 'mark_stopped': {
      const last = state.messages[state.messages.length - 1]
      if (!last || last.item.role !== 'assistant' || !last.item.interrupted || last.stopped) return state
      return { ...state, messages: [...state.messages.slice(0, -1), { ...last, stopped: true }] }
    }
    case 'aborted':
      return stopped(state)
    case 'failed':
      return failed(state, action.error)
  }
}

function applyEvent(state: ChatState, event: ChatEvent, prompt: string | null): ChatState {
  switch (event.type) {
    case 'chat_history': {
      // The history before this turn; the server's process_prompt adds the prompt unless it is
      // already the last, unanswered message (a retry).
      const messages = mergeHistory(state.messages, event.value, event.start ?? 0)
      if (prompt === null) return { ...state, messages }
      const last = messages[messages.length - 1]
      const isRetry = last?.item.role === 'user' && last.item.content === prompt
      return { ...state, messages: isRetry ? messages : [...messages, { item: userItem(prompt) }] }
    }
    case 'action':
      return { ...state, activeAction: event.value.action, path: [...state.path, event.value.action] }
    case 'mode':
      return { ...state, mode: event.value }
    case 'reasoning':
      return { ...state, streamingReasoning: state.streamingReasoning + event.value }
    case 'delta':
      return { ...state, streamingText: state.streamingText + event.value }
    case 'message': {
      const { mode, model, ttft_ms, deltas, path, sequence_id } = event.value
      // The server's item carries the whole thinking; one that lacks it (an older server) keeps
      // what streamed.
      const item =
        (event.value.item.reasoning ?? null) === null && state.streamingReasoning
          ? { ...event.value.item, reasoning: state.streamingReasoning }
          : event.value.item
      const usage = event.value.usage ?? null
      return {
        ...state,
        messages: [...state.messages, { item, meta: { mode, model, ttft_ms, deltas, path, sequence_id, usage } }],
        streamingText: '',
        streamingReasoning: '',
        status: 'idle',
        error: null,
        mode,
        activeAction: null,
        path,
      }
    }
    case 'error':
      if (event.value.code === 'stopped') return stopped(state)
      return failed(state, { ...event.value })
    default:
      return state
  }
}

/** Describes anything the request threw as a ChatError. */
export function toChatError(error: unknown): ChatError {
  if (error instanceof HttpError) {
    return { code: `http_${error.status}`, message: error.detail, retryable: error.retryable }
  }
  if (error instanceof NetworkError) {
    return { code: 'network', message: error.message, retryable: true }
  }
  const message = error instanceof Error && error.message ? error.message : 'Something went wrong.'
  return { code: 'internal', message, retryable: true }
}
