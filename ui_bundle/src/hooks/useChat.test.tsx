import { act, renderHook, waitFor } from '@testing-library/react'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { useChat, type UseChat, type UseChatOptions } from './useChat'
import { ApiClient } from '../lib/api'
import type { ChatAction } from '../lib/chatState'
import { turnReader } from '../lib/turnReader'
import { controlledStream, fakeFetch, jsonResponse, sse, streamResponse } from '../test/sse'
import type { ChatEvent, ChatItem } from '../lib/types'

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

function message(content: string, path = ['prompt', 'check_safety', 'decide_mode', 'answer_question']): ChatEvent {
  return {
    type: 'message',
    value: { item: answer(content), mode: 'answer_question', model: 'demo', ttft_ms: 42, deltas: 2, sequence_id: 4, path, usage: null },
  }
}

/** The server's error event for an answer that was stopped. */
const stoppedEvent: ChatEvent = { type: 'error', value: { code: 'stopped', message: 'The answer was stopped.', retryable: true } }

type Stream = ReturnType<typeof controlledStream>

/**
 * Sends `prompt`, then pushes `events` (each with its SSE id, if any) into the answer's stream.
 * `sent` settles when the turn ends (kept in an object: awaiting it here would wait for that).
 */
async function startTurn(
  result: { current: UseChat },
  stream: Stream,
  prompt: string,
  events: [ChatEvent, string?][],
): Promise<{ sent: Promise<boolean> }> {
  let sent: Promise<boolean> = Promise.resolve(false)
  act(() => {
    sent = result.current.send(prompt)
  })
  await act(async () => {
    for (const [event, id] of events) stream.push(event, id)
  })
  return { sent }
}

/** One client per fake fetch: the hook sees the same API across renders. */
const clients = new WeakMap<typeof fetch, ApiClient>()
function clientFor(fetchImpl: typeof fetch): ApiClient {
  let client = clients.get(fetchImpl)
  if (!client) clients.set(fetchImpl, (client = new ApiClient({ fetchImpl })))
  return client
}

function setup(fetchImpl: typeof fetch, extra: Partial<UseChatOptions> = {}) {
  return renderHook((props: UseChatOptions) => useChat(props), {
    initialProps: { project: 'proj', appId: 'app1', isNew: true, client: clientFor(fetchImpl), ...extra },
  })
}

