import { fireEvent, render, screen } from '@testing-library/react'
import { describe, expect, it } from 'vitest'
import { MessageList } from './MessageList'
import type { DisplayMessage } from '../hooks/useChat'

const messages: DisplayMessage[] = [
  { item: { role: 'user', content: 'Q', type: 'text', mode: null, model: null, interrupted: false, reasoning: null } },
]

/** jsdom has no layout: give the scroller fixed sizes. */
function sized(el: HTMLElement, scrollHeight: { value: number }) {
  Object.defineProperty(el, 'clientHeight', { configurable: true, get: () => 400 })
  Object.defineProperty(el, 'scrollHeight', { configurable: true, get: () => scrollHeight.value })
}

function list(text: string) {
  return <MessageList messages={messages} streaming streamingText={text} mode={null} activeAction={null} />
}

describe('MessageList auto-scroll', () => {
  it('follows streamed text while the reader is at the bottom', () => {
    const height = { value: 1000 }
    const { rerender } = render(list('a'))
    const scroller = screen.getByTestId('message-list')
    sized(scroller, height)
    height.value = 1500
    rerender(list('a b'))
    expect(scroller.scrollTop).toBe(1500)
  })

  it('stops following when the reader scrolls up, and offers a jump back', () => {
    const height = { value: 1000 }
    const { rerender } = render(list('a'))
    const scroller = screen.getByTestId('message-list')
    sized(scroller, height)
    scroller.scrollTop = 100 // far from the bottom (1000 - 400)
    fireEvent.scroll(scroller)
    height.value = 1500
    rerender(list('a b'))
    expect(scroller.scrollTop).toBe(100)
    fireEvent.click(screen.getByRole('button', { name: 'Jump to latest' }))
    expect(scroller.scrollTop).toBe(1500)
    height.value = 2000
    rerender(list('a b c'))
    expect(scroller.scrollTop).toBe(2000)
  })
})
