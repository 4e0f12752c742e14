import { HttpError, NetworkError } from './errors'
import type { ApprovalRequest, ChatEvent, ChatItem, MessageValue, ToolCall, ToolStatus } from './types'

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
  /** The tool calls waiting for a person to approve or deny them (the graph halted before them). */
  approvals: ApprovalRequest[]
  /** The tool calls whose arguments are still streaming. */
  liveToolCalls: string[]
  /**
   * The message built from this turn's tool events that further calls of the same round join
   * (the model's text before them and its `tool_calls`); null when none is open.
   */
  toolRound: number | null
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
  approvals: [],
  liveToolCalls: [],
  toolRound: null,
}

export type ChatAction =
  | { type: 'reset'; loading: boolean }
  | { type: 'history_loaded'; items: ChatItem[] }
  | { type: 'history_failed'; error: ChatError }
  /** The history loaded again while the conversation is shown (another tab changed it). */
  | { type: 'history_synced'; items: ChatItem[] }
  | { type: 'send_start'; prompt: string; optimistic: boolean }
  /** A person approved or denied a waiting tool call; the answer continues in a new turn. */
  | { type: 'approve_start'; toolCallId: string }
  /** `GET /approvals`: the calls waiting now (read while no answer streams). */
  | { type: 'approvals_loaded'; approvals: ApprovalRequest[] }
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
    liveToolCalls: [],
    toolRound: null,
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
    liveToolCalls: [],
    toolRound: null,
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
    liveToolCalls: [],
    toolRound: null,
  }
}

/** Whether a state is the initial state, loading or not as given. */
function isReset(state: ChatState, loading: boolean): boolean {
  return (Object.keys(initialChatState) as (keyof ChatState)[]).every((key) =>
    key === 'historyLoading' ? state.historyLoading === loading : state[key] === initialChatState[key],
  )
}

export function chatReducer(state: ChatState, action: ChatAction): ChatState {
  switch (action.type) {
    case 'reset':
      // The same object when nothing changes: a page opening a conversation before its project
      // is known resets the initial state, and a new object would render the page again.
      return isReset(state, action.loading) ? state : { ...initialChatState, historyLoading: action.loading }
    case 'history_loaded': {
      const messages = action.items.map((item) => ({ item }))
      return { ...state, messages, historyLoading: false, stoppedEarly: false, approvals: stillWaiting(state.approvals, messages) }
    }
    case 'history_synced': {
      const messages = mergeHistory(state.messages, action.items)
      return { ...state, messages, historyLoading: false, approvals: stillWaiting(state.approvals, messages) }
    }
    case 'approvals_loaded':
      return { ...state, approvals: stillWaiting(action.approvals, state.messages) }
    case 'approve_start':
      return {
        ...turnStarted(state, state.messages, state.lastPrompt),
        approvals: state.approvals.filter((a) => a.id !== action.toolCallId),
      }
    case 'history_failed':
      return { ...state, historyLoading: false, status: 'error', error: action.error }
    case 'send_start':
      // A new prompt supersedes the calls still waiting (the server records them as denied).
      return {
        ...turnStarted(state, action.optimistic ? [...state.messages, { item: userItem(action.prompt) }] : state.messages, action.prompt),
        approvals: [],
      }
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
    case 'tool_call_start':
      return withCall(state, { id: event.value.id, name: event.value.name, arguments: '', needs_approval: false }, true)
    case 'tool_call_args': {
      const at = callAt(state.messages, event.value.id)
      if (at < 0) return state
      return { ...state, messages: updateCall(state.messages, at, event.value.id, (call) => ({ ...call, arguments: call.arguments + event.value.delta })) }
    }
    case 'tool_call':
      return withCall(state, event.value, false)
    case 'tool_approval_request': {
      const request = event.value
      if (hasOutcome(state.messages, request.id)) return state
      return { ...state, approvals: [...state.approvals.filter((a) => a.id !== request.id), request] }
    }
    case 'tool_result': {
      const { id, name, result, duration_ms } = event.value
      return withOutcome(state, toolItem(id, name, 'ok', result, duration_ms, null))
    }
    case 'tool_error': {
      const { id, name, error, duration_ms } = event.value
      return withOutcome(state, toolItem(id, name, 'error', error, duration_ms, null))
    }
    case 'tool_denied': {
      const { id, name, reason } = event.value
      return withOutcome(state, toolItem(id, name, 'denied', reason ? `Denied: ${reason}` : 'Denied.', null, reason))
    }
    case 'message': {
      const { mode, model, ttft_ms, deltas, path, sequence_id } = event.value
      // The server's item carries the whole thinking; one that lacks it (an older server) keeps
      // what streamed.
      const item =
        (event.value.item.reasoning ?? null) === null && state.streamingReasoning
          ? { ...event.value.item, reasoning: state.streamingReasoning }
          : event.value.item
      const usage = event.value.usage ?? null
      const shown: DisplayMessage = { item, meta: { mode, model, ttft_ms, deltas, path, sequence_id, usage } }
      // An answer that halted for approval is the message its tool calls were shown in: replaced.
      const first = item.tool_calls?.[0]
      const at = first ? callAt(state.messages, first.id) : -1
      const messages = at >= 0 ? state.messages.map((m, i) => (i === at ? shown : m)) : [...state.messages, shown]
      return {
        ...state,
        messages,
        streamingText: '',
        streamingReasoning: '',
        status: 'idle',
        error: null,
        mode,
        activeAction: null,
        path,
        approvals: withAwaited(state.approvals, item, event.value.awaiting_approval ?? [], messages),
        liveToolCalls: [],
        toolRound: null,
      }
    }
    case 'error':
      if (event.value.code === 'stopped') return stopped(state)
      return failed(state, { ...event.value })
    default:
      return state
  }
}

