import { afterEach, describe, expect, it, vi } from 'vitest'
import { ApiClient } from './api'
import type { ChatState } from './chatState'
import { TurnController, type Conversation, type TurnCallbacks } from './turns'
import type { ChatEvent, ChatItem } from './types'
import { controlledStream, fakeFetch, jsonResponse, sse, streamResponse, type Route } from '../test/sse'

const user = (content: string): ChatItem => ({ role: 'user', content, type: 'text', mode: null, model: null, interrupted: false, reasoning: null })
const answer = (content: string, extra: Partial<ChatItem> = {}): ChatItem => ({
  role: 'assistant',
  content,
  type: 'text',
  mode: 'answer_question',
  model: 'demo',
  interrupted: false,
  reasoning: null,
  ...extra,
})
const message = (content: string): ChatEvent => ({
  type: 'message',
  value: { item: answer(content), mode: 'answer_question', model: 'demo', ttft_ms: 42, deltas: 2, sequence_id: 4, path: ['prompt', 'answer_question'], usage: null },
})
const stoppedEvent: ChatEvent = { type: 'error', value: { code: 'stopped', message: 'The answer was stopped.', retryable: true } }
const started = (turn: string) => sse({ type: 'turn_started', value: { turn } })

const opened: TurnController[] = []
afterEach(() => {
  for (const turns of opened.splice(0)) turns.close()
})

/**
 * A TurnController showing conversation `app1` of project `proj` (new unless said otherwise),
 * talking to `routes`; `states` is every state it told its subscribers of.
 */
function show(routes: Record<string, Route>, conversation: Partial<Omit<Conversation, 'client'>> = {}, callbacks: TurnCallbacks = {}) {
  const { fetch, calls } = fakeFetch(routes)
  const turns = new TurnController()
  opened.push(turns)
  const states: ChatState[] = []
  turns.subscribe(() => states.push(turns.getSnapshot()))
  turns.setCallbacks(callbacks)
  turns.open({ client: new ApiClient({ fetchImpl: fetch }), project: 'proj', appId: 'app1', isNew: true, ...conversation })
  return {
    turns,
    calls,
    states,
    get state() {
      return turns.getSnapshot()
    },
    get contents() {
      return turns.getSnapshot().messages.map((m) => m.item.content)
    },
  }
}

/** How many times the state left `streaming` (a turn's end put into the state). */
const ends = (states: ChatState[]) => states.filter((s, i) => i > 0 && states[i - 1]?.status === 'streaming' && s.status !== 'streaming').length