describe('useChat', () => {
  it('streams a turn: optimistic prompt, live text and action, then the final message', async () => {
    const stream = controlledStream()
    const { fetch, calls } = fakeFetch({ 'POST /response/proj/app1': () => stream.response })
    const onTurnEnd = vi.fn()
    const ensureConversation = vi.fn(async () => undefined)
    const { result } = setup(fetch, { onTurnEnd, ensureConversation })

    let sent: Promise<boolean> = Promise.resolve(false)
    act(() => {
      sent = result.current.send('Hi')
    })
    expect(result.current.status).toBe('streaming')
    expect(result.current.messages.map((m) => m.item)).toEqual([user('Hi')])

    await act(async () => {
      stream.push({ type: 'chat_history', value: [] })
      stream.push({ type: 'action', value: { action: 'decide_mode', sequence_id: 2 } })
      stream.push({ type: 'mode', value: 'answer_question' })
      stream.push({ type: 'delta', value: 'Hel' })
    })
    await waitFor(() => expect(result.current.streamingText).toBe('Hel'))
    expect(result.current.activeAction).toBe('decide_mode')
    expect(result.current.mode).toBe('answer_question')
    expect(result.current.messages).toHaveLength(1) // chat_history did not add the prompt twice

    await act(async () => {
      stream.push({ type: 'delta', value: 'lo' })
      stream.push(message('Hello'))
      stream.close()
      await sent
    })
    expect(result.current.status).toBe('idle')
    expect(result.current.streamingText).toBe('')
    expect(result.current.activeAction).toBeNull()
    expect(result.current.path).toEqual(['prompt', 'check_safety', 'decide_mode', 'answer_question'])
    expect(result.current.messages.map((m) => m.item)).toEqual([user('Hi'), answer('Hello')])
    expect(result.current.messages[1]?.meta?.ttft_ms).toBe(42)
    expect(result.current.canRegenerate).toBe(true)
    expect(ensureConversation).toHaveBeenCalledWith('app1')
    expect(onTurnEnd).toHaveBeenCalledTimes(1)
    expect(calls.find((c) => c.method === 'POST')?.body).toEqual({ prompt: 'Hi' })
  })

  it('keeps a partial answer as interrupted on an error event, and Retry resends the same prompt', async () => {
    let turn = 0
    const { fetch, calls } = fakeFetch({
      'POST /response/proj/app1': () => {
        turn += 1
        if (turn === 1) {
          return streamResponse([
            sse({ type: 'chat_history', value: [] }),
            sse({ type: 'delta', value: 'Half an ans' }),
            sse({ type: 'error', value: { code: 'upstream_timeout', message: 'The model timed out.', retryable: true } }),
          ])
        }
        // The server kept the prompt and the partial answer.
        return streamResponse([
          sse({ type: 'chat_history', value: [user('Q'), answer('Half an ans', { interrupted: true })] }),
          sse({ type: 'delta', value: 'Full answer' }),
          sse(message('Full answer')),
        ])
      },
    })
    const { result } = setup(fetch)
    await act(async () => {
      await result.current.send('Q')
    })
    expect(result.current.status).toBe('error')
    expect(result.current.error).toEqual({ code: 'upstream_timeout', message: 'The model timed out.', retryable: true })
    expect(result.current.messages.map((m) => m.item)).toEqual([user('Q'), answer('Half an ans', { interrupted: true, mode: null, model: null })])

    await act(async () => {
      await result.current.retry()
    })
    const posts = calls.filter((c) => c.method === 'POST')
    expect(posts.map((c) => c.body)).toEqual([{ prompt: 'Q' }, { prompt: 'Q' }])
    expect(result.current.status).toBe('idle')
    expect(result.current.error).toBeNull()
    expect(result.current.messages.map((m) => m.item.content)).toEqual(['Q', 'Half an ans', 'Q', 'Full answer'])
  })

  it('does not show the prompt twice when the server treats a resend as a retry', async () => {
    let turn = 0
    const { fetch } = fakeFetch({
      'POST /response/proj/app1': () => {
        turn += 1
        if (turn === 1) return jsonResponse({ detail: 'The model is not configured.' }, 503)
        return streamResponse([sse({ type: 'chat_history', value: [user('Q')] }), sse(message('A'))])
      },
    })
    const { result } = setup(fetch)
    await act(async () => {
      await result.current.send('Q')
    })
    expect(result.current.error).toEqual({ code: 'http_503', message: 'The model is not configured.', retryable: true })
    await act(async () => {
      await result.current.retry()
    })
    expect(result.current.messages.map((m) => m.item.content)).toEqual(['Q', 'A'])
  })

  it('reports a 429 (a per-client limit) with the server detail, retryable', async () => {
    let turn = 0
    const detail = 'You have 16 answers running already (the limit per client); try again soon.'
    const { fetch } = fakeFetch({
      'POST /response/proj/app1': () => {
        turn += 1
        if (turn === 1) return jsonResponse({ detail }, 429)
        return streamResponse([sse({ type: 'chat_history', value: [user('Q')] }), sse(message('A'))])
      },
    })
    const { result } = setup(fetch)
    await act(async () => {
      await result.current.send('Q')
    })
    expect(result.current.error).toEqual({ code: 'http_429', message: detail, retryable: true })
    await act(async () => {
      await result.current.retry()
    })
    expect(result.current.error).toBeNull()
    expect(result.current.messages.map((m) => m.item.content)).toEqual(['Q', 'A'])
  })

  it('reports a 422 with the server detail, not retryable', async () => {
    const { fetch } = fakeFetch({ 'POST /response/proj/app1': () => jsonResponse({ detail: 'The prompt has 40000 characters; the limit is 32000.' }, 422) })
    const { result } = setup(fetch)
    await act(async () => {
      await result.current.send('x')
    })
    expect(result.current.status).toBe('error')
    expect(result.current.error).toMatchObject({ code: 'http_422', retryable: false, message: 'The prompt has 40000 characters; the limit is 32000.' })
  })

  it('stop() ends the stream and keeps what arrived, marked interrupted', async () => {
    const stream = controlledStream()
    const { fetch } = fakeFetch({ 'POST /response/proj/app1': () => stream.response })
    const { result } = setup(fetch)
    const { sent } = await startTurn(result, stream, 'Tell me', [
      [{ type: 'chat_history', value: [] }],
      [{ type: 'delta', value: 'Once upon' }],
    ])
    await waitFor(() => expect(result.current.streamingText).toBe('Once upon'))
    await act(async () => {
      result.current.stop()
      await sent
    })
    expect(stream.cancelled).toBe(true)
    expect(result.current.status).toBe('idle')
    expect(result.current.error).toBeNull()
    const last = result.current.messages[result.current.messages.length - 1]?.item
    expect(last).toMatchObject({ role: 'assistant', content: 'Once upon', interrupted: true })
  })

  it('stop() asks the server to stop, and a prompt sent right after waits for it (no 409)', async () => {
    const first = controlledStream()
    const order: string[] = []
    let releaseStop: () => void = () => undefined
    const { fetch } = fakeFetch({
      'POST /response/proj/app1': () => {
        order.push('response')
        return order.filter((o) => o === 'response').length === 1
          ? first.response
          : streamResponse([sse({ type: 'chat_history', value: [] }), sse(message('Again'))])
      },
      'POST /stop/proj/app1': () =>
        new Promise<Response>((resolve) => {
          order.push('stop')
          releaseStop = () => {
            order.push('stopped')
            resolve(jsonResponse({ stopped: true }))
          }
        }),
    })
    const { result } = setup(fetch)
    const { sent } = await startTurn(result, first, 'one', [
      [{ type: 'chat_history', value: [] }],
      [{ type: 'delta', value: 'Part' }],
    ])
    await waitFor(() => expect(result.current.streamingText).toBe('Part'))
    await act(async () => {
      result.current.stop()
      await sent
    })
    expect(order).toEqual(['response', 'stop'])

    let second: Promise<boolean> = Promise.resolve(false)
    await act(async () => {
      second = result.current.regenerate()
      await new Promise((resolve) => setTimeout(resolve, 20))
    })
    expect(order).toEqual(['response', 'stop']) // held until the server has stopped
    await act(async () => {
      releaseStop()
      await second
    })
    expect(order).toEqual(['response', 'stop', 'stopped', 'response'])
    expect(result.current.status).toBe('idle')
    expect(result.current.messages[result.current.messages.length - 1]?.item.content).toBe('Again')
  })

  it('asks only for the history it does not have, and merges the server\'s from its start', async () => {
    const replies = ['A1', 'A2', 'A3']
    const { fetch, calls } = fakeFetch({
      'POST /response/proj/app1': (_init, url) => {
        const after = Number(new URL(url, 'http://x').searchParams.get('history_after') ?? 0)
        const server = [user('Q1'), answer('A1'), user('Q2'), answer('A2 as the server kept it')].slice(0, (3 - replies.length) * 2)
        return streamResponse([sse({ type: 'chat_history', value: server.slice(after), start: after }), sse(message(replies.shift() ?? ''))])
      },
    })
    const { result } = setup(fetch)
    for (const prompt of ['Q1', 'Q2', 'Q3']) {
      await act(async () => {
        await result.current.send(prompt)
      })
    }
    const asked = calls.filter((c) => c.method === 'POST').map((c) => c.path)
    expect(asked).toEqual(['/response/proj/app1', '/response/proj/app1', '/response/proj/app1?history_after=2'])
    // The last exchange came again and replaced what the page showed; the rest was kept.
    expect(result.current.messages.map((m) => m.item.content)).toEqual(['Q1', 'A1', 'Q2', 'A2 as the server kept it', 'Q3', 'A3'])
    expect(result.current.messages[1]?.meta?.ttft_ms).toBe(42) // a kept message keeps its details
  })

  it('regenerate() sends the last user prompt again', async () => {
    const { fetch, calls } = fakeFetch({
      'POST /response/proj/app1': () => streamResponse([sse({ type: 'chat_history', value: [] }), sse(message('A'))]),
    })
    const { result } = setup(fetch)
    await act(async () => {
      await result.current.send('Write a poem')
    })
    await act(async () => {
      await result.current.regenerate()
    })
    expect(calls.filter((c) => c.method === 'POST').map((c) => c.body)).toEqual([{ prompt: 'Write a poem' }, { prompt: 'Write a poem' }])
  })

  it('a prompt sent while an answer streams interrupts it: the partial is kept as stopped, then the new turn', async () => {
    const first = controlledStream()
    const second = controlledStream()
    const { fetch, calls } = fakeFetch({
      'POST /response/proj/app1': () => (calls.filter((c) => c.method === 'POST').length === 1 ? first.response : second.response),
    })
    const { result } = setup(fetch)
    const { sent } = await startTurn(result, first, 'one', [
      [{ type: 'chat_history', value: [] }, 't1.0'],
      [{ type: 'delta', value: 'Part' }, 't1.5'],
    ])
    await waitFor(() => expect(result.current.streamingText).toBe('Part'))
    let again: Promise<boolean> = Promise.resolve(false)
    act(() => {
      again = result.current.send('two')
    })
    await act(async () => {
      await sent
    })
    expect(first.cancelled).toBe(true)
    expect(result.current.status).toBe('streaming')
    expect(result.current.messages.map((m) => [m.item.content, m.stopped ?? false])).toEqual([
      ['one', false],
      ['Part', true],
      ['two', false],
    ])
    const posts = calls.filter((c) => c.method === 'POST')
    expect(posts.map((c) => [c.path, c.body])).toEqual([
      ['/response/proj/app1', { prompt: 'one' }],
      ['/response/proj/app1?if_busy=interrupt', { prompt: 'two' }],
    ])
    // The server kept more of the first answer than this page saw: its text, still shown as stopped.
    await act(async () => {
      second.push({ type: 'chat_history', value: [user('one'), answer('Part and more', { interrupted: true })], start: 0 }, 't2.0')
      second.push(message('Second answer'), 't2.9')
      second.close()
      expect(await again).toBe(true)
    })
    expect(result.current.status).toBe('idle')
    expect(result.current.messages.map((m) => [m.item.content, m.stopped ?? false])).toEqual([
      ['one', false],
      ['Part and more', true],
      ['two', false],
      ['Second answer', false],
    ])
  })

  it('loads the history of an existing conversation', async () => {
    const { fetch } = fakeFetch({ 'GET /history/proj/old': () => jsonResponse([user('Q'), answer('A')]) })
    const { result } = setup(fetch, { appId: 'old', isNew: false })
    await waitFor(() => expect(result.current.messages).toHaveLength(2))
    expect(result.current.messages[1]?.item.content).toBe('A')
    expect(result.current.canRegenerate).toBe(true)
  })
})

