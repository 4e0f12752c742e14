import { act, render, screen, waitFor, within } from '@testing-library/react'
import userEvent from '@testing-library/user-event'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { App } from './App'
import { controlledStream, fakeFetch, jsonResponse } from './test/sse'
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
    expect(await screen.findByRole('button', { name: /What is Burr\?/ })).toHaveAttribute('aria-current', 'page')
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
    await user.click(screen.getByRole('button', { name: /Old one/ }))
    expect(await screen.findByText('Old answer')).toBeInTheDocument()
    expect(new URLSearchParams(window.location.search).get('c')).toBe('abc')
  })
})
