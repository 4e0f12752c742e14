import { fireEvent, render, screen, within } from '@testing-library/react'
import { describe, expect, it } from 'vitest'
import { Message } from './Message'
import { MessageList } from './MessageList'
import { countWords, ThinkingBlock } from './ThinkingBlock'
import type { DisplayMessage } from '../hooks/useChat'
import type { ChatItem } from '../lib/types'

function assistant(content: string, extra: Partial<ChatItem> = {}): ChatItem {
  return { role: 'assistant', content, type: 'text', mode: 'answer_question', model: 'demo', interrupted: false, reasoning: null, ...extra }
}

const question: DisplayMessage = {
  item: { role: 'user', content: 'Q', type: 'text', mode: null, model: null, interrupted: false, reasoning: null },
}

describe('countWords', () => {
  it('counts runs of non-space characters', () => {
    expect(countWords('')).toBe(0)
    expect(countWords('   \n')).toBe(0)
    expect(countWords('one')).toBe(1)
    expect(countWords(' The user\twants\n\na poem. ')).toBe(5)
  })
})

describe('ThinkingBlock', () => {
  it('is collapsed by default, says it is thinking while live, and opens to show the text', () => {
    render(<ThinkingBlock text="The user asks about Burr" live />)
    const block = screen.getByTestId('thinking')
    expect(block.tagName).toBe('DETAILS')
    expect(block).not.toHaveAttribute('open')
    expect(block).toHaveAttribute('data-state', 'thinking')
    const summary = within(block).getByTestId('thinking-summary')
    expect(summary.tagName).toBe('SUMMARY')
    expect(summary).toHaveTextContent('Thinking…')
    expect(summary).toHaveTextContent('5 words')
    expect(within(block).getByTestId('thinking-text')).toHaveTextContent('The user asks about Burr')

    fireEvent.click(summary)
    expect(block).toHaveAttribute('open')
  })

  it('says "Thought" once the answer has started, and keeps the reader\'s choice to open it', () => {
    const { rerender } = render(<ThinkingBlock text="Hmm" live />)
    const block = screen.getByTestId('thinking')
    fireEvent.click(screen.getByTestId('thinking-summary'))
    rerender(<ThinkingBlock text="Hmm, a poem then" live={false} />)
    expect(screen.getByTestId('thinking')).toBe(block)
    expect(block).toHaveAttribute('open')
    expect(block).toHaveAttribute('data-state', 'done')
    expect(screen.getByTestId('thinking-summary')).toHaveTextContent(/^Thought\s*4 words$/)
    expect(screen.getByTestId('thinking-summary')).not.toHaveTextContent('Thinking')
    expect(screen.getByTestId('thinking-text')).toHaveTextContent('Hmm, a poem then')
  })

  it('counts one word in the singular', () => {
    render(<ThinkingBlock text="Hmm" />)
    expect(screen.getByTestId('thinking-count')).toHaveTextContent(/^1 word$/)
  })
})

describe('Message with thinking', () => {
  it('shows a stored answer\'s thinking above its text', () => {
    render(<Message message={{ item: assistant('The answer.', { reasoning: 'First I consider' }) }} />)
    const answer = screen.getByTestId('assistant-message')
    const block = within(answer).getByTestId('thinking')
    expect(block).toHaveAttribute('data-state', 'done')
    expect(block.compareDocumentPosition(within(answer).getByText('The answer.')) & Node.DOCUMENT_POSITION_FOLLOWING).toBeTruthy()
  })

  it('shows no block for an answer without thinking, nor for a user message', () => {
    render(
      <>
        <Message message={{ item: assistant('Plain.') }} />
        <Message message={{ item: { ...question.item, reasoning: 'not shown' } }} />
      </>,
    )
    expect(screen.queryByTestId('thinking')).toBeNull()
  })

  it('streams: "Thinking…" in place of the waiting note, then "Thought" once the text starts, the same element throughout', () => {
    const view = (text: string, reasoning: string, streaming: boolean, messages: DisplayMessage[] = [question]) => (
      <MessageList
        messages={messages}
        streaming={streaming}
        streamingText={text}
        streamingReasoning={reasoning}
        mode="answer_question"
        activeAction="answer_question"
      />
    )
    const { rerender } = render(view('', '', true))
    expect(screen.queryByTestId('thinking')).toBeNull()
    expect(screen.getByText('Thinking (answer_question)…')).toBeInTheDocument()

    rerender(view('', 'Let me', true))
    const block = screen.getByTestId('thinking')
    expect(block).toHaveAttribute('data-state', 'thinking')
    expect(screen.getByTestId('thinking-summary')).toHaveTextContent('Thinking…')
    expect(screen.queryByText('Thinking (answer_question)…')).toBeNull()

    rerender(view('', 'Let me see', true))
    expect(screen.getByTestId('thinking-text')).toHaveTextContent('Let me see')
    expect(screen.getByTestId('thinking-count')).toHaveTextContent('3 words')

    rerender(view('Burr is', 'Let me see', true))
    expect(screen.getByTestId('thinking')).toBe(block)
    expect(block).toHaveAttribute('data-state', 'done')
    expect(screen.getByTestId('thinking-summary')).toHaveTextContent('Thought')

    // The final message takes the streamed answer's place: the block is kept.
    rerender(view('', '', false, [question, { item: assistant('Burr is a library.', { reasoning: 'Let me see' }) }]))
    expect(screen.getByTestId('thinking')).toBe(block)
    expect(screen.getByTestId('thinking-text')).toHaveTextContent('Let me see')
  })
})