describe('turnReader', () => {
  afterEach(() => vi.unstubAllGlobals())

  it('applies the deltas of a frame as one update, and other events at once and in order', () => {
    const frames: FrameRequestCallback[] = []
    vi.stubGlobal('requestAnimationFrame', (callback: FrameRequestCallback) => frames.push(callback))
    vi.stubGlobal('cancelAnimationFrame', () => undefined)
    const actions: ChatAction[] = []
    const reader = turnReader({
      project: 'proj',
      appId: 'app1',
      client: new ApiClient(),
      signal: new AbortController().signal,
      isCurrent: () => true,
      dispatch: (action) => actions.push(action),
      prompt: 'Hi',
    })
    for (const piece of ['a', 'b', 'c', 'd']) reader.handle({ type: 'delta', value: piece }, undefined)
    expect(actions).toEqual([])
    expect(frames).toHaveLength(1)
    frames[0]!(0)
    expect(actions).toEqual([{ type: 'event', event: { type: 'delta', value: 'abcd' }, prompt: 'Hi' }])

    // An action event first hands on the text before it.
    reader.handle({ type: 'delta', value: 'e' }, undefined)
    reader.handle({ type: 'action', value: { action: 'answer_question', sequence_id: 3 } }, undefined)
    expect(actions.slice(1).map((a) => (a.type === 'event' ? a.event.type : a.type))).toEqual(['delta', 'action'])
  })
})

