import { describe, expect, it } from 'vitest'
import { chatReducer, initialChatState, type ChatAction, type ChatState } from './chatState'
import type { ChatEvent, ChatItem } from './types'

const user = (content: string): ChatItem => ({ role: 'user', content, type: 'text', mode: null, model: null, interrupted: false, reasoning: null })
const calc = { id: 'call_1', name: 'calculator', arguments: '{"expression": "6*7"}', needs_approval: false }
const note = { id: 'call_2', name: 'save_note', arguments: '{"text": "buy milk"}', needs_approval: true }
const assistantWith = (content: string, calls: (typeof calc)[]): ChatItem => ({
  role: 'assistant',
  content,
  type: 'text',
  mode: 'answer_question',
  model: 'demo',
  interrupted: false,
  reasoning: null,
  tool_calls: calls,
})
const messageOf = (item: ChatItem, awaiting?: string[]): ChatEvent => ({
  type: 'message',
  value: {
    item,
    mode: 'answer_question',
    model: 'demo',
    ttft_ms: 3,
    deltas: 1,
    sequence_id: 5,
    path: ['prompt', 'answer_question'],
    usage: null,
    ...(awaiting ? { awaiting_approval: awaiting } : {}),
  },
})

/** The state after a prompt was sent and these events arrived (or more events of that turn, given `from`). */
function run(events: ChatEvent[], from?: ChatState): ChatState {
  const actions: ChatAction[] = [
    ...(from ? [] : [{ type: 'send_start', prompt: 'What is 6*7?', optimistic: true } as const]),
    ...events.map((event): ChatAction => ({ type: 'event', event, prompt: 'What is 6*7?' })),
  ]
  return actions.reduce(chatReducer, from ?? initialChatState)
}

const roles = (state: ChatState) => state.messages.map((m) => m.item.role)

