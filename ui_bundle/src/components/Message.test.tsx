import { render, screen, within } from '@testing-library/react'
import userEvent from '@testing-library/user-event'
import { describe, expect, it, vi } from 'vitest'
import { Message } from './Message'
import { MessageList } from './MessageList'
import type { DisplayMessage } from '../hooks/useChat'
import type { ChatItem } from '../lib/types'

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

describe('Message, editing into a branch', () => {
  it('opens the message in place; Send hands on its index and the new text, Cancel closes it', async () => {
    const onEdit = vi.fn()
    const user = userEvent.setup()
    render(<Message message={{ item: item('user', 'Old text') }} index={4} onEdit={onEdit} />)
    await user.click(screen.getByRole('button', { name: 'Edit message' }))
    const box = screen.getByRole('textbox', { name: 'Edited message' })
    expect(box).toHaveValue('Old text')
    await user.click(screen.getByRole('button', { name: 'Cancel' }))
    expect(screen.queryByRole('textbox', { name: 'Edited message' })).toBeNull()
    expect(screen.getByText('Old text')).toBeInTheDocument()
    expect(onEdit).not.toHaveBeenCalled()

    await user.click(screen.getByRole('button', { name: 'Edit message' }))
    const again = screen.getByRole('textbox', { name: 'Edited message' })
    await user.clear(again)
    expect(screen.getByRole('button', { name: 'Send' })).toBeDisabled()
    await user.type(again, 'New text')
    await user.click(screen.getByRole('button', { name: 'Send' }))
    expect(onEdit).toHaveBeenCalledWith(4, 'New text')
    expect(screen.queryByRole('textbox', { name: 'Edited message' })).toBeNull()
  })

  it('Enter sends the edit, Escape cancels it', async () => {
    const onEdit = vi.fn()
    const user = userEvent.setup()
    render(<Message message={{ item: item('user', 'Q') }} index={0} onEdit={onEdit} />)
    await user.click(screen.getByRole('button', { name: 'Edit message' }))
    await user.type(screen.getByRole('textbox', { name: 'Edited message' }), ' more{Escape}')
    expect(onEdit).not.toHaveBeenCalled()
    await user.click(screen.getByRole('button', { name: 'Edit message' }))
    await user.type(screen.getByRole('textbox', { name: 'Edited message' }), '!{Enter}')
    expect(onEdit).toHaveBeenCalledWith(0, 'Q!')
  })
})

describe('Message, the branch switcher', () => {
  it('shows "2 / 3" and opens the previous and next alternatives', async () => {
    const onSwitch = vi.fn()
    const user = userEvent.setup()
    render(
      <Message message={{ item: item('user', 'Q') }} index={0} siblings={{ ids: ['R', 'B', 'C'], position: 1 }} onSwitchBranch={onSwitch} />,
    )
    expect(screen.getByTestId('branch-switcher')).toHaveTextContent('‹2 / 3›')
    await user.click(screen.getByRole('button', { name: 'Previous branch' }))
    await user.click(screen.getByRole('button', { name: 'Next branch' }))
    expect(onSwitch.mock.calls).toEqual([['R'], ['C']])
  })

  it('cannot step past the first or the last one', () => {
    render(<Message message={{ item: item('user', 'Q') }} siblings={{ ids: ['R', 'B'], position: 1 }} onSwitchBranch={() => undefined} />)
    expect(screen.getByRole('button', { name: 'Next branch' })).toBeDisabled()
    expect(screen.getByRole('button', { name: 'Previous branch' })).toBeEnabled()
    expect(screen.getByText('2 / 2')).toBeInTheDocument()
  })
})

describe('MessageList, branch actions', () => {
  it('Edit on every user message; a branch Regenerate on every earlier answer, the last one asks again in place', async () => {
    const onEdit = vi.fn()
    const onRegenerateBranch = vi.fn()
    const onRegenerate = vi.fn()
    const user = userEvent.setup()
    render(
      <MessageList
        messages={conversation}
        streaming={false}
        streamingText=""
        mode={null}
        activeAction={null}
        onEdit={onEdit}
        onRegenerateBranch={onRegenerateBranch}
        onRegenerate={onRegenerate}
        siblings={[null, null, { ids: ['R', 'B'], position: 0 }, null]}
        onSwitchBranch={() => undefined}
      />,
    )
    expect(screen.getAllByRole('button', { name: 'Edit message' })).toHaveLength(2)
    const answers = screen.getAllByTestId('assistant-message')
    await user.click(within(answers[0]!).getByRole('button', { name: 'Regenerate' }))
    expect(onRegenerateBranch).toHaveBeenCalledWith(1)
    await user.click(within(answers[1]!).getByRole('button', { name: 'Regenerate' }))
    expect(onRegenerate).toHaveBeenCalledTimes(1)
    expect(onRegenerateBranch).toHaveBeenCalledTimes(1)
    const questions = screen.getAllByTestId('user-message-row')
    expect(within(questions[1]!).getByTestId('branch-position')).toHaveTextContent('1 / 2')
    expect(within(questions[0]!).queryByTestId('branch-switcher')).toBeNull()
  })

  it('no editing or branching while an answer streams', () => {
    render(
      <MessageList
        messages={conversation.slice(0, 3)}
        streaming
        streamingText="Part"
        mode={null}
        activeAction={null}
        onEdit={() => undefined}
        onRegenerateBranch={() => undefined}
      />,
    )
    for (const button of screen.getAllByRole('button', { name: 'Edit message' })) expect(button).toBeDisabled()
    expect(screen.getByRole('button', { name: 'Regenerate' })).toBeDisabled()
  })
})
