import { render, screen, within } from '@testing-library/react'
import { describe, expect, it, vi } from 'vitest'
import { Markdown } from './Markdown'
import { Message } from './Message'
import type { ChatItem } from '../lib/types'

// Count how often each block's text goes through the markdown parser.
const parsed = vi.hoisted(() => [] as string[])
vi.mock('react-markdown', async (importOriginal) => {
  const original = await importOriginal<typeof import('react-markdown')>()
  const Original = original.default
  return {
    ...original,
    default: (props: Parameters<typeof Original>[0]) => {
      parsed.push(String(props.children))
      return <Original {...props} />
    },
  }
})

function assistant(content: string, extra: Partial<ChatItem> = {}): ChatItem {
  return { role: 'assistant', content, type: 'text', mode: 'answer_question', model: 'demo-model', interrupted: false, ...extra }
}

describe('Markdown', () => {
  it('renders GitHub-flavoured markdown', () => {
    const { container } = render(
      <Markdown text={'# Heading\n\nSome **bold** and ~~gone~~.\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n- [x] done'} />,
    )
    expect(screen.getByRole('heading', { name: 'Heading' })).toBeInTheDocument()
    expect(container.querySelector('strong')).toHaveTextContent('bold')
    expect(container.querySelector('del')).toHaveTextContent('gone')
    expect(screen.getByRole('table')).toBeInTheDocument()
    expect(screen.getByRole('checkbox')).toBeChecked()
  })

  it('keeps raw HTML as visible text and never creates script or img elements', () => {
    const text = 'Look: <script>window.__pwned = 1</script>\n\n<img src=x onerror="window.__pwned = 2">\n\n<b>not bold</b>'
    const { container } = render(<Markdown text={text} />)
    expect(container.querySelector('script')).toBeNull()
    expect(container.querySelector('img')).toBeNull()
    expect(container.querySelector('b')).toBeNull()
    expect(container.textContent).toContain('<script>window.__pwned = 1</script>')
    expect(container.textContent).toContain('<img src=x onerror="window.__pwned = 2">')
    expect(container.textContent).toContain('<b>not bold</b>')
    expect((window as unknown as { __pwned?: number }).__pwned).toBeUndefined()
  })

  it('opens links in a new tab without opener', () => {
    render(<Markdown text={'See [Burr](https://burr.apache.org/) and https://example.com'} />)
    for (const link of screen.getAllByRole('link')) {
      expect(link).toHaveAttribute('target', '_blank')
      expect(link).toHaveAttribute('rel', 'noopener noreferrer')
    }
    expect(screen.getByRole('link', { name: 'Burr' })).toHaveAttribute('href', 'https://burr.apache.org/')
  })

  it('drops javascript: links', () => {
    render(<Markdown text={'[click](javascript:alert(1))'} />)
    expect(screen.getByText('click').getAttribute('href') ?? '').not.toContain('javascript')
  })

  it('renders fenced code with a copy button', async () => {
    const writeText = vi.fn(async (_text: string) => undefined)
    Object.defineProperty(navigator, 'clipboard', { value: { writeText }, configurable: true })
    const { container } = render(<Markdown text={'```python\nprint("hi")\n```'} />)
    expect(container.querySelector('pre code')).toHaveTextContent('print("hi")')
    screen.getByRole('button', { name: 'Copy code' }).click()
    await vi.waitFor(() => expect(writeText).toHaveBeenCalledWith('print("hi")'))
    expect(await screen.findByRole('button', { name: 'Copied' })).toBeInTheDocument()
  })

  it('does not parse finished blocks again while the last block grows', () => {
    const { rerender } = render(<Markdown text={'First block.\n\nSecond'} />)
    parsed.length = 0
    rerender(<Markdown text={'First block.\n\nSecond gro'} />)
    rerender(<Markdown text={'First block.\n\nSecond grows'} />)
    expect(parsed).toEqual(['Second gro', 'Second grows'])
  })
})

describe('Message', () => {
  it('shows mode, model and time to first token of an answer', () => {
    render(
      <Message
        message={{
          item: assistant('Hi'),
          meta: { mode: 'answer_question', model: 'demo-model', ttft_ms: 123.4, deltas: 3, path: [], sequence_id: 3 },
        }}
      />,
    )
    const answer = screen.getByTestId('assistant-message')
    expect(within(answer).getByTestId('answer-mode')).toHaveTextContent('answer_question')
    expect(within(answer).getByTestId('answer-model')).toHaveTextContent('demo-model')
    expect(within(answer).getByTestId('answer-ttft')).toHaveTextContent('123 ms')
  })

  it('marks an interrupted answer', () => {
    render(<Message message={{ item: assistant('Partial ans', { interrupted: true }) }} />)
    expect(screen.getByTestId('assistant-message')).toHaveAttribute('data-interrupted', 'true')
    expect(screen.getByTestId('interrupted-marker')).toHaveTextContent(/interrupted/i)
  })

  it('shows user text as typed, not as markdown or HTML', () => {
    const { container } = render(
      <Message message={{ item: { role: 'user', content: '**hi** <i>x</i>', type: 'text', mode: null, model: null, interrupted: false } }} />,
    )
    expect(container.querySelector('strong, i')).toBeNull()
    expect(screen.getByTestId('user-message')).toHaveTextContent('**hi** <i>x</i>')
  })

  it('offers Regenerate only when asked to', () => {
    const onRegenerate = vi.fn()
    const { rerender } = render(<Message message={{ item: assistant('A') }} />)
    expect(screen.queryByRole('button', { name: 'Regenerate' })).toBeNull()
    rerender(<Message message={{ item: assistant('A') }} onRegenerate={onRegenerate} />)
    screen.getByRole('button', { name: 'Regenerate' }).click()
    expect(onRegenerate).toHaveBeenCalled()
  })
})