describe('chatReducer, tool calls', () => {
  it('text, a call whose arguments stream, its result, then more text: the messages the server stores', () => {
    const before = run([
      { type: 'chat_history', value: [] },
      { type: 'delta', value: 'Let me compute. ' },
      { type: 'tool_call_start', value: { id: 'call_1', name: 'calculator' } },
      { type: 'tool_call_args', value: { id: 'call_1', delta: '{"expression": ' } },
    ])
    // The text before the call and the call are one assistant message; the call is live.
    expect(roles(before)).toEqual(['user', 'assistant'])
    expect(before.messages[1]?.item.content).toBe('Let me compute. ')
    expect(before.messages[1]?.item.tool_calls).toEqual([{ id: 'call_1', name: 'calculator', arguments: '{"expression": ', needs_approval: false }])
    expect(before.streamingText).toBe('')
    expect(before.liveToolCalls).toEqual(['call_1'])

    const after = run(
      [
        { type: 'tool_call_args', value: { id: 'call_1', delta: '"6*7"}' } },
        { type: 'tool_call', value: calc },
        { type: 'action', value: { action: 'run_tool', sequence_id: 4 } },
        { type: 'tool_result', value: { id: 'call_1', name: 'calculator', result: '{"result": "42"}', duration_ms: 1.5 } },
        { type: 'delta', value: 'It is 42.' },
      ],
      before,
    ).messages
    expect(after.map((m) => m.item.role)).toEqual(['user', 'assistant', 'tool'])
    expect(after[1]?.item.tool_calls).toEqual([calc])
    expect(after[2]?.item).toMatchObject({ role: 'tool', tool_call_id: 'call_1', name: 'calculator', status: 'ok', content: '{"result": "42"}', duration_ms: 1.5 })

    const done = run(
      [
        { type: 'tool_call_args', value: { id: 'call_1', delta: '"6*7"}' } },
        { type: 'tool_call', value: calc },
        { type: 'tool_result', value: { id: 'call_1', name: 'calculator', result: '{"result": "42"}', duration_ms: 1.5 } },
        { type: 'delta', value: 'It is 42.' },
        messageOf({ ...assistantWith('It is 42.', []), tool_calls: null }),
      ],
      before,
    )
    expect(roles(done)).toEqual(['user', 'assistant', 'tool', 'assistant'])
    expect(done.messages[3]?.item.content).toBe('It is 42.')
    expect(done.liveToolCalls).toEqual([])
    expect(done.status).toBe('idle')
  })

  it('two calls of one round join one message; their results follow in order', () => {
    const second = { ...calc, id: 'call_3', arguments: '{"expression": "1+1"}' }
    const state = run([
      { type: 'tool_call_start', value: { id: 'call_1', name: 'calculator' } },
      { type: 'tool_call', value: calc },
      { type: 'tool_call_start', value: { id: 'call_3', name: 'calculator' } },
      { type: 'tool_call', value: second },
      { type: 'tool_result', value: { id: 'call_1', name: 'calculator', result: '42', duration_ms: 1 } },
      { type: 'tool_error', value: { id: 'call_3', name: 'calculator', error: 'Too big.', duration_ms: 2 } },
    ])
    expect(roles(state)).toEqual(['user', 'assistant', 'tool', 'tool'])
    expect(state.messages[1]?.item.tool_calls).toEqual([calc, second])
    expect(state.messages[3]?.item).toMatchObject({ status: 'error', content: 'Too big.', tool_call_id: 'call_3' })
  })

  it('a call waiting for approval: listed until its denial arrives, and the answer halted there is not shown twice', () => {
    const halted = run([
      { type: 'tool_call_start', value: { id: 'call_2', name: 'save_note' } },
      { type: 'tool_call', value: note },
      { type: 'tool_approval_request', value: { id: note.id, name: note.name, arguments: note.arguments, message: 'Save a note?' } },
      messageOf(assistantWith('', [note]), ['call_2']),
    ])
    expect(roles(halted)).toEqual(['user', 'assistant'])
    expect(halted.messages[1]?.meta?.ttft_ms).toBe(3)
    expect(halted.approvals).toEqual([{ id: 'call_2', name: 'save_note', arguments: note.arguments, message: 'Save a note?' }])

    const approving = chatReducer(halted, { type: 'approve_start', toolCallId: 'call_2' })
    expect(approving.status).toBe('streaming')
    expect(approving.approvals).toEqual([])

    const denied = [
      { type: 'chat_history', value: [user('What is 6*7?'), assistantWith('', [note])], start: 0 },
      { type: 'action', value: { action: 'tool_approval', sequence_id: 6 } },
      { type: 'tool_denied', value: { id: 'call_2', name: 'save_note', reason: 'not now' } },
    ] satisfies ChatEvent[]
    const after = denied.reduce<ChatState>((s, event) => chatReducer(s, { type: 'event', event, prompt: null }), approving)
    expect(roles(after)).toEqual(['user', 'assistant', 'tool'])
    expect(after.messages[2]?.item).toMatchObject({ status: 'denied', reason: 'not now' })
  })

  it('a message naming waiting calls lists them even without their request events', () => {
    const state = run([messageOf(assistantWith('', [note]), ['call_2'])])
    expect(state.approvals.map((a) => a.id)).toEqual(['call_2'])
  })

  it('approvals read from the server drop the calls the page already shows answered; a new prompt drops them all', () => {
    const history = [user('remember milk'), assistantWith('', [note]), { ...user('x'), role: 'tool' as const, content: 'Denied', tool_call_id: 'call_2', name: 'save_note', status: 'denied' as const }]
    const loaded = chatReducer(initialChatState, { type: 'history_loaded', items: history })
    const withApprovals = chatReducer(loaded, { type: 'approvals_loaded', approvals: [{ id: note.id, name: note.name, arguments: note.arguments, message: 'Save?' }, { id: 'call_9', name: 'save_note', arguments: '{}', message: 'Save?' }] })
    expect(withApprovals.approvals.map((a) => a.id)).toEqual(['call_9'])
    const sent = chatReducer(withApprovals, { type: 'send_start', prompt: 'something else', optimistic: true })
    expect(sent.approvals).toEqual([])
  })

  it('a turn stopped while a call streams: the call stays shown, no longer live', () => {
    const state = run([
      { type: 'tool_call_start', value: { id: 'call_1', name: 'calculator' } },
      { type: 'tool_call_args', value: { id: 'call_1', delta: '{"expr' } },
    ])
    const stopped = chatReducer(state, { type: 'aborted' })
    expect(stopped.liveToolCalls).toEqual([])
    expect(stopped.messages[1]?.item.tool_calls?.[0]?.arguments).toBe('{"expr')
  })
})

describe('chatReducer, reset', () => {
  it('keeps the state object when it is already the reset state (no render for nothing)', () => {
    const reset = chatReducer(initialChatState, { type: 'reset', loading: false })
    expect(reset).toBe(initialChatState)
    const loading = chatReducer(initialChatState, { type: 'reset', loading: true })
    expect(loading).not.toBe(initialChatState)
    expect(loading.historyLoading).toBe(true)
    expect(chatReducer(loading, { type: 'reset', loading: true })).toBe(loading)
  })

  it('makes a new state when anything differs from the reset state', () => {
    const shown = chatReducer(initialChatState, { type: 'history_loaded', items: [user('hi')] })
    const reset = chatReducer(shown, { type: 'reset', loading: false })
    expect(reset).not.toBe(shown)
    expect(reset.messages).toEqual([])
    expect(reset.historyLoading).toBe(false)
  })
})