describe('useChat, a reasoning model\'s thinking', () => {
  afterEach(() => vi.unstubAllGlobals())

  const usage = { prompt_tokens: 20, completion_tokens: 100, total_tokens: 120, reasoning_tokens: 40 }

  it('joins the thinking of a frame into one update, handed on before the first delta', () => {
    const frames: FrameRequestCallback[] = []
    vi.stubGlobal('requestAnimationFrame', (callback: FrameRequestCallback) => frames.push(callback))
    vi.stubGlobal('cancelAnimationFrame', () => undefined)
    const actions: ChatAction[] = []
    const reader = turnReader({
      project: 'proj',
      appId: 'app1',
      client: new ApiClient(),
      signal: new AbortController().signal,
      isCurrent: () => true,
      dispatch: (action) => actions.push(action),
      prompt: 'Hi',
    })
    for (const piece of ['The ', 'user ', 'asks']) reader.handle({ type: 'reasoning', value: piece }, undefined)
    expect(actions).toEqual([])
    frames[0]!(0)
    expect(actions).toEqual([{ type: 'event', event: { type: 'reasoning', value: 'The user asks' }, prompt: 'Hi' }])

    // More thinking, the answer's deltas and its message within one frame: all in order.
    reader.handle({ type: 'reasoning', value: '.' }, undefined)
    reader.handle({ type: 'delta', value: 'Hel' }, undefined)
    reader.handle({ type: 'delta', value: 'lo' }, undefined)
    reader.handle({ type: 'error', value: { code: 'stopped', message: 'Stopped.', retryable: true } }, undefined)
    expect(actions.slice(1)).toEqual([
      { type: 'event', event: { type: 'reasoning', value: '.' }, prompt: 'Hi' },
      { type: 'event', event: { type: 'delta', value: 'Hello' }, prompt: 'Hi' },
      { type: 'event', event: { type: 'error', value: { code: 'stopped', message: 'Stopped.', retryable: true } }, prompt: 'Hi' },
    ])
  })

  it('streams the thinking before the text; the final message keeps it, with the usage', async () => {
    const stream = controlledStream()
    const { fetch } = fakeFetch({ 'POST /response/proj/app1': () => stream.response })
    const { result } = setup(fetch)
    const { sent } = await startTurn(result, stream, 'Hi', [
      [{ type: 'chat_history', value: [] }],
      [{ type: 'action', value: { action: 'answer_question', sequence_id: 3 } }],
      [{ type: 'reasoning', value: 'The user ' }],
      [{ type: 'reasoning', value: 'greets me.' }],
    ])
    await waitFor(() => expect(result.current.streamingReasoning).toBe('The user greets me.'))
    expect(result.current.streamingText).toBe('')

    await act(async () => {
      stream.push({ type: 'delta', value: 'Hel' })
    })
    await waitFor(() => expect(result.current.streamingText).toBe('Hel'))
    expect(result.current.streamingReasoning).toBe('The user greets me.')

    await act(async () => {
      stream.push({
        type: 'message',
        value: {
          item: answer('Hello', { reasoning: 'The user greets me.' }),
          mode: 'answer_question',
          model: 'demo',
          ttft_ms: 42,
          deltas: 1,
          sequence_id: 4,
          path: ['prompt', 'check_safety', 'decide_mode', 'answer_question'],
          usage,
        },
      })
      stream.close()
      await sent
    })
    expect(result.current.streamingReasoning).toBe('')
    expect(result.current.messages[1]?.item).toEqual(answer('Hello', { reasoning: 'The user greets me.' }))
    expect(result.current.messages[1]?.meta?.usage).toEqual(usage)
  })

  it('a message without the thinking (an older server) keeps what streamed', async () => {
    const { fetch } = fakeFetch({
      'POST /response/proj/app1': () =>
        streamResponse([
          sse({ type: 'chat_history', value: [] }),
          sse({ type: 'reasoning', value: 'Hmm.' }),
          sse({ type: 'delta', value: 'A' }),
          sse(message('A')),
        ]),
    })
    const { result } = setup(fetch)
    await act(async () => {
      await result.current.send('Q')
    })
    expect(result.current.messages[1]?.item).toMatchObject({ content: 'A', reasoning: 'Hmm.' })
    expect(result.current.messages[1]?.meta?.usage).toBeNull()
  })

  it('a stopped partial answer keeps its thinking, and the next turn starts without it', async () => {
    const stream = controlledStream()
    const { fetch } = fakeFetch({ 'POST /response/proj/app1': () => stream.response })
    const { result } = setup(fetch)
    const { sent } = await startTurn(result, stream, 'Tell me', [
      [{ type: 'chat_history', value: [] }],
      [{ type: 'reasoning', value: 'A story, then.' }],
      [{ type: 'delta', value: 'Once upon' }],
    ])
    await waitFor(() => expect(result.current.streamingText).toBe('Once upon'))
    await act(async () => {
      result.current.stop()
      await sent
    })
    expect(result.current.streamingReasoning).toBe('')
    expect(result.current.messages[1]).toMatchObject({
      item: { content: 'Once upon', interrupted: true, reasoning: 'A story, then.' },
      stopped: true,
    })
  })

  it('a failed partial answer keeps its thinking; one stopped while thinking keeps nothing, as the server', async () => {
    let turn = 0
    const { fetch } = fakeFetch({
      'POST /response/proj/app1': () => {
        turn += 1
        return turn === 1
          ? streamResponse([
              sse({ type: 'chat_history', value: [] }),
              sse({ type: 'reasoning', value: 'Think.' }),
              sse({ type: 'delta', value: 'Half' }),
              sse({ type: 'error', value: { code: 'upstream_timeout', message: 'The model timed out.', retryable: true } }),
            ])
          : streamResponse([
              sse({ type: 'chat_history', value: [user('Q'), answer('Half', { interrupted: true, reasoning: 'Think.' })], start: 0 }),
              sse({ type: 'reasoning', value: 'Again.' }),
              sse(stoppedEvent),
            ])
      },
    })
    const { result } = setup(fetch)
    await act(async () => {
      await result.current.send('Q')
    })
    expect(result.current.status).toBe('error')
    expect(result.current.messages[1]?.item).toMatchObject({ content: 'Half', interrupted: true, reasoning: 'Think.' })

    await act(async () => {
      await result.current.send('Q2')
    })
    expect(result.current.stoppedEarly).toBe(true)
    expect(result.current.streamingReasoning).toBe('')
    expect(result.current.messages.map((m) => [m.item.content, m.item.reasoning])).toEqual([
      ['Q', null],
      ['Half', 'Think.'],
      ['Q2', null],
    ])
  })
})

