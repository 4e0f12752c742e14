import { act, render, screen, within } from '@testing-library/react'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { Markdown } from './Markdown'
import { Message } from './Message'
import { MessageList } from './MessageList'
import { setRenderBackend } from '../lib/renderClient'
import { waitInAct } from '../test/act'
import { manualBackend } from '../test/renderBackend'
import type { DisplayMessage } from '../hooks/useChat'
import type { ChatItem } from '../lib/types'

// Count how often each block's text goes through the markdown parser on the page's thread.
const parsed = vi.hoisted(() => [] as string[])
vi.mock('../lib/markdownPipeline', async (importOriginal) => {
  const original = await importOriginal<typeof import('../lib/markdownPipeline')>()
  return {
    ...original,
    parsePieces: (text: string) => {
      parsed.push(text)
      return original.parsePieces(text)
    },
  }
})

afterEach(() => {
  setRenderBackend(undefined)
  parsed.length = 0
})

function assistant(content: string, extra: Partial<ChatItem> = {}): ChatItem {
  return { role: 'assistant', content, type: 'text', mode: 'answer_question', model: 'demo-model', interrupted: false, reasoning: null, ...extra }
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

  it('renders a list as one list, its items in order', () => {
    const { container } = render(<Markdown text={'Intro\n\n1. one\n2. **two**\n3. three'} />)
    expect(container.querySelectorAll('ol')).toHaveLength(1)
    expect([...container.querySelectorAll('ol > li')].map((li) => li.textContent)).toEqual(['one', 'two', 'three'])
    expect(container.querySelector('ol strong')).toHaveTextContent('two')
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

describe('Markdown with a render worker', () => {
  it('parses the streamed block off the page, one request at a time, showing the last version meanwhile', async () => {
    const worker = manualBackend()
    setRenderBackend(worker.backend)
    const { container, rerender } = render(<Markdown text={'Some **bo'} streaming />)
    // Nothing parsed yet: the text as it came, and a request to the worker (none on this thread).
    expect(container).toHaveTextContent('Some **bo')
    expect(worker.parses).toEqual(['Some **bo'])

    rerender(<Markdown text={'Some **bold** te'} streaming />)
    rerender(<Markdown text={'Some **bold** text'} streaming />)
    expect(worker.parses).toEqual(['Some **bo']) // still one in flight: no backlog
    await act(async () => worker.answerParse())
    expect(container.querySelector('strong')).toBeNull() // "**bo" is not bold yet
    expect(container).toHaveTextContent('Some **bo')

    // The newest text is asked for next (after a rest as long as the parse took).
    await waitInAct(() => expect(worker.parses).toEqual(['Some **bold** text']))
    await act(async () => worker.answerParse())
    expect(container.querySelector('strong')).toHaveTextContent('bold')
    expect(parsed).toEqual([]) // nothing parsed on the page's thread
  })

  it('shows a finished block whole at once, as plain text until its last version is parsed', async () => {
    const worker = manualBackend()
    setRenderBackend(worker.backend)
    const { container, rerender } = render(<Markdown text={'Served **by**'} streaming />)
    await act(async () => worker.answerParse())
    expect(container.querySelector('strong')).toHaveTextContent('by')
    rerender(<Markdown text={'Served **by** burr.'} streaming />) // the worker rests meanwhile

    // The stream ends: all of the words at once (not the older parse without the last one), and
    // the last version asked for without a rest.
    rerender(<Markdown text={'Served **by** burr.'} />)
    expect(container).toHaveTextContent('Served **by** burr.')
    await waitInAct(() => expect(worker.parses).toEqual(['Served **by** burr.']))
    await act(async () => worker.answerParse())
    await waitInAct(() => expect(container.querySelector('strong')).toHaveTextContent('by'))
    expect(container).toHaveTextContent('Served by burr.')
  })

  it('shows a code block being streamed as plain text, and highlights it once closed', async () => {
    const worker = manualBackend()
    setRenderBackend(worker.backend)
    const code = Array.from({ length: 130 }, (_, i) => `x_${i} = ${i}`).join('\n')
    const partial = code.slice(0, code.indexOf('x_20 =') + 3) // ends inside a line
    const { container, rerender } = render(<Markdown text={`\`\`\`python\n${partial}`} streaming />)
    expect(container.querySelector('pre code')?.textContent).toBe(partial)
    rerender(<Markdown text={`\`\`\`python\n${code}\n`} streaming />)
    expect(worker.parses).toEqual([]) // a fenced block needs no markdown parser
    expect(worker.highlights).toEqual([]) // nor highlighting while it is written

    rerender(<Markdown text={`\`\`\`python\n${code}\n\`\`\`\n`} streaming />)
    expect(worker.highlights).toEqual([code])
    await act(async () => worker.answerHighlight())
    const pre = container.querySelector('pre')!
    // Highlighted a block of lines at a time, in idle time; the text stays the code throughout.
    expect(pre.querySelector('code')?.textContent).toBe(code)
    await waitInAct(() => expect(pre).toHaveAttribute('data-highlighted', 'true'))
    expect(pre.querySelector('code')?.textContent).toBe(code)
    expect(pre.querySelectorAll('code > span')).toHaveLength(3) // 130 lines: blocks of 60
    expect(pre.querySelector('.hljs-number')).not.toBeNull()
  })
})

describe('MessageList, when the final message replaces the streamed one', () => {
  const question: DisplayMessage = { item: { role: 'user', content: 'Q', type: 'text', mode: null, model: null, interrupted: false, reasoning: null } }
  const text = 'Intro paragraph.\n\n```python\nprint(1)\n```\n\n- one\n- two'

  function list(messages: DisplayMessage[], streaming: boolean, streamingText = '') {
    return <MessageList messages={messages} streaming={streaming} streamingText={streamingText} mode={null} activeAction={null} />
  }

  it('keeps what is rendered: no parsing, no highlighting, the same elements', async () => {
    const worker = manualBackend()
    setRenderBackend(worker.backend)
    const { container, rerender } = render(list([question], true, text))
    while (worker.parses.length) await act(async () => worker.answerParse())
    await act(async () => worker.answerHighlight())
    await waitInAct(() => expect(container.querySelector('pre')).toHaveAttribute('data-highlighted', 'true'))
    const pre = container.querySelector('pre')
    const item = container.querySelector('li')

    rerender(list([question, { item: assistant(text) }], false))
    const answer = screen.getAllByTestId('assistant-message')
    expect(answer).toHaveLength(1)
    expect(answer[0]).not.toHaveAttribute('data-streaming')
    expect(container.querySelector('pre')).toBe(pre)
    expect(container.querySelector('li')).toBe(item)
    expect(worker.parses).toEqual([])
    expect(worker.highlights).toEqual([])
    expect(parsed).toEqual([])
  })
})

describe('Message', () => {
  it('shows mode, model and time to first token of an answer', () => {
    render(
      <Message
        message={{
          item: assistant('Hi'),
          meta: { mode: 'answer_question', model: 'demo-model', ttft_ms: 123.4, deltas: 3, path: [], sequence_id: 3, usage: null },
        }}
      />,
    )
    const answer = screen.getByTestId('assistant-message')
    expect(within(answer).getByTestId('answer-mode')).toHaveTextContent('answer_question')
    expect(within(answer).getByTestId('answer-model')).toHaveTextContent('demo-model')
    expect(within(answer).getByTestId('answer-ttft')).toHaveTextContent('123 ms')
    expect(within(answer).queryByTestId('answer-usage')).toBeNull() // the server did not report it
  })

  it('shows the tokens an answer cost, with the thinking part when counted', () => {
    const meta = { mode: 'answer_question', model: 'demo-model', ttft_ms: 10, deltas: 3, path: [], sequence_id: 3 }
    const { rerender } = render(
      <Message
        message={{
          item: assistant('Hi'),
          meta: { ...meta, usage: { prompt_tokens: 20, completion_tokens: 100, total_tokens: 120, reasoning_tokens: 40 } },
        }}
      />,
    )
    expect(screen.getByTestId('answer-usage')).toHaveTextContent(/^Usage:\s*120 tokens \(20 in, 100 out, 40 thinking\)$/)
    rerender(
      <Message
        message={{
          item: assistant('Hi'),
          meta: { ...meta, usage: { prompt_tokens: 7, completion_tokens: 5, total_tokens: 12, reasoning_tokens: null } },
        }}
      />,
    )
    expect(screen.getByTestId('answer-usage')).toHaveTextContent(/^Usage:\s*12 tokens \(7 in, 5 out\)$/)
  })

  it('marks an interrupted answer', () => {
    render(<Message message={{ item: assistant('Partial ans', { interrupted: true }) }} />)
    expect(screen.getByTestId('assistant-message')).toHaveAttribute('data-interrupted', 'true')
    expect(screen.getByTestId('interrupted-marker')).toHaveTextContent(/interrupted/i)
  })

  it('marks a stopped answer as stopped, not as a failure', () => {
    render(<Message message={{ item: assistant('Partial ans', { interrupted: true }), stopped: true }} />)
    const marker = screen.getByTestId('interrupted-marker')
    expect(marker).toHaveTextContent('Stopped')
    expect(marker).toHaveAttribute('data-reason', 'stopped')
    expect(marker).not.toHaveTextContent(/interrupted|cut short/i)
  })

  it('shows user text as typed, not as markdown or HTML', () => {
    const { container } = render(
      <Message message={{ item: { role: 'user', content: '**hi** <i>x</i>', type: 'text', mode: null, model: null, interrupted: false, reasoning: null } }} />,
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
