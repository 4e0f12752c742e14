import { fireEvent, render, screen } from '@testing-library/react'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { waitInAct } from '../test/act'
import { MessageList } from './MessageList'
import type { DisplayMessage } from '../hooks/useChat'

function item(role: 'user' | 'assistant', content: string): DisplayMessage {
  return { item: { role, content, type: 'text', mode: null, model: null, interrupted: false, reasoning: null } }
}

const messages: DisplayMessage[] = [item('user', 'Q')]

/** jsdom has no layout: give the scroller fixed sizes. */
function sized(el: HTMLElement, scrollHeight: { value: number }) {
  Object.defineProperty(el, 'clientHeight', { configurable: true, get: () => 400 })
  Object.defineProperty(el, 'scrollHeight', { configurable: true, get: () => scrollHeight.value })
}

function list(text: string, conversation: DisplayMessage[] = messages, streaming = true) {
  return <MessageList messages={conversation} streaming={streaming} streamingText={text} mode={null} activeAction={null} />
}

/** Scroll the list by hand to `top`, as the reader would. */
function scrollTo(scroller: HTMLElement, top: number) {
  scroller.scrollTop = top
  fireEvent.scroll(scroller)
}

const jumpButton = () => screen.queryByRole('button', { name: 'Jump to latest' })