describe('useChat, reattaching to an answer', () => {
  it('picks a broken stream up after the last event id, without repeating text', async () => {
    const first = controlledStream()
    const second = controlledStream()
    const seenIds: (string | null)[] = []
    const { fetch, calls } = fakeFetch({
      'POST /response/proj/app1': () => first.response,
      'GET /stream/proj/app1': (init) => {
        seenIds.push(new Headers(init?.headers).get('Last-Event-ID'))
        return second.response
      },
    })
    const { result } = setup(fetch)
    const { sent } = await startTurn(result, first, 'Tell me', [
      [{ type: 'chat_history', value: [] }, 'tt.0'],
      [{ type: 'delta', value: 'Once upon ' }, 'tt.6'],
      [{ type: 'delta', value: 'a time' }, 'tt.7'],
    ])
    await waitFor(() => expect(result.current.streamingText).toBe('Once upon a time'))
    await act(async () => {
      first.fail(new TypeError('network error'))
    })
    await waitFor(() => expect(seenIds).toEqual(['tt.7']))
    expect(result.current.status).toBe('streaming') // no failure shown while reattaching
    await act(async () => {
      second.push({ type: 'delta', value: ', there was' }, 'tt.8')
      second.push(message('Once upon a time, there was'), 'tt.9')
      second.close()
      await sent
    })
    expect(result.current.status).toBe('idle')
    expect(result.current.error).toBeNull()
    expect(result.current.messages.map((m) => m.item.content)).toEqual(['Tell me', 'Once upon a time, there was'])
    expect(calls.filter((c) => c.method === 'POST' && c.path.startsWith('/response/'))).toHaveLength(1)
  })

  it('keeps the partial answer and offers Retry when there is nothing to reattach to (404)', async () => {
    const first = controlledStream()
    const { fetch, calls } = fakeFetch({ 'POST /response/proj/app1': () => first.response })
    const { result } = setup(fetch)
    const { sent } = await startTurn(result, first, 'Tell me', [
      [{ type: 'chat_history', value: [] }, 'tt.0'],
      [{ type: 'delta', value: 'Once' }, 'tt.6'],
    ])
    await act(async () => {
      first.fail(new TypeError('network error'))
      await sent
    })
    expect(calls.filter((c) => c.method === 'GET' && c.path === '/stream/proj/app1')).toHaveLength(1) // a 404 is not retried
    expect(result.current.status).toBe('error')
    expect(result.current.error).toMatchObject({ code: 'incomplete', retryable: true })
    expect(result.current.messages[1]?.item).toMatchObject({ content: 'Once', interrupted: true })
  })

  it('does not reattach after the user pressed Stop', async () => {
    const first = controlledStream()
    const { fetch, calls } = fakeFetch({
      'POST /response/proj/app1': () => first.response,
      'POST /stop/proj/app1': () => jsonResponse({ stopped: true }),
    })
    const { result } = setup(fetch)
    const { sent } = await startTurn(result, first, 'Tell me', [[{ type: 'delta', value: 'Once' }, 'tt.6']])
    await waitFor(() => expect(result.current.streamingText).toBe('Once'))
    await act(async () => {
      result.current.stop()
      await sent
    })
    expect(calls.some((c) => c.path.startsWith('/stream/'))).toBe(false)
    expect(result.current.messages[1]).toMatchObject({ item: { content: 'Once', interrupted: true }, stopped: true })
  })

  it('on load, shows the history only when nothing is streaming (404)', async () => {
    const { fetch, calls } = fakeFetch({ 'GET /history/proj/old': () => jsonResponse([user('Q'), answer('A')]) })
    const { result } = setup(fetch, { appId: 'old', isNew: false })
    await waitFor(() => expect(calls.some((c) => c.path === '/stream/proj/old')).toBe(true))
    await act(async () => {
      await new Promise((resolve) => setTimeout(resolve, 20))
    })
    expect(result.current.status).toBe('idle')
    expect(result.current.error).toBeNull()
    expect(result.current.messages.map((m) => m.item.content)).toEqual(['Q', 'A'])
    expect(calls.findIndex((c) => c.path.startsWith('/history/'))).toBeLessThan(calls.findIndex((c) => c.path.startsWith('/stream/')))
  })

  it('on load, shows an answer still being streamed as it goes on (the server replays the turn)', async () => {
    const replay = controlledStream()
    let lastEventId: string | null = 'unset'
    const { fetch } = fakeFetch({
      // The prompt is saved; its answer is still being written.
      'GET /history/proj/old': () => jsonResponse([user('Q'), answer('A'), user('Q2')]),
      'GET /stream/proj/old': (init) => {
        lastEventId = new Headers(init?.headers).get('Last-Event-ID')
        return replay.response
      },
    })
    const { result } = setup(fetch, { appId: 'old', isNew: false })
    await waitFor(() => expect(lastEventId).toBeNull())
    await act(async () => {
      replay.push({ type: 'chat_history', value: [user('Q'), answer('A')] }, 'tu.0')
      replay.push({ type: 'action', value: { action: 'answer_question', sequence_id: 3 } }, 'tu.1')
      replay.push({ type: 'delta', value: 'Everything so far' }, 'tu.9')
    })
    await waitFor(() => expect(result.current.streamingText).toBe('Everything so far'))
    expect(result.current.status).toBe('streaming')
    expect(result.current.activeAction).toBe('answer_question')
    expect(result.current.messages.map((m) => m.item.content)).toEqual(['Q', 'A', 'Q2'])
    await act(async () => {
      replay.push({ type: 'delta', value: ', and more.' }, 'tu.10')
      replay.push(message('Everything so far, and more.'), 'tu.11')
      replay.close()
    })
    await waitFor(() => expect(result.current.status).toBe('idle'))
    expect(result.current.messages.map((m) => m.item.content)).toEqual(['Q', 'A', 'Q2', 'Everything so far, and more.'])
    expect(result.current.canRegenerate).toBe(true)
  })

  it('on load, reads a finished turn already in the history quietly, marking a stopped answer', async () => {
    const { fetch } = fakeFetch({
      'GET /history/proj/old': () => jsonResponse([user('Q'), answer('Half', { interrupted: true })]),
      'GET /stream/proj/old': () =>
        streamResponse([
          sse({ type: 'chat_history', value: [] }, 'tv.0'),
          sse({ type: 'delta', value: 'Half' }, 'tv.6'),
          sse(stoppedEvent, 'tv.7'),
        ]),
    })
    const statuses: string[] = []
    const onTurnEnd = vi.fn()
    const { result } = renderHook(() => {
      const chat = useChat({ project: 'proj', appId: 'old', isNew: false, client: clientFor(fetch), onTurnEnd })
      statuses.push(chat.status)
      return chat
    })
    await waitFor(() => expect(result.current.messages[1]?.stopped).toBe(true))
    // The answer is in the history: it is not shown again as a turn.
    expect(statuses).not.toContain('streaming')
    expect(onTurnEnd).not.toHaveBeenCalled()
    expect(result.current.lastPrompt).toBeNull()
    expect(result.current.status).toBe('idle')
    expect(result.current.streamingText).toBe('')
    expect(result.current.error).toBeNull()
    expect(result.current.messages.map((m) => m.item.content)).toEqual(['Q', 'Half'])
  })
})