describe('TurnController', () => {
  it('a normal turn: the prompt at once, the answer as it streams, then its message; the end once', async () => {
    const stream = controlledStream()
    const onTurnEnd = vi.fn()
    const ensureConversation = vi.fn(async () => undefined)
    const t = show({ 'POST /response/proj/app1': () => stream.response }, {}, { onTurnEnd, ensureConversation })

    const sent = t.turns.send('Hi')
    expect(t.state.status).toBe('streaming')
    expect(t.contents).toEqual(['Hi'])
    stream.push({ type: 'chat_history', value: [] }, 'a.0')
    stream.push({ type: 'action', value: { action: 'answer_question', sequence_id: 3 } }, 'a.1')
    stream.push({ type: 'delta', value: 'Hel' }, 'a.2')
    stream.push({ type: 'delta', value: 'lo' }, 'a.3')
    await vi.waitFor(() => expect(t.state.streamingText).toBe('Hello'))
    expect(t.state.activeAction).toBe('answer_question')
    expect(onTurnEnd).not.toHaveBeenCalled()

    stream.push(message('Hello'), 'a.4')
    stream.close()
    expect(await sent).toBe(true)
    expect(t.state).toMatchObject({ status: 'idle', streamingText: '', error: null, activeAction: null, lastPrompt: 'Hi' })
    expect(t.contents).toEqual(['Hi', 'Hello'])
    expect(t.state.messages[1]?.meta?.ttft_ms).toBe(42)
    expect(ensureConversation).toHaveBeenCalledWith('app1')
    expect(onTurnEnd).toHaveBeenCalledTimes(1)
    expect(ends(t.states)).toBe(1)
    expect(t.calls.map((c) => [c.method, c.path, c.body])).toEqual([['POST', '/response/proj/app1', { prompt: 'Hi' }]])
  })

  it('an error event: the error shown, the partial answer kept as interrupted; Retry sends the prompt again', async () => {
    let posts = 0
    const onTurnEnd = vi.fn()
    const t = show(
      {
        'POST /response/proj/app1': () =>
          ++posts === 1
            ? streamResponse([
                sse({ type: 'chat_history', value: [] }),
                sse({ type: 'delta', value: 'Half' }),
                sse({ type: 'error', value: { code: 'upstream_timeout', message: 'The model timed out.', retryable: true } }),
              ])
            : jsonResponse({ detail: 'A reply is already streaming.' }, 409),
      },
      {},
      { onTurnEnd },
    )
    expect(await t.turns.send('Q')).toBe(true)
    expect(t.state.status).toBe('error')
    expect(t.state.error).toEqual({ code: 'upstream_timeout', message: 'The model timed out.', retryable: true })
    expect(t.state.messages.map((m) => [m.item.content, m.item.interrupted])).toEqual([
      ['Q', false],
      ['Half', true],
    ])

    // A refusal before any event: the server's detail, and nothing added.
    expect(await t.turns.retry()).toBe(true)
    expect(t.state.error).toEqual({ code: 'http_409', message: 'A reply is already streaming.', retryable: true })
    expect(t.contents).toEqual(['Q', 'Half'])
    expect(t.calls.map((c) => c.body)).toEqual([{ prompt: 'Q' }, { prompt: 'Q' }])
    expect(onTurnEnd).toHaveBeenCalledTimes(2)
  })

  it('stop: the stream closed, the server told, what arrived kept as stopped, no reattach', async () => {
    const stream = controlledStream()
    const t = show({
      'POST /response/proj/app1': () => stream.response,
      'POST /stop/proj/app1': () => jsonResponse({ stopped: true }),
    })
    const sent = t.turns.send('Tell me')
    stream.push({ type: 'chat_history', value: [] }, 's.0')
    stream.push({ type: 'delta', value: 'Once upon' }, 's.5')
    await vi.waitFor(() => expect(t.state.streamingText).toBe('Once upon'))

    t.turns.stop()
    expect(await sent).toBe(true)
    expect(stream.cancelled).toBe(true)
    expect(t.state).toMatchObject({ status: 'idle', error: null, streamingText: '', stoppedEarly: false })
    expect(t.state.messages[1]).toMatchObject({ item: { content: 'Once upon', interrupted: true }, stopped: true })
    expect(t.calls.map((c) => `${c.method} ${c.path}`)).toEqual(['POST /response/proj/app1', 'POST /stop/proj/app1'])
    t.turns.stop() // nothing streams: nothing to stop
    expect(t.calls).toHaveLength(2)
  })

  it('reattaches after a dropped connection: GET /stream after the last event id, each event applied once', async () => {
    const first = controlledStream()
    const second = controlledStream()
    const lastIds: (string | null)[] = []
    const t = show({
      'POST /response/proj/app1': () => first.response,
      'GET /stream/proj/app1': (init) => {
        lastIds.push(new Headers(init?.headers).get('Last-Event-ID'))
        return second.response
      },
    })
    const sent = t.turns.send('Tell me')
    first.push({ type: 'chat_history', value: [] }, 'tt.0')
    first.push({ type: 'delta', value: 'Once upon ' }, 'tt.6')
    first.push({ type: 'delta', value: 'a time' }, 'tt.7')
    await vi.waitFor(() => expect(t.state.streamingText).toBe('Once upon a time'))

    first.fail(new TypeError('network error'))
    await vi.waitFor(() => expect(lastIds).toEqual(['tt.7']))
    expect(t.state.status).toBe('streaming') // no failure shown while reattaching
    second.push({ type: 'delta', value: ', there was' }, 'tt.8')
    second.push(message('Once upon a time, there was'), 'tt.9')
    second.close()
    expect(await sent).toBe(true)

    expect(t.state).toMatchObject({ status: 'idle', error: null })
    expect(t.contents).toEqual(['Tell me', 'Once upon a time, there was'])
    // The text only ever grew along the answer: nothing was applied twice.
    const texts = t.states.map((s) => s.streamingText).filter(Boolean)
    expect(texts).toEqual(['Once upon a time', 'Once upon a time, there was'])
    expect(ends(t.states)).toBe(1)
  })

  it("follows a turn another tab started: the history again, then its answer as it streams", async () => {
    const events = controlledStream()
    const replay = controlledStream()
    let history = [user('Q'), answer('A')]
    const onTurnEnd = vi.fn()
    const t = show(
      {
        'GET /history/proj/old': () => jsonResponse(history),
        'GET /events/proj/old': () => events.response,
        'GET /stream/proj/old': () => (history.length === 2 ? jsonResponse({ detail: 'none' }, 404) : replay.response),
      },
      { appId: 'old', isNew: false },
      { onTurnEnd },
    )
    expect(t.state.historyLoading).toBe(true)
    t.turns.follow()
    await vi.waitFor(() => expect(t.calls.filter((c) => c.path === '/stream/proj/old')).toHaveLength(1)) // on open: nothing streams
    expect(t.contents).toEqual(['Q', 'A'])

    history = [user('Q'), answer('A'), user('Q2')] // the other tab's prompt is saved
    events.push(started('other'))
    await vi.waitFor(() => expect(t.calls.filter((c) => c.path === '/stream/proj/old')).toHaveLength(2))
    replay.push({ type: 'chat_history', value: [user('Q'), answer('A')] }, 'other.0')
    replay.push({ type: 'delta', value: 'Live ' }, 'other.6')
    await vi.waitFor(() => expect(t.state.streamingText).toBe('Live '))
    expect(t.state.status).toBe('streaming')
    expect(t.contents).toEqual(['Q', 'A', 'Q2'])

    replay.push(message('Live answer'), 'other.8')
    replay.close()
    await vi.waitFor(() => expect(t.state.status).toBe('idle'))
    expect(t.contents).toEqual(['Q', 'A', 'Q2', 'Live answer'])
    expect(onTurnEnd).toHaveBeenCalledTimes(1)
    // News of the turn it follows now is not followed again.
    events.push(started('other'))
    await new Promise((resolve) => setTimeout(resolve, 30))
    expect(t.calls.filter((c) => c.path === '/history/proj/old')).toHaveLength(2)
  })

  it('a new prompt while an answer streams interrupts it: kept as stopped, then the new turn (if_busy=interrupt)', async () => {
    const first = controlledStream()
    const second = controlledStream()
    const onTurnEnd = vi.fn()
    let posts = 0
    const t = show({ 'POST /response/proj/app1': () => (++posts === 1 ? first.response : second.response) }, {}, { onTurnEnd })
    const one = t.turns.send('one')
    first.push({ type: 'chat_history', value: [] }, 't1.0')
    first.push({ type: 'delta', value: 'Part' }, 't1.5')
    await vi.waitFor(() => expect(t.state.streamingText).toBe('Part'))

    const two = t.turns.send('two')
    expect(await one).toBe(true)
    expect(first.cancelled).toBe(true)
    expect(t.state.status).toBe('streaming')
    expect(t.state.messages.map((m) => [m.item.content, m.stopped ?? false])).toEqual([
      ['one', false],
      ['Part', true],
      ['two', false],
    ])
    expect(t.calls.map((c) => [c.path, c.body])).toEqual([
      ['/response/proj/app1', { prompt: 'one' }],
      ['/response/proj/app1?if_busy=interrupt', { prompt: 'two' }],
    ])

    // A late event of the first turn changes nothing.
    first.close()
    second.push({ type: 'chat_history', value: [user('one'), answer('Part and more', { interrupted: true })], start: 0 }, 't2.0')
    second.push(message('Second answer'), 't2.9')
    second.close()
    expect(await two).toBe(true)
    expect(t.state.messages.map((m) => [m.item.content, m.stopped ?? false])).toEqual([
      ['one', false],
      ['Part and more', true],
      ['two', false],
      ['Second answer', false],
    ])
    expect(onTurnEnd).toHaveBeenCalledTimes(2) // once for each turn
  })

  it('a prompt while an answer streams is not sent when it must not interrupt (Regenerate, Retry)', async () => {
    const stream = controlledStream()
    const t = show({ 'POST /response/proj/app1': () => stream.response })
    void t.turns.send('one')
    expect(await t.turns.regenerate()).toBe(false)
    expect(await t.turns.retry()).toBe(false)
    expect(t.state.status).toBe('streaming')
    expect(t.calls).toHaveLength(1)
  })

  it('ends a turn once, however many things end it at the same time, and then catches up once', async () => {
    const events = controlledStream()
    const replay = controlledStream()
    const mine = controlledStream()
    let historyReads = 0
    const onTurnEnd = vi.fn()
    const t = show(
      {
        'GET /history/proj/old': () => {
          historyReads += 1
          return jsonResponse(historyReads === 1 ? [user('Q'), answer('A'), user('Q2')] : [user('Q'), answer('A'), user('Q2'), answer('Par', { interrupted: true })])
        },
        'GET /events/proj/old': () => events.response,
        'GET /stream/proj/old': () => (historyReads === 1 ? replay.response : jsonResponse({ detail: 'none' }, 404)),
        'POST /stop/proj/old': () => jsonResponse({ stopped: true }),
        'POST /response/proj/old': () => mine.response,
      },
      { appId: 'old', isNew: false },
      { onTurnEnd },
    )
    t.turns.follow()
    // Opened mid-answer: the answer streaming there is shown as it goes on.
    await vi.waitFor(() => expect(t.calls.some((c) => c.path === '/stream/proj/old')).toBe(true))
    replay.push({ type: 'chat_history', value: [user('Q'), answer('A')] }, 'x.0')
    replay.push({ type: 'delta', value: 'Par' }, 'x.4')
    await vi.waitFor(() => expect(t.state.streamingText).toBe('Par'))
    events.push(started('y')) // another tab's turn, while this one streams: caught up on after it
    await new Promise((resolve) => setTimeout(resolve, 20))
    expect(historyReads).toBe(1)

    // The server's "stopped" arrives as the user stops it, and the stream closes.
    replay.push(stoppedEvent, 'x.5')
    t.turns.stop()
    replay.close()
    await vi.waitFor(() => expect(historyReads).toBe(2))
    await new Promise((resolve) => setTimeout(resolve, 30))

    expect(onTurnEnd).toHaveBeenCalledTimes(1)
    expect(ends(t.states)).toBe(1)
    expect(historyReads).toBe(2)
    expect(t.state.status).toBe('idle')
    expect(t.state.messages.map((m) => [m.item.content, m.stopped ?? false])).toEqual([
      ['Q', false],
      ['A', false],
      ['Q2', false],
      ['Par', true],
    ])

    // The same for a turn sent from this page.
    const sent = t.turns.send('Q3')
    mine.push({ type: 'chat_history', value: [user('Q2'), answer('Par', { interrupted: true })], start: 2 }, 'z.0')
    mine.push({ type: 'delta', value: 'Th' }, 'z.3')
    await vi.waitFor(() => expect(t.state.streamingText).toBe('Th'))
    mine.push(stoppedEvent, 'z.4')
    t.turns.stop()
    mine.close()
    expect(await sent).toBe(true)
    await new Promise((resolve) => setTimeout(resolve, 30))
    expect(onTurnEnd).toHaveBeenCalledTimes(2)
    expect(ends(t.states)).toBe(2)
    expect(t.state.messages.map((m) => [m.item.content, m.stopped ?? false])).toEqual([
      ['Q', false],
      ['A', false],
      ['Q2', false],
      ['Par', true],
      ['Q3', false],
      ['Th', true],
    ])
    expect(t.calls.filter((c) => c.method === 'POST').map((c) => c.path)).toEqual(['/stop/proj/old', '/response/proj/old?history_after=2', '/stop/proj/old'])
  })
})