describe('MessageList auto-scroll without ResizeObserver (each text change scrolls)', () => {
  beforeEach(() => {
    vi.stubGlobal('ResizeObserver', undefined)
  })
  afterEach(() => {
    vi.unstubAllGlobals()
  })

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
    scrollTo(scroller, 100) // far from the bottom (1000 - 400)
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

/**
 * A ResizeObserver the test drives: `report()` is what the browser does after a layout in which
 * an observed element changed size (it calls back with the observed elements).
 */
class StubResizeObserver implements ResizeObserver {
  static all: StubResizeObserver[] = []
  readonly targets = new Set<Element>()
  connected = true
  private readonly callback: ResizeObserverCallback

  constructor(callback: ResizeObserverCallback) {
    this.callback = callback
    StubResizeObserver.all.push(this)
  }

  observe(target: Element) {
    this.targets.add(target)
  }

  unobserve(target: Element) {
    this.targets.delete(target)
  }

  disconnect() {
    this.targets.clear()
    this.connected = false
  }

  report() {
    if (this.targets.size === 0) return
    this.callback([...this.targets].map((target) => ({ target }) as ResizeObserverEntry), this)
  }
}

describe('MessageList auto-scroll with ResizeObserver', () => {
  beforeEach(() => {
    StubResizeObserver.all = []
    vi.stubGlobal('ResizeObserver', StubResizeObserver)
  })
  afterEach(() => {
    vi.unstubAllGlobals()
  })

  /** Renders the list; `grow(h)` makes the content `h` px tall and lets the observers report it. */
  function setup(text = 'a') {
    const height = { value: 1000 }
    const view = render(list(text))
    const scroller = screen.getByTestId('message-list')
    sized(scroller, height)
    const grow = (to: number) => {
      height.value = to
      for (const observer of StubResizeObserver.all) observer.report()
    }
    return { ...view, scroller, height, grow }
  }

  it('watches the conversation content (not the scroller, whose size does not change)', () => {
    setup()
    const watched = StubResizeObserver.all.filter((observer) => observer.connected).flatMap((observer) => [...observer.targets])
    expect(watched).toEqual([screen.getByRole('log', { name: 'Conversation' })])
  })

  it('stays at the bottom as the content grows, also when it grows with no new text', () => {
    const { scroller, rerender, grow } = setup()
    rerender(list('a b'))
    grow(1500)
    expect(scroller.scrollTop).toBe(1500)
    // A block parsed in the worker or a code block highlighted later: no re-render, just growth.
    grow(1800)
    expect(scroller.scrollTop).toBe(1800)
    expect(jumpButton()).toBeNull()
  })

  it('scrolls when the observer reports, not on each streamed token (no layout forced per token)', () => {
    const { scroller, rerender, height, grow } = setup()
    scroller.scrollTop = 1000
    height.value = 1300
    rerender(list('a b'))
    rerender(list('a b c'))
    expect(scroller.scrollTop).toBe(1000)
    grow(1300)
    expect(scroller.scrollTop).toBe(1300)
  })

  it('does not move the view when the reader has scrolled up, and offers a jump to the latest', () => {
    const { scroller, rerender, grow } = setup()
    expect(jumpButton()).toBeNull()
    scrollTo(scroller, 100) // 1000 - 100 - 400 = 500 px above the bottom
    expect(jumpButton()).toBeVisible()
    rerender(list('a b'))
    grow(1500)
    grow(2000)
    expect(scroller.scrollTop).toBe(100)

    fireEvent.click(jumpButton()!)
    expect(scroller.scrollTop).toBe(2000)
    expect(jumpButton()).toBeNull()
    // Following again from there.
    rerender(list('a b c'))
    grow(2600)
    expect(scroller.scrollTop).toBe(2600)
  })

  it('follows again once the reader scrolls back near the bottom by hand', () => {
    const { scroller, grow } = setup()
    scrollTo(scroller, 100)
    grow(1200)
    expect(scroller.scrollTop).toBe(100)
    scrollTo(scroller, 1200 - 400 - 40) // 40 px from the bottom: close enough
    expect(jumpButton()).toBeNull()
    grow(1600)
    expect(scroller.scrollTop).toBe(1600)
  })

  it('counts a reader more than 48 px above the bottom as scrolled up', () => {
    const { scroller, grow } = setup()
    scrollTo(scroller, 1000 - 400 - 60)
    expect(jumpButton()).toBeVisible()
    grow(1400)
    expect(scroller.scrollTop).toBe(540)
  })

  it('keeps the place of a reader who scrolled up when the answer ends, and drops the jump button', () => {
    const { scroller, rerender, grow } = setup()
    scrollTo(scroller, 100)
    rerender(list('', [...messages, item('assistant', 'a b c')], false))
    grow(1500)
    expect(scroller.scrollTop).toBe(100)
    expect(jumpButton()).toBeNull()
  })

  it('follows again at a new prompt, even after the reader scrolled up', () => {
    const { scroller, rerender, height, grow } = setup()
    scrollTo(scroller, 100)
    height.value = 1400
    rerender(list('', [...messages, item('assistant', 'A'), item('user', 'Q2')]))
    expect(scroller.scrollTop).toBe(1400)
    expect(jumpButton()).toBeNull()
    grow(1900)
    expect(scroller.scrollTop).toBe(1900)
  })

  it('uses one observer for the whole stream and disconnects it on unmount', () => {
    const { rerender, unmount, grow, scroller } = setup()
    for (const text of ['a b', 'a b c', 'a b c d']) rerender(list(text))
    expect(StubResizeObserver.all).toHaveLength(1)
    const [observer] = StubResizeObserver.all
    expect(observer!.connected).toBe(true)

    unmount()
    expect(observer!.connected).toBe(false)
    expect(observer!.targets.size).toBe(0)
    grow(5000) // nothing is watched any more
    expect(scroller.scrollTop).not.toBe(5000)
  })
})

describe('MessageList opening a long conversation', () => {
  const conversation = Array.from({ length: 40 }, (_, n) => item(n % 2 ? 'assistant' : 'user', `message ${n}`))
  const shown = () => [...document.querySelectorAll('[data-testid$="-message"]')].map((el) => el.textContent)

  it('shows the newest messages first, then all of them in order, and says when it is done', async () => {
    const { rerender } = render(list('', [], false))
    rerender(list('', conversation, false))
    const log = screen.getByRole('log', { name: 'Conversation' })
    expect(shown()).toEqual([]) // nothing in the task that brought them
    expect(log).toHaveAttribute('aria-busy', 'true')
    await waitInAct(() => expect(shown().length).toBeGreaterThan(0))
    const first = shown()
    expect(first.length).toBeLessThan(conversation.length)
    expect(first.at(-1)).toContain('message 39')
    await waitInAct(() => expect(shown()).toHaveLength(conversation.length))
    expect(shown().map((text) => text?.match(/message \d+/)?.[0])).toEqual(conversation.map((m) => m.item.content))
    expect(log).not.toHaveAttribute('aria-busy')
  })

  it('shows a short conversation and a new turn at once', () => {
    const { rerender } = render(list('', conversation.slice(0, 10), false))
    expect(shown()).toHaveLength(10)
    rerender(list('', conversation.slice(0, 12), false))
    expect(shown()).toHaveLength(12)
  })
})