describe('useChat, a stopped answer', () => {
  it('shows the server\'s "stopped" as a stop, not a failure', async () => {
    const { fetch } = fakeFetch({
      'POST /response/proj/app1': () =>
        streamResponse([
          sse({ type: 'chat_history', value: [] }),
          sse({ type: 'delta', value: 'Part' }),
          sse(stoppedEvent),
        ]),
    })
    const { result } = setup(fetch)
    await act(async () => {
      await result.current.send('Q')
    })
    expect(result.current.status).toBe('idle')
    expect(result.current.error).toBeNull()
    expect(result.current.messages[1]).toMatchObject({ item: { content: 'Part', interrupted: true }, stopped: true })
    expect(result.current.canRegenerate).toBe(true)
  })

  it('stopped before any text: a note, and asking again resends the prompt', async () => {
    let turn = 0
    const { fetch, calls } = fakeFetch({
      'POST /response/proj/app1': () => {
        turn += 1
        return turn === 1
          ? streamResponse([
              sse({ type: 'chat_history', value: [] }),
              sse(stoppedEvent),
            ])
          : streamResponse([sse({ type: 'chat_history', value: [user('Q')] }), sse(message('A'))])
      },
    })
    const { result } = setup(fetch)
    await act(async () => {
      await result.current.send('Q')
    })
    expect(result.current.stoppedEarly).toBe(true)
    expect(result.current.status).toBe('idle')
    expect(result.current.messages.map((m) => m.item.content)).toEqual(['Q'])
    await act(async () => {
      await result.current.retry()
    })
    expect(calls.filter((c) => c.method === 'POST').map((c) => c.body)).toEqual([{ prompt: 'Q' }, { prompt: 'Q' }])
    expect(result.current.stoppedEarly).toBe(false)
    expect(result.current.messages.map((m) => m.item.content)).toEqual(['Q', 'A'])
  })
})

