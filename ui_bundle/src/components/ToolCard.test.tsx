import { render, screen, within } from '@testing-library/react'
import userEvent from '@testing-library/user-event'
import { describe, expect, it, vi } from 'vitest'
import { BurrPanel } from './BurrPanel'
import { MessageList } from './MessageList'
import type { DisplayMessage } from '../lib/chatState'
import type { ChatItem, GraphInfo } from '../lib/types'

const user = (content: string): ChatItem => ({ role: 'user', content, type: 'text', mode: null, model: null, interrupted: false, reasoning: null })
const calc = { id: 'c1', name: 'calculator', arguments: '{"expression":"6*7"}', needs_approval: false }
const note = { id: 'c2', name: 'save_note', arguments: '{"text":"buy milk"}', needs_approval: true }
const called = (content: string, calls: (typeof calc)[]): ChatItem => ({ ...user(content), role: 'assistant', mode: 'answer_question', tool_calls: calls })
const toolMessage = (id: string, name: string, status: 'ok' | 'error' | 'denied', content: string, extra: Partial<ChatItem> = {}): ChatItem => ({
  ...user(content),
  role: 'tool',
  tool_call_id: id,
  name,
  status,
  duration_ms: 1.2,
  reason: null,
  ...extra,
})
const shown = (items: ChatItem[]): DisplayMessage[] => items.map((item) => ({ item }))
const list = { streaming: false, streamingText: '', mode: null, activeAction: null }

describe('tool cards', () => {
  it('a call that ran: one card in the answer (name, pretty arguments, result, time), closed; its tool message is not a message of its own', () => {
    const messages = shown([user('What is 6*7?'), called('Let me compute. ', [calc]), toolMessage('c1', 'calculator', 'ok', '{"result":"42"}'), called('It is 42.', [])])
    render(<MessageList {...list} messages={messages} />)
    expect(screen.getAllByTestId('assistant-message')).toHaveLength(2)
    const card = screen.getByTestId('tool-card')
    expect(within(screen.getAllByTestId('assistant-message')[0]!).getByTestId('tool-card')).toBe(card)
    expect(card).toHaveAttribute('data-status', 'ok')
    expect(within(card).getByTestId('tool-name')).toHaveTextContent('calculator')
    expect(within(card).getByTestId('tool-status')).toHaveTextContent('done')
    expect(within(card).getByTestId('tool-duration')).toHaveTextContent('1 ms')
    expect(within(card).getByTestId('tool-arguments').textContent).toBe('{\n  "expression": "6*7"\n}')
    expect(within(card).getByTestId('tool-output').textContent).toBe('{\n  "result": "42"\n}')
    expect(within(card).getByTestId('tool-details')).not.toHaveAttribute('open')
    expect(screen.getByText('Let me compute.')).toBeInTheDocument()
  })

  it('while its arguments stream the card is open and says so; an error and a denial say what happened', () => {
    const live = shown([user('q'), called('', [calc])])
    const { rerender } = render(<MessageList {...list} streaming messages={live} liveToolCalls={['c1']} />)
    expect(screen.getByTestId('tool-card')).toHaveAttribute('data-state', 'arguments')
    expect(screen.getByTestId('tool-status')).toHaveTextContent('writing arguments')
    expect(screen.getByTestId('tool-details')).toHaveAttribute('open')

    const ended = shown([
      user('q'),
      called('', [calc, note]),
      toolMessage('c1', 'calculator', 'error', 'The result is too large.'),
      toolMessage('c2', 'save_note', 'denied', 'Denied', { reason: 'not now', duration_ms: null }),
    ])
    rerender(<MessageList {...list} messages={ended} />)
    const [error, denied] = screen.getAllByTestId('tool-card')
    expect(within(error!).getByTestId('tool-status')).toHaveTextContent('error')
    expect(within(error!).getByTestId('tool-output')).toHaveTextContent('The result is too large.')
    expect(within(denied!).getByTestId('tool-status')).toHaveTextContent('denied: not now')
    expect(within(denied!).getByTestId('tool-output')).toHaveTextContent('denied: not now')
    expect(within(denied!).queryByTestId('tool-duration')).toBeNull()
  })

  it('a waiting call has Approve and Deny with a reason; a waiting call no message shows gets a card of its own', async () => {
    const onDecide = vi.fn()
    const approval = { id: 'c2', name: 'save_note', arguments: note.arguments, message: 'Save a note?' }
    const other = { id: 'c9', name: 'save_note', arguments: '{"text":"eggs"}', message: 'Save eggs?' }
    const messages = shown([user('remember milk'), called('', [note])])
    const interaction = userEvent.setup()
    render(<MessageList {...list} messages={messages} approvals={[approval, other]} onDecide={onDecide} />)
    const cards = screen.getAllByTestId('approval-card')
    expect(cards).toHaveLength(2)
    expect(within(cards[0]!).getByTestId('approval-message')).toHaveTextContent('Save a note?')
    await interaction.click(within(cards[0]!).getByRole('button', { name: 'Approve' }))
    expect(onDecide).toHaveBeenLastCalledWith('c2', true, null)
    await interaction.type(within(cards[1]!).getByRole('textbox', { name: 'Reason (optional)' }), ' not today ')
    await interaction.click(within(cards[1]!).getByRole('button', { name: 'Deny' }))
    expect(onDecide).toHaveBeenLastCalledWith('c9', false, 'not today')
  })

  it('while an answer streams the buttons are off', () => {
    const approval = { id: 'c2', name: 'save_note', arguments: note.arguments, message: 'Save a note?' }
    render(<MessageList {...list} streaming messages={shown([user('remember milk'), called('', [note])])} approvals={[approval]} onDecide={vi.fn()} />)
    expect(screen.getByRole('button', { name: 'Approve' })).toBeDisabled()
    expect(screen.getByRole('button', { name: 'Deny' })).toBeDisabled()
  })
})

describe('BurrPanel, tool steps', () => {
  const graph: GraphInfo = {
    entrypoint: 'prompt',
    actions: ['prompt', 'answer_question', 'run_tool', 'tool_approval'],
    streaming_actions: ['answer_question'],
    transitions: [
      { from: 'answer_question', to: 'tool_approval', condition: 'needs_approval' },
      { from: 'answer_question', to: 'run_tool', condition: 'has_tool_calls' },
      { from: 'tool_approval', to: 'run_tool', condition: 'default' },
    ],
  }
  const base = { graph, graphError: null, activeAction: null, path: [], streaming: false, project: 'p', appId: 'a', saved: true, burrBase: '' }

  it('marks where the graph waits while a call waits for approval, and nowhere otherwise', () => {
    const { rerender } = render(<BurrPanel {...base} awaitingApproval />)
    const waiting = document.querySelectorAll('[data-waiting="true"]')
    expect([...waiting].map((n) => n.getAttribute('data-action'))).toEqual(['tool_approval'])
    expect(screen.getByTestId('graph-waiting')).toBeInTheDocument()
    rerender(<BurrPanel {...base} awaitingApproval={false} />)
    expect(document.querySelectorAll('[data-waiting="true"]')).toHaveLength(0)
    rerender(<BurrPanel {...base} awaitingApproval streaming activeAction="run_tool" />)
    expect(document.querySelectorAll('[data-waiting="true"]')).toHaveLength(0)
  })
})