// ------------------------------------------------------------------------------ tool calls

function toolItem(id: string, name: string, status: ToolStatus, content: string, durationMs: number | null, reason: string | null): ChatItem {
  return {
    role: 'tool',
    content,
    type: 'text',
    mode: null,
    model: null,
    interrupted: false,
    reasoning: null,
    tool_call_id: id,
    name,
    status,
    duration_ms: durationMs,
    reason,
  }
}

/** The first message of the last turn shown (after its prompt): tool call ids are looked up from there. */
function turnStart(messages: DisplayMessage[]): number {
  for (let i = messages.length - 1; i >= 0; i--) if (messages[i]?.item.role === 'user') return i + 1
  return 0
}

/** The message of the last turn whose `tool_calls` hold `id`; -1 when none does. */
export function callAt(messages: DisplayMessage[], id: string): number {
  for (let i = messages.length - 1; i >= turnStart(messages); i--) {
    if (messages[i]?.item.tool_calls?.some((call) => call.id === id)) return i
  }
  return -1
}

/** Whether a tool message (result, error or denial) answers call `id`. */
function hasOutcome(messages: DisplayMessage[], id: string): boolean {
  return messages.some((m) => m.item.role === 'tool' && m.item.tool_call_id === id)
}

/** The approvals whose calls have no outcome among `messages` yet. */
function stillWaiting(approvals: ApprovalRequest[], messages: DisplayMessage[]): ApprovalRequest[] {
  const answered = new Set(messages.flatMap((m) => (m.item.role === 'tool' && m.item.tool_call_id ? [m.item.tool_call_id] : [])))
  const kept = approvals.filter((a) => !answered.has(a.id))
  return kept.length === approvals.length ? approvals : kept
}

/** The approvals once a message says which calls wait (`awaiting_approval`). */
function withAwaited(approvals: ApprovalRequest[], item: ChatItem, awaited: string[], messages: DisplayMessage[]): ApprovalRequest[] {
  const missing = awaited.filter((id) => !approvals.some((a) => a.id === id))
  const added = missing.flatMap((id) => {
    const call = item.tool_calls?.find((c) => c.id === id)
    return call ? [{ id, name: call.name, arguments: call.arguments, message: `Run ${call.name}?` }] : []
  })
  return stillWaiting(added.length ? [...approvals, ...added] : approvals, messages)
}

function updateCall(messages: DisplayMessage[], at: number, id: string, change: (call: ToolCall) => ToolCall): DisplayMessage[] {
  return messages.map((m, i) => {
    if (i !== at) return m
    const calls = (m.item.tool_calls ?? []).map((call) => (call.id === id ? change(call) : call))
    return { ...m, item: { ...m.item, tool_calls: calls } }
  })
}

/**
 * A tool call of the answer streaming (`live` while its arguments stream): added to the message
 * of this round's calls; the first call of a round makes that message, with the text the model
 * wrote before it (as the server stores it: one assistant message with its `tool_calls`).
 */
function withCall(state: ChatState, call: ToolCall, live: boolean): ChatState {
  const liveToolCalls = live
    ? state.liveToolCalls.includes(call.id) ? state.liveToolCalls : [...state.liveToolCalls, call.id]
    : state.liveToolCalls.filter((id) => id !== call.id)
  const known = callAt(state.messages, call.id)
  if (known >= 0) {
    // The complete call after its start: its arguments as the server parsed them.
    const messages = live ? state.messages : updateCall(state.messages, known, call.id, () => call)
    return { ...state, messages, liveToolCalls }
  }
  const round = state.toolRound
  const open = round !== null ? state.messages[round] : undefined
  if (open && round === state.messages.length - 1 && !state.streamingText) {
    const item = { ...open.item, tool_calls: [...(open.item.tool_calls ?? []), call] }
    return { ...state, messages: state.messages.map((m, i) => (i === round ? { ...m, item } : m)), liveToolCalls }
  }
  const item: ChatItem = {
    role: 'assistant',
    content: state.streamingText,
    type: 'text',
    mode: state.mode,
    model: null,
    interrupted: false,
    reasoning: state.streamingReasoning || null,
    tool_calls: [call],
  }
  return {
    ...state,
    messages: [...state.messages, { item }],
    streamingText: '',
    streamingReasoning: '',
    liveToolCalls,
    toolRound: state.messages.length,
  }
}

/** A call's outcome (a tool message, as the server stores it); the call no longer waits. */
function withOutcome(state: ChatState, item: ChatItem): ChatState {
  const id = item.tool_call_id ?? ''
  const start = turnStart(state.messages)
  const known = state.messages.findIndex((m, i) => i >= start && m.item.role === 'tool' && m.item.tool_call_id === id)
  const messages = known >= 0 ? state.messages.map((m, i) => (i === known ? { item } : m)) : [...state.messages, { item }]
  return {
    ...state,
    messages,
    approvals: state.approvals.filter((a) => a.id !== id),
    liveToolCalls: state.liveToolCalls.filter((call) => call !== id),
    toolRound: null,
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