describe('useChat, a conversation open in two tabs', () => {
  const started = (turn: string) => sse({ type: 'turn_started', value: { turn } })

  it("shows another tab's prompt and follows its answer, without a reload and without repeating text", async () => {
    const events = controlledStream()
    const replay = controlledStream()
    let history = [user('Q'), answer('A')]
    const { fetch, calls } = fakeFetch({
      'GET /history/proj/old': () => jsonResponse(history),
      'GET /events/proj/old': () => events.response,
      'GET /stream/proj/old': () => (history.length === 2 ? jsonResponse({ detail: 'none' }, 404) : replay.response),
    })
    const { result } = setup(fetch, { appId: 'old', isNew: false })
    await waitFor(() => expect(result.current.messages).toHaveLength(2))
    await waitFor(() => expect(calls.some((c) => c.path === '/events/proj/old')).toBe(true))
    await waitFor(() => expect(calls.filter((c) => c.path === '/stream/proj/old')).toHaveLength(1))

    history = [user('Q'), answer('A'), user('Q2')] // the other tab's prompt is saved
    await act(async () => {
      events.push(started('other'))
    })
    await waitFor(() => expect(calls.filter((c) => c.path === '/history/proj/old')).toHaveLength(2))
    await act(async () => {
      replay.push({ type: 'chat_history', value: [user('Q'), answer('A')] }, 'other.0')
      replay.push({ type: 'delta', value: 'Live ' }, 'other.6')
    })
    await waitFor(() => expect(result.current.streamingText).toBe('Live '))
    expect(result.current.status).toBe('streaming')
    expect(result.current.messages.map((m) => m.item.content)).toEqual(['Q', 'A', 'Q2'])
    await act(async () => {
      replay.push({ type: 'delta', value: 'answer' }, 'other.7')
      replay.push(message('Live answer'), 'other.8')
      replay.close()
    })
    await waitFor(() => expect(result.current.status).toBe('idle'))
    expect(result.current.messages.map((m) => m.item.content)).toEqual(['Q', 'A', 'Q2', 'Live answer'])
  })

  it("follows another tab's answer whose chat_history starts at that tab's history_after", async () => {
    const replay = controlledStream()
    const { fetch, calls } = fakeFetch({
      'GET /history/proj/old': () => jsonResponse([user('Q'), answer('A'), user('Q2')]),
      'GET /stream/proj/old': () => replay.response,
    })
    const { result } = setup(fetch, { appId: 'old', isNew: false, live: false })
    await waitFor(() => expect(calls.some((c) => c.path === '/stream/proj/old')).toBe(true))
    await act(async () => {
      // The other tab had Q and A, and asked for the history from message 1 on.
      replay.push({ type: 'chat_history', value: [answer('A')], start: 1 }, 'other.0')
      replay.push({ type: 'delta', value: 'Live ' }, 'other.6')
    })
    await waitFor(() => expect(result.current.streamingText).toBe('Live '))
    expect(result.current.status).toBe('streaming')
    await act(async () => {
      replay.push(message('Live answer'), 'other.8')
      replay.close()
    })
    await waitFor(() => expect(result.current.status).toBe('idle'))
    expect(result.current.messages.map((m) => m.item.content)).toEqual(['Q', 'A', 'Q2', 'Live answer'])
  })

  it('asks GET /stream again while it still serves the turn before the one announced', async () => {
    const events = controlledStream()
    const live = controlledStream()
    let streams = 0
    const { fetch, calls } = fakeFetch({
      'GET /history/proj/old': () => jsonResponse(streams === 0 ? [user('Q'), answer('A')] : [user('Q'), answer('A'), user('Q2')]),
      'GET /events/proj/old': () => events.response,
      'GET /stream/proj/old': () => {
        streams += 1
        if (streams === 1) return jsonResponse({ detail: 'none' }, 404)
        if (streams === 2) return streamResponse([sse({ type: 'chat_history', value: [] }, 'before.0'), sse(message('A'), 'before.9')])
        return live.response
      },
    })
    const { result } = setup(fetch, { appId: 'old', isNew: false })
    await waitFor(() => expect(streams).toBe(1))
    await act(async () => {
      events.push(started('next'))
    })
    await waitFor(() => expect(streams).toBe(3))
    await act(async () => {
      live.push({ type: 'chat_history', value: [user('Q'), answer('A')] }, 'next.0')
      live.push({ type: 'delta', value: 'New' }, 'next.6')
    })
    await waitFor(() => expect(result.current.streamingText).toBe('New'))
    expect(result.current.messages.map((m) => m.item.content)).toEqual(['Q', 'A', 'Q2'])
    expect(calls.filter((c) => c.path === '/history/proj/old')).toHaveLength(2)
  })

  it('ignores the news of its own turn, even when it comes before the answer names its turn', async () => {
    const events = controlledStream()
    const stream = controlledStream()
    const { fetch, calls } = fakeFetch({
      'GET /history/proj/old': () => jsonResponse([]),
      'GET /stream/proj/old': () => jsonResponse({ detail: 'none' }, 404),
      'GET /events/proj/old': () => events.response,
      'POST /response/proj/old': () => stream.response,
    })
    const { result } = setup(fetch, { appId: 'old', isNew: false })
    await waitFor(() => expect(calls.some((c) => c.path === '/events/proj/old')).toBe(true))
    await waitFor(() => expect(calls.some((c) => c.path === '/stream/proj/old')).toBe(true))
    let sent: Promise<boolean> = Promise.resolve(false)
    act(() => {
      sent = result.current.send('Mine')
    })
    await act(async () => {
      events.push(started('mine')) // before the answer's first event
      stream.push({ type: 'chat_history', value: [] }, 'mine.0')
      stream.push(message('My answer'), 'mine.9')
      stream.close()
      await sent
    })
    await act(async () => {
      events.push(started('mine'))
      await new Promise((resolve) => setTimeout(resolve, 30))
    })
    expect(calls.filter((c) => c.path === '/history/proj/old')).toHaveLength(1)
    expect(calls.filter((c) => c.path === '/stream/proj/old')).toHaveLength(1)
    expect(result.current.messages.map((m) => m.item.content)).toEqual(['Mine', 'My answer'])
  })

  it('catches up after its own turn with a turn another tab started meanwhile', async () => {
    const events = controlledStream()
    const stream = controlledStream()
    const { fetch, calls } = fakeFetch({
      'GET /history/proj/old': () => jsonResponse(calls.some((c) => c.method === 'POST') ? [user('Mine'), answer('Cut', { interrupted: true }), user('Theirs')] : []),
      'GET /stream/proj/old': () => jsonResponse({ detail: 'none' }, 404),
      'GET /events/proj/old': () => events.response,
      'POST /response/proj/old': () => stream.response,
    })
    const { result } = setup(fetch, { appId: 'old', isNew: false })
    await waitFor(() => expect(calls.some((c) => c.path === '/stream/proj/old')).toBe(true))
    let sent: Promise<boolean> = Promise.resolve(false)
    act(() => {
      sent = result.current.send('Mine')
    })
    await act(async () => {
      stream.push({ type: 'chat_history', value: [] }, 'mine.0')
      stream.push({ type: 'delta', value: 'Cut' }, 'mine.5')
      events.push(started('theirs'))
    })
    expect(calls.filter((c) => c.path === '/history/proj/old')).toHaveLength(1) // busy: later
    await act(async () => {
      stream.push(stoppedEvent, 'mine.6')
      stream.close()
      await sent
    })
    await waitFor(() => expect(calls.filter((c) => c.path === '/history/proj/old')).toHaveLength(2))
    await waitFor(() => expect(result.current.messages.map((m) => m.item.content)).toEqual(['Mine', 'Cut', 'Theirs']))
    expect(result.current.messages[1]?.stopped).toBe(true)
  })

  it('tells about a new branch of the tree, and reconnects a dropped change stream', async () => {
    const streams = [controlledStream(), controlledStream()]
    let opened = 0
    const { fetch, calls } = fakeFetch({
      'GET /history/proj/old': () => jsonResponse([]),
      'GET /events/proj/old': () => streams[opened++]!.response,
    })
    const onBranchCreated = vi.fn()
    setup(fetch, { appId: 'old', isNew: false, onBranchCreated })
    await waitFor(() => expect(opened).toBe(1))
    await act(async () => {
      streams[0]!.push(sse({ type: 'branch_created', value: { app_id: 'B', parent: 'old', fork_at: 2 } }))
    })
    await waitFor(() => expect(onBranchCreated).toHaveBeenCalledWith({ app_id: 'B', parent: 'old', fork_at: 2 }))
    await act(async () => {
      streams[0]!.close()
    })
    await waitFor(() => expect(opened).toBe(2), { timeout: 2000 })
    // Reconnected: the history is read again (a change may have been missed meanwhile).
    await waitFor(() => expect(calls.filter((c) => c.path === '/history/proj/old')).toHaveLength(2))
  })

  it('does not follow a conversation that is not saved yet, nor with live off', async () => {
    const { fetch, calls } = fakeFetch({ 'GET /history/proj/old': () => jsonResponse([]) })
    setup(fetch)
    setup(fetch, { appId: 'old', isNew: false, live: false })
    await act(async () => {
      await new Promise((resolve) => setTimeout(resolve, 20))
    })
    expect(calls.some((c) => c.path.startsWith('/events/'))).toBe(false)
  })
})

