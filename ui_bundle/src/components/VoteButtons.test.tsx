import { render, screen, within } from '@testing-library/react'
import userEvent from '@testing-library/user-event'
import { describe, expect, it, vi } from 'vitest'
import type { DisplayMessage } from '../hooks/useChat'
import type { Votes } from '../hooks/useVotes'
import type { ChatItem } from '../lib/types'
import { MessageList } from './MessageList'

const item = (role: 'user' | 'assistant', content: string): ChatItem => ({
  role,
  content,
  type: 'text',
  mode: null,
  model: null,
  interrupted: false,
  reasoning: null,
})
const conversation: DisplayMessage[] = [
  { item: item('user', 'First question') },
  { item: item('assistant', 'First answer') },
  { item: item('user', 'Second question') },
  { item: item('assistant', 'Second answer') },
]

function list(onVote: (index: number, thumbsUp: boolean, comment?: string) => void, votes: Votes = {}) {
  return <MessageList messages={conversation} streaming={false} streamingText="" mode={null} activeAction={null} votes={votes} onVote={onVote} />
}

describe('thumbs on answers', () => {
  it('shows thumbs on every answer, none on prompts, and hands on the answer index', async () => {
    const onVote = vi.fn()
    const user = userEvent.setup()
    render(list(onVote))
    const answers = screen.getAllByTestId('assistant-message')
    expect(screen.getAllByRole('group', { name: 'Rate this answer' })).toHaveLength(2)
    for (const prompt of screen.getAllByTestId('user-message-row')) {
      expect(within(prompt).queryByRole('group', { name: 'Rate this answer' })).toBeNull()
    }
    await user.click(within(answers[1]!).getByRole('button', { name: 'Bad answer' }))
    expect(onVote).toHaveBeenCalledWith(3, false, undefined)
    await user.click(within(answers[0]!).getByRole('button', { name: 'Good answer' }))
    expect(onVote).toHaveBeenLastCalledWith(1, true, undefined)
  })

  it('shows the vote given as a pressed button', () => {
    render(list(vi.fn(), { 1: { thumbs_up: true, comment: 'Clear.' }, 3: { thumbs_up: false, comment: null } }))
    const [first, second] = screen.getAllByTestId('assistant-message')
    expect(within(first!).getByRole('button', { name: 'Good answer' })).toHaveAttribute('aria-pressed', 'true')
    expect(within(first!).getByRole('button', { name: 'Bad answer' })).toHaveAttribute('aria-pressed', 'false')
    expect(within(second!).getByRole('button', { name: 'Bad answer' })).toHaveAttribute('aria-pressed', 'true')
    expect(within(first!).getByTestId('vote-comment')).toHaveTextContent('Clear.')
    expect(within(second!).queryByTestId('vote-comment')).toBeNull()
  })

  it('offers a comment once voted, and sends it with the vote given', async () => {
    const onVote = vi.fn()
    const user = userEvent.setup()
    render(list(onVote, { 3: { thumbs_up: false, comment: null } }))
    const [first, second] = screen.getAllByTestId('assistant-message')
    expect(within(first!).queryByRole('button', { name: 'Add a comment' })).toBeNull()
    await user.click(within(second!).getByRole('button', { name: 'Add a comment' }))
    await user.type(within(second!).getByRole('textbox', { name: 'Comment on this answer' }), 'Wrong year.')
    await user.click(within(second!).getByRole('button', { name: 'Save' }))
    expect(onVote).toHaveBeenCalledWith(3, false, 'Wrong year.')
    expect(within(second!).queryByRole('textbox', { name: 'Comment on this answer' })).toBeNull()
  })

  it('has no thumbs without onVote (a conversation not saved yet)', () => {
    render(<MessageList messages={conversation} streaming={false} streamingText="" mode={null} activeAction={null} />)
    expect(screen.queryByRole('group', { name: 'Rate this answer' })).toBeNull()
  })
})
