// @vitest-environment node
import { describe, expect, it, vi } from 'vitest'
import { followConversation, parseChange, streamChat } from './stream'
import type { ConversationChange } from './types'
import { controlledStream, jsonResponse, streamResponse } from '../test/sse'

const started: ConversationChange = { type: 'turn_started', value: { turn: 'ab12' } }
const branch: ConversationChange = { type: 'branch_created', value: { app_id: 'B', parent: 'R', fork_at: 2 } }

const block = (change: unknown) => `data: ${JSON.stringify(change)}\n\n`

describe('parseChange', () => {
  it('reads the three change types and ignores anything else', () => {
    expect(parseChange(JSON.stringify(started))).toEqual(started)
    expect(parseChange(JSON.stringify(branch))).toEqual(branch)
    expect(parseChange(JSON.stringify({ type: 'turn_ended', value: { turn: 'x' } }))).toEqual({ type: 'turn_ended', value: { turn: 'x' } })
    expect(parseChange(JSON.stringify({ type: 'delta', value: 'x' }))).toBeNull()
    expect(parseChange('not json')).toBeNull()
    expect(parseChange(JSON.stringify({ type: 'turn_started' }))).toBeNull()
  })
})

describe('followConversation', () => {
  it('hands on each change, through keepalives and split chunks, from the events endpoint', async () => {
    const changes: ConversationChange[] = []
    const abort = new AbortController()
    const text = `: keepalive\n\n${block(started)}${block(branch)}`
    const fetchImpl = vi.fn(async () => streamResponse([text.slice(0, 17), text.slice(17, 40), text.slice(40)]))
    const opened: boolean[] = []
    const done = followConversation({
      project: 'proj',
      appId: 'app 1',
      apiBase: '/base',
      fetchImpl: fetchImpl as unknown as typeof fetch,
      signal: abort.signal,
      delaysMs: [60_000],
      onOpen: (again) => opened.push(again),
      onChange: (change) => {
        changes.push(change)
        if (changes.length === 2) abort.abort()
      },
    })
    await done
    expect(changes).toEqual([started, branch])
    expect(opened).toEqual([false])
    expect(fetchImpl).toHaveBeenCalledWith('/base/events/proj/app%201', expect.objectContaining({ method: 'GET' }))
  })

  it('reconnects after the stream drops or the server fails, and says it is a reconnect', async () => {
    const abort = new AbortController()
    const responses = [
      () => streamResponse([block(started)]), // then closes
      () => jsonResponse({ detail: 'busy' }, 503),
      () => Promise.reject(new TypeError('network down')),
      () => streamResponse([block(branch)]),
    ]
    const fetchImpl = vi.fn(async () => {
      const next = responses.shift()
      if (!next) {
        abort.abort()
        throw new DOMException('aborted', 'AbortError')
      }
      return next()
    })
    const changes: string[] = []
    const opened: boolean[] = []
    await followConversation({
      project: 'p',
      appId: 'a',
      fetchImpl: fetchImpl as unknown as typeof fetch,
      signal: abort.signal,
      delaysMs: [1, 2],
      onOpen: (again) => opened.push(again),
      onChange: (change) => changes.push(change.type),
    })
    expect(changes).toEqual(['turn_started', 'branch_created'])
    expect(opened).toEqual([false, true])
    expect(fetchImpl).toHaveBeenCalledTimes(5)
  })

  it('gives up on a 404 (no such conversation, or a server without /events)', async () => {
    const fetchImpl = vi.fn(async () => jsonResponse({ detail: 'Not Found' }, 404))
    await followConversation({
      project: 'p',
      appId: 'a',
      fetchImpl: fetchImpl as unknown as typeof fetch,
      signal: new AbortController().signal,
      delaysMs: [1],
      onChange: () => undefined,
    })
    expect(fetchImpl).toHaveBeenCalledTimes(1)
  })

  it('stops reading when aborted while a stream is open', async () => {
    const stream = controlledStream()
    const abort = new AbortController()
    const fetchImpl = vi.fn(async () => stream.response)
    const done = followConversation({
      project: 'p',
      appId: 'a',
      fetchImpl: fetchImpl as unknown as typeof fetch,
      signal: abort.signal,
      onChange: () => undefined,
    })
    await new Promise((resolve) => setTimeout(resolve, 10))
    abort.abort()
    await done
    expect(stream.cancelled).toBe(true)
    expect(fetchImpl).toHaveBeenCalledTimes(1)
  })
})

describe('streamChat, if_busy', () => {
  it('asks the server to interrupt a running answer when told to, next to history_after', async () => {
    const fetchImpl = vi.fn(async () => streamResponse([]))
    await streamChat({
      project: 'p',
      appId: 'a',
      prompt: 'x',
      historyAfter: 4,
      ifBusy: 'interrupt',
      apiBase: '/b',
      fetchImpl: fetchImpl as unknown as typeof fetch,
      onEvent: () => undefined,
    })
    await streamChat({ project: 'p', appId: 'a', prompt: 'x', ifBusy: 'reject', apiBase: '/b', fetchImpl: fetchImpl as unknown as typeof fetch, onEvent: () => undefined })
    expect(fetchImpl.mock.calls.map((c) => (c as unknown as [string])[0])).toEqual([
      '/b/response/p/a?history_after=4&if_busy=interrupt',
      '/b/response/p/a',
    ])
  })
})