describe('useChat, sending in a branch', () => {
  it('sendWhenOpen sends the prompt once the page shows the new conversation, its history from the answer', async () => {
    const stream = controlledStream()
    const { fetch, calls } = fakeFetch({
      'GET /history/proj/old': () => jsonResponse([user('Q1'), answer('A1'), user('Q2'), answer('A2')]),
      'POST /response/proj/fork1': () => stream.response,
    })
    const { result, rerender } = setup(fetch, { appId: 'old', isNew: false, live: false })
    await waitFor(() => expect(result.current.messages).toHaveLength(4))
    act(() => {
      result.current.sendWhenOpen('fork1', 'Q2 edited')
    })
    rerender({ project: 'proj', appId: 'fork1', isNew: false, client: clientFor(fetch), live: false })
    await waitFor(() => expect(calls.some((c) => c.path.startsWith('/response/proj/fork1'))).toBe(true))
    expect(result.current.messages.map((m) => m.item.content)).toEqual(['Q2 edited'])
    await act(async () => {
      stream.push({ type: 'chat_history', value: [user('Q1'), answer('A1')] })
      stream.push(message('A2 new'))
      stream.close()
    })
    await waitFor(() => expect(result.current.status).toBe('idle'))
    expect(result.current.messages.map((m) => m.item.content)).toEqual(['Q1', 'A1', 'Q2 edited', 'A2 new'])
    const post = calls.find((c) => c.path.startsWith('/response/proj/fork1'))
    expect(post).toMatchObject({ path: '/response/proj/fork1', body: { prompt: 'Q2 edited' } }) // the whole history asked for
    expect(calls.some((c) => c.path === '/history/proj/fork1')).toBe(false)
  })

  it('a regenerated answer in a branch does not show its prompt twice', async () => {
    const { fetch } = fakeFetch({
      'GET /history/proj/old': () => jsonResponse([user('Q1'), answer('A1')]),
      'POST /response/proj/fork2': () => streamResponse([sse({ type: 'chat_history', value: [user('Q1')] }), sse(message('A1 again'))]),
    })
    const { result, rerender } = setup(fetch, { appId: 'old', isNew: false, live: false })
    await waitFor(() => expect(result.current.messages).toHaveLength(2))
    act(() => {
      result.current.sendWhenOpen('fork2', 'Q1')
    })
    rerender({ project: 'proj', appId: 'fork2', isNew: false, client: clientFor(fetch), live: false })
    await waitFor(() => expect(result.current.status).toBe('idle'))
    await waitFor(() => expect(result.current.messages.map((m) => m.item.content)).toEqual(['Q1', 'A1 again']))
  })
})