describe('TurnController, tool approval', () => {
  const note = { id: 'call_n', name: 'save_note', arguments: '{"text": "milk"}', needs_approval: true }
  const halted = answer('Let me save it. ', { tool_calls: [note] })
  const request = { id: 'call_n', name: 'save_note', arguments: note.arguments, message: 'Save a note?' }
  const history = [user('remember milk'), halted]

  it('after a reload the waiting call is listed; approving streams the answer that goes on, as a turn', async () => {
    const stream = controlledStream()
    let waiting = [request]
    const onTurnEnd = vi.fn()
    const t = show(
      {
        'GET /history/proj/old': () => jsonResponse(history),
        'GET /stream/proj/old': () => jsonResponse({ detail: 'none' }, 404),
        'GET /approvals/proj/old': () => jsonResponse(waiting),
        'POST /approve/proj/old': () => stream.response,
      },
      { appId: 'old', isNew: false },
      { onTurnEnd },
    )
    await vi.waitFor(() => expect(t.state.approvals).toEqual([request]))

    const approving = t.turns.approve('call_n', true, '  ')
    expect(t.state.status).toBe('streaming')
    expect(t.state.approvals).toEqual([])
    await vi.waitFor(() => expect(t.calls.some((c) => c.method === 'POST')).toBe(true))
    const post = t.calls.find((c) => c.method === 'POST')
    expect(post).toEqual({ method: 'POST', path: '/approve/proj/old', body: { tool_call_id: 'call_n', approved: true, reason: null } })

    stream.push({ type: 'chat_history', value: history }, 'ap.0')
    stream.push({ type: 'action', value: { action: 'tool_approval', sequence_id: 7 } }, 'ap.1')
    stream.push({ type: 'tool_result', value: { id: 'call_n', name: 'save_note', result: '{"saved": true}', duration_ms: 2 } }, 'ap.2')
    stream.push({ type: 'delta', value: 'Saved.' }, 'ap.3')
    await vi.waitFor(() => expect(t.state.streamingText).toBe('Saved.'))
    expect(t.state.activeAction).toBe('tool_approval')
    waiting = []
    stream.push(message('Saved.'), 'ap.4')
    stream.close()
    expect(await approving).toBe(true)
    expect(t.state.messages.map((m) => m.item.role)).toEqual(['user', 'assistant', 'tool', 'assistant'])
    expect(t.state.messages[2]?.item).toMatchObject({ status: 'ok', tool_call_id: 'call_n' })
    expect(t.state.status).toBe('idle')
    expect(onTurnEnd).toHaveBeenCalledTimes(1)
    // Not while a turn streams: one at a time.
    const busy = controlledStream()
    const again = show({ 'POST /response/proj/app1': () => busy.response })
    void again.turns.send('hello')
    expect(await again.turns.approve('call_n', true)).toBe(false)
  })

  it('an approval refused by the server (answered in another tab: 409) is shown without Retry, and the waiting calls are read again', async () => {
    let approvalsRead = 0
    const t = show(
      {
        'GET /history/proj/old': () => jsonResponse(history),
        'GET /stream/proj/old': () => jsonResponse({ detail: 'none' }, 404),
        'GET /approvals/proj/old': () => {
          approvalsRead += 1
          return jsonResponse(approvalsRead === 1 ? [request] : [])
        },
        'POST /approve/proj/old': () => jsonResponse({ detail: 'The tool call call_n is not waiting for approval.' }, 409),
      },
      { appId: 'old', isNew: false },
    )
    await vi.waitFor(() => expect(t.state.approvals).toHaveLength(1))
    expect(await t.turns.approve('call_n', false, 'no thanks')).toBe(true)
    expect(t.calls.find((c) => c.method === 'POST')?.body).toEqual({ tool_call_id: 'call_n', approved: false, reason: 'no thanks' })
    expect(t.state.status).toBe('error')
    expect(t.state.error).toMatchObject({ code: 'http_409', retryable: false })
    await vi.waitFor(() => expect(approvalsRead).toBe(2))
    expect(t.state.approvals).toEqual([])
  })

  it("another tab's turn ended: the history and the waiting calls are read again, and the page is told", async () => {
    const events = controlledStream()
    let answered = false
    const onTurnEnd = vi.fn()
    const t = show(
      {
        'GET /history/proj/old': () =>
          jsonResponse(answered ? [...history, { ...user('Saved'), role: 'tool', tool_call_id: 'call_n', name: 'save_note', status: 'ok' }, answer('Done.')] : history),
        'GET /stream/proj/old': () => jsonResponse({ detail: 'none' }, 404),
        'GET /approvals/proj/old': () => jsonResponse(answered ? [] : [request]),
        'GET /events/proj/old': () => events.response,
      },
      { appId: 'old', isNew: false },
      { onTurnEnd },
    )
    t.turns.follow()
    await vi.waitFor(() => expect(t.state.approvals).toHaveLength(1))
    answered = true
    events.push(sse({ type: 'turn_ended', value: { turn: 'other' } }))
    await vi.waitFor(() => expect(t.contents).toEqual(['remember milk', 'Let me save it. ', 'Saved', 'Done.']))
    await vi.waitFor(() => expect(onTurnEnd).toHaveBeenCalledTimes(1))
    expect(t.state.approvals).toEqual([])
  })

  it("the end of another tab's turn this page only read (its answer was in the history) is told too: the notes may have changed", async () => {
    const events = controlledStream()
    let historyReads = 0
    const onTurnEnd = vi.fn()
    const t = show(
      {
        'GET /history/proj/old': () => {
          historyReads += 1
          return jsonResponse([...history, { ...user('{}'), role: 'tool', tool_call_id: 'call_n', name: 'save_note', status: 'ok' }, answer('Saved.')])
        },
        'GET /stream/proj/old': () =>
          streamResponse([sse({ type: 'chat_history', value: history }, 'w.0'), sse({ type: 'tool_result', value: { id: 'call_n', name: 'save_note', result: '{}', duration_ms: 1 } }, 'w.1'), sse(message('Saved.'), 'w.2')]),
        'GET /approvals/proj/old': () => jsonResponse([]),
        'GET /events/proj/old': () => events.response,
      },
      { appId: 'old', isNew: false },
      { onTurnEnd },
    )
    t.turns.follow()
    await vi.waitFor(() => expect(t.calls.filter((c) => c.path === '/approvals/proj/old')).toHaveLength(1))
    expect(onTurnEnd).not.toHaveBeenCalled()
    events.push(sse({ type: 'turn_ended', value: { turn: 'w' } }))
    await vi.waitFor(() => expect(onTurnEnd).toHaveBeenCalledTimes(1))
    expect(historyReads).toBe(1)
  })
})
