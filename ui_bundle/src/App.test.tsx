import { act, render, screen, waitFor, within } from '@testing-library/react'
import userEvent from '@testing-library/user-event'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { App } from './App'
import { controlledStream, fakeFetch, jsonResponse, sse, streamResponse } from './test/sse'
import type { ChatEvent, GraphInfo, ModelInfo } from './lib/types'

const model: ModelInfo = {
  offline: true,
  router_model: 'offline-router',
  answer_model: 'offline-demo',
  base_url: null,
  project_id: 'demo_streaming_chatbot',
  help: 'Set OPENAI_API_KEY to use a real model.',
}
const graph: GraphInfo = {
  entrypoint: 'prompt',
  actions: ['prompt', 'check_safety', 'decide_mode', 'answer_question'],
  streaming_actions: ['answer_question'],
  transitions: [
    { from: 'prompt', to: 'check_safety', condition: 'default' },
    { from: 'check_safety', to: 'decide_mode', condition: 'safe=True' },
    { from: 'decide_mode', to: 'answer_question', condition: 'mode=answer_question' },
    { from: 'answer_question', to: 'prompt', condition: 'default' },
  ],
}
const config = { apiBase: '/api/v0/streaming_chatbot', burrBase: '', name: 'streaming-chatbot' }

describe('App', () => {
  beforeEach(() => window.history.replaceState(null, '', '/demos/streaming-chatbot/'))
  afterEach(() => window.history.replaceState(null, '', '/'))

  it('shows who is signed in, and nothing when the server has no users', async () => {
    const routes = {
      'GET /model': () => jsonResponse(model),
      'GET /graph': () => jsonResponse(graph),
      'GET /conversations/demo_streaming_chatbot': () => jsonResponse([]),
    }
    const signedIn = fakeFetch({ ...routes, 'GET /me': () => jsonResponse({ user: 'alice@example.com' }) })
    const { unmount } = render(<App config={config} fetchImpl={signedIn.fetch} />)
    expect(await screen.findByTestId('signed-in')).toHaveTextContent('Signed in as alice@example.com')
    unmount()

    const noUsers = fakeFetch({ ...routes, 'GET /me': () => jsonResponse({ user: null }) })
    render(<App config={config} fetchImpl={noUsers.fetch} />)
    expect(await screen.findByTestId('offline-banner')).toBeInTheDocument()
    await waitFor(() => expect(noUsers.calls.some((c) => c.path === '/me')).toBe(true))
    expect(screen.queryByTestId('signed-in')).toBeNull()
  })

  it('creates the conversation on first send, streams the answer and lights up the running action', async () => {
    const stream = controlledStream()
    let conversations = [] as { app_id: string; updated_at: string | null; title: string | null }[]
    const { fetch, calls } = fakeFetch({
      'GET /model': () => jsonResponse(model),
      'GET /graph': () => jsonResponse(graph),
      'GET /conversations/demo_streaming_chatbot': () => jsonResponse(conversations),
      'POST /create/demo_streaming_chatbot/*': (_init, url) => jsonResponse(url.split('/').pop()),
      'POST /response/demo_streaming_chatbot/*': () => stream.response,
    })
    const user = userEvent.setup()
    render(<App config={config} fetchImpl={fetch} />)

    expect(await screen.findByTestId('offline-banner')).toHaveTextContent('Set OPENAI_API_KEY')
    expect(screen.queryByTestId('burr-conversation-link')).toBeNull()

    const box = screen.getByRole('textbox', { name: 'Message' })
    await user.type(box, 'What is Burr?{Enter}')

    await waitFor(() => expect(calls.some((c) => c.method === 'POST' && c.path.startsWith('/response/'))).toBe(true))
    const create = calls.find((c) => c.path.startsWith('/create/'))
    expect(create).toBeDefined()
    const appId = create!.path.split('/').pop()!
    expect(appId).toMatch(/^[A-Za-z0-9_-]{1,64}$/)
    expect(new URLSearchParams(window.location.search).get('c')).toBe(appId)
    expect(screen.getByRole('button', { name: 'Stop' })).toBeInTheDocument()

    const push = async (event: ChatEvent) => {
      await act(async () => stream.push(event))
    }
    await push({ type: 'chat_history', value: [] })
    await push({ type: 'action', value: { action: 'decide_mode', sequence_id: 2 } })
    await waitFor(() => {
      const node = screen.getAllByTestId('graph-node').find((n) => n.getAttribute('data-active') === 'true')
      expect(node?.getAttribute('data-action')).toBe('decide_mode')
    })
    await push({ type: 'mode', value: 'answer_question' })
    await push({ type: 'action', value: { action: 'answer_question', sequence_id: 3 } })
    await push({ type: 'delta', value: 'Burr is a **state machine** library' })
    const live = await screen.findByText('state machine')
    expect(live.closest('[aria-live="polite"]')).not.toBeNull()
    expect(live.closest('[data-testid="assistant-message"]')).not.toBeNull()

    conversations = [{ app_id: appId, updated_at: null, title: 'What is Burr?' }]
    await push({
      type: 'message',
      value: {
        item: {
          role: 'assistant',
          content: 'Burr is a **state machine** library.',
          type: 'text',
          mode: 'answer_question',
          model: 'offline-demo',
          interrupted: false,
          reasoning: null,
        },
        mode: 'answer_question',
        model: 'offline-demo',
        ttft_ms: 87,
        deltas: 1,
        sequence_id: 3,
        path: ['prompt', 'check_safety', 'decide_mode', 'answer_question'],
        usage: null,
      },
    })
    await act(async () => stream.close())

    const answers = await screen.findAllByTestId('assistant-message')
    const last = answers[answers.length - 1]!
    await waitFor(() => expect(within(last).getByTestId('answer-ttft')).toHaveTextContent('87 ms'))
    expect(within(last).getByTestId('answer-model')).toHaveTextContent('offline-demo')
    expect(screen.getByRole('button', { name: 'Send' })).toBeInTheDocument()
    expect(screen.getByRole('button', { name: 'Regenerate' })).toBeInTheDocument()
    expect(screen.getAllByTestId('graph-node').some((n) => n.getAttribute('data-active') === 'true')).toBe(false)
    expect(screen.getByTestId('answer-path')).toHaveTextContent('answer_question')
    expect(screen.getByTestId('burr-conversation-link')).toHaveAttribute(
      'href',
      `/project/demo_streaming_chatbot/__none__/${appId}`,
    )
    expect(await screen.findByRole('button', { name: /^What is Burr\?/ })).toHaveAttribute('aria-current', 'page')
  })

  it('shows an inline error with Retry, which sends the prompt again', async () => {
    let attempt = 0
    const { fetch, calls } = fakeFetch({
      'GET /model': () => jsonResponse({ ...model, offline: false, help: null }),
      'GET /graph': () => jsonResponse(graph),
      'GET /conversations/demo_streaming_chatbot': () => jsonResponse([]),
      'GET /history/demo_streaming_chatbot/abc': () => jsonResponse([]),
      'POST /response/demo_streaming_chatbot/abc': () => {
        attempt += 1
        return attempt === 1
          ? jsonResponse({ detail: 'A reply is already streaming in this conversation; wait for it or stop it.' }, 409)
          : jsonResponse({ detail: 'still busy' }, 409)
      },
    })
    window.history.replaceState(null, '', '/demos/streaming-chatbot/?c=abc')
    const user = userEvent.setup()
    render(<App config={config} fetchImpl={fetch} />)
    await screen.findByTestId('model-line')
    await waitFor(() => expect(screen.getByTestId('model-line')).toHaveTextContent('offline-demo'))
    expect(screen.queryByTestId('offline-banner')).toBeNull()

    await user.type(screen.getByRole('textbox', { name: 'Message' }), 'Hello{Enter}')
    const alert = await screen.findByRole('alert')
    expect(alert).toHaveTextContent('A reply is already streaming in this conversation')
    await user.click(within(alert).getByRole('button', { name: 'Retry' }))
    await waitFor(() => expect(screen.getByRole('alert')).toHaveTextContent('still busy'))
    const posts = calls.filter((c) => c.method === 'POST' && c.path.startsWith('/response/'))
    expect(posts.map((c) => c.body)).toEqual([{ prompt: 'Hello' }, { prompt: 'Hello' }])
    // An existing conversation (from ?c=) is not created again.
    expect(calls.some((c) => c.path.startsWith('/create/'))).toBe(false)
  })

  it('New conversation gives a fresh, empty conversation', async () => {
    const { fetch } = fakeFetch({
      'GET /model': () => jsonResponse(model),
      'GET /graph': () => jsonResponse(graph),
      'GET /conversations/demo_streaming_chatbot': () => jsonResponse([{ app_id: 'abc', updated_at: null, title: 'Old one' }]),
      'GET /history/demo_streaming_chatbot/abc': () =>
        jsonResponse([
          { role: 'user', content: 'Old question', type: 'text', mode: null, model: null, interrupted: false, reasoning: null },
          { role: 'assistant', content: 'Old answer', type: 'text', mode: 'answer_question', model: 'm', interrupted: true, reasoning: null },
        ]),
    })
    window.history.replaceState(null, '', '/demos/streaming-chatbot/?c=abc')
    const user = userEvent.setup()
    render(<App config={config} fetchImpl={fetch} />)
    expect(await screen.findByText('Old answer')).toBeInTheDocument()
    expect(screen.getByTestId('interrupted-marker')).toBeInTheDocument()
    await user.click(screen.getByRole('button', { name: 'New conversation' }))
    await waitFor(() => expect(screen.queryByText('Old answer')).toBeNull())
    expect(new URLSearchParams(window.location.search).get('c')).toBeNull()
    await user.click(screen.getByRole('button', { name: /^Old one/ }))
    expect(await screen.findByText('Old answer')).toBeInTheDocument()
    expect(new URLSearchParams(window.location.search).get('c')).toBe('abc')
  })

  it('Edit makes a branch: forks at the message, opens it (?c=), sends the edited prompt there; the switcher goes back', async () => {
    const item = (role: 'user' | 'assistant', content: string) => ({ role, content, type: 'text' as const, mode: null, model: null, interrupted: false, reasoning: null })
    const summary = (app_id: string, fork?: number) => ({
      app_id,
      title: 'Q1',
      updated_at: null,
      root: fork === undefined ? null : 'R',
      parent: fork === undefined ? null : 'R',
      fork_at: fork ?? null,
    })
    let forked = false
    const tree = () => ({ root: 'R', branches: forked ? [summary('R'), summary('B', 0)] : [summary('R')] })
    const { fetch, calls } = fakeFetch({
      'GET /model': () => jsonResponse(model),
      'GET /graph': () => jsonResponse(graph),
      'GET /conversations/demo_streaming_chatbot': () => jsonResponse(tree().branches),
      'GET /history/demo_streaming_chatbot/R': () => jsonResponse([item('user', 'Q1'), item('assistant', 'A1'), item('user', 'Q2'), item('assistant', 'A2')]),
      'GET /history/demo_streaming_chatbot/B': () => jsonResponse([item('user', 'Q1 edited'), item('assistant', 'A1 new')]),
      'GET /branches/demo_streaming_chatbot/*': () => jsonResponse(tree()),
      'POST /fork/demo_streaming_chatbot/R': () => {
        forked = true
        return jsonResponse('B')
      },
      'POST /response/demo_streaming_chatbot/B': () =>
        streamResponse([
          sse({ type: 'chat_history', value: [] }, 'tb.0'),
          sse({ type: 'delta', value: 'A1 new' }, 'tb.6'),
          sse({ type: 'message', value: { item: item('assistant', 'A1 new'), mode: 'answer_question', model: 'm', ttft_ms: 5, deltas: 1, sequence_id: 3, path: [], usage: null } }, 'tb.7'),
        ]),
    })
    window.history.replaceState(null, '', '/demos/streaming-chatbot/?c=R')
    const user = userEvent.setup()
    render(<App config={config} fetchImpl={fetch} />)
    expect(await screen.findByText('A2')).toBeInTheDocument()
    expect(screen.queryByTestId('branch-switcher')).toBeNull()

    await user.click(screen.getAllByRole('button', { name: 'Edit message' })[0]!)
    const box = screen.getByRole('textbox', { name: 'Edited message' })
    await user.clear(box)
    await user.type(box, 'Q1 edited{Enter}')

    await waitFor(() => expect(screen.getAllByTestId('assistant-message').map((a) => a.textContent)).toEqual([expect.stringContaining('A1 new')]))
    expect(new URLSearchParams(window.location.search).get('c')).toBe('B')
    expect(calls.find((c) => c.path === '/fork/demo_streaming_chatbot/R')?.body).toEqual({ at: 0 })
    expect(calls.find((c) => c.path.startsWith('/response/'))).toMatchObject({ path: '/response/demo_streaming_chatbot/B', body: { prompt: 'Q1 edited' } })
    expect(screen.getByTestId('user-message')).toHaveTextContent('Q1 edited')
    const switcher = await screen.findByTestId('branch-switcher')
    expect(switcher).toHaveTextContent('2 / 2')
    // The list shows the branch under its root.
    expect(await screen.findByTestId('conversation-branch')).toHaveTextContent('Branch at message 1')

    await user.click(within(switcher).getByRole('button', { name: 'Previous branch' }))
    expect(await screen.findByText('A2')).toBeInTheDocument()
    expect(new URLSearchParams(window.location.search).get('c')).toBe('R')
    await waitFor(() => expect(screen.getByTestId('branch-position')).toHaveTextContent('1 / 2'))
    await user.click(screen.getByRole('button', { name: 'Next branch' }))
    expect(await screen.findByText('A1 new')).toBeInTheDocument()
    expect(new URLSearchParams(window.location.search).get('c')).toBe('B')
  })

  it('Regenerate on an earlier answer forks at that answer and asks its prompt again there', async () => {
    const item = (role: 'user' | 'assistant', content: string) => ({ role, content, type: 'text' as const, mode: null, model: null, interrupted: false, reasoning: null })
    const { fetch, calls } = fakeFetch({
      'GET /model': () => jsonResponse(model),
      'GET /graph': () => jsonResponse(graph),
      'GET /conversations/demo_streaming_chatbot': () => jsonResponse([]),
      'GET /history/demo_streaming_chatbot/R': () => jsonResponse([item('user', 'Q1'), item('assistant', 'A1'), item('user', 'Q2'), item('assistant', 'A2')]),
      'GET /branches/demo_streaming_chatbot/*': () => jsonResponse({ root: 'R', branches: [] }),
      'POST /fork/demo_streaming_chatbot/R': () => jsonResponse('F'),
      'POST /response/demo_streaming_chatbot/F': () =>
        streamResponse([
          sse({ type: 'chat_history', value: [item('user', 'Q1')] }),
          sse({ type: 'message', value: { item: item('assistant', 'A1 again'), mode: 'answer_question', model: 'm', ttft_ms: 5, deltas: 1, sequence_id: 3, path: [], usage: null } }),
        ]),
    })
    window.history.replaceState(null, '', '/demos/streaming-chatbot/?c=R')
    const user = userEvent.setup()
    render(<App config={config} fetchImpl={fetch} />)
    expect(await screen.findByText('A2')).toBeInTheDocument()
    const first = screen.getAllByTestId('assistant-message')[0]!
    await user.click(within(first).getByRole('button', { name: 'Regenerate' }))
    expect(await screen.findByText('A1 again')).toBeInTheDocument()
    expect(calls.find((c) => c.path.startsWith('/fork/'))?.body).toEqual({ at: 1 })
    expect(calls.find((c) => c.path.startsWith('/response/'))).toMatchObject({ path: '/response/demo_streaming_chatbot/F', body: { prompt: 'Q1' } })
    expect(screen.getAllByTestId('user-message').map((m) => m.querySelector('p')?.textContent)).toEqual(['Q1'])
    expect(new URLSearchParams(window.location.search).get('c')).toBe('F')
  })
})
