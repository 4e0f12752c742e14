import { Children, startTransition, useCallback, useEffect, useLayoutEffect, useMemo, useRef, useState } from 'react'
import type { DisplayMessage } from '../hooks/useChat'
import type { Votes } from '../hooks/useVotes'
import type { Siblings } from '../lib/branches'
import { whenIdle } from '../lib/idle'
import { revealFor, revealMore, type Reveal } from '../lib/reveal'
import { toolViewsOf, unshownApprovals } from '../lib/toolViews'
import type { ApprovalRequest } from '../lib/types'
import { Message, streamingItem } from './Message'
import { ToolCard, type OnDecide } from './ToolCard'

interface MessageListProps {
  messages: DisplayMessage[]
  streaming: boolean
  streamingText: string
  /** The thinking of the answer being streamed (empty when none). */
  streamingReasoning?: string
  mode: string | null
  activeAction: string | null
  onRegenerate?: (() => void) | undefined
  /** Edit a user message into a new branch (see Message). */
  onEdit?: ((index: number, text: string) => void) | undefined
  /** A new answer to an earlier prompt, in a new branch. */
  onRegenerateBranch?: ((index: number) => void) | undefined
  /** The alternatives at each message across the branch tree (null where there are none). */
  siblings?: readonly (Siblings | null)[] | undefined
  onSwitchBranch?: ((appId: string) => void) | undefined
  /** The tool calls waiting for a person (shown with Approve and Deny). */
  approvals?: ApprovalRequest[] | undefined
  /** The tool calls whose arguments are still streaming. */
  liveToolCalls?: string[] | undefined
  /** Approves or denies a waiting call. */
  onDecide?: OnDecide | undefined
  /** The votes on the answers, by message index. */
  votes?: Votes | undefined
  /** A thumbs up or down (and a comment) on the answer at an index (thumbs are shown only with it). */
  onVote?: ((index: number, thumbsUp: boolean, comment?: string) => void) | undefined
  children?: React.ReactNode
  empty?: React.ReactNode
}

const NONE: ApprovalRequest[] = []
const NONE_LIVE: string[] = []

/** How close to the bottom (px) still counts as "at the bottom". */
const STICK_SLACK = 48

/** The conversation, following new text unless the reader has scrolled up. */
export function MessageList(props: MessageListProps) {
  const { messages, streaming, streamingText, streamingReasoning = '', mode, activeAction, onRegenerate, children, empty } = props
  const { onEdit, onRegenerateBranch, siblings, onSwitchBranch, approvals = NONE, liveToolCalls = NONE_LIVE, onDecide, votes, onVote } = props
  // Recomputed when a message, an approval or a live call changes, not per streamed delta (the
  // messages keep their cards' identity, so they are not rendered again).
  const tools = useMemo(() => toolViewsOf(messages, approvals, liveToolCalls, streaming), [messages, approvals, liveToolCalls, streaming])
  const orphans = useMemo(() => unshownApprovals(messages, approvals), [messages, approvals])
  const scroller = useRef<HTMLDivElement>(null)
  const [follow, setFollow] = useState(true)
  const followRef = useRef(true)
  // (Before the layout effects below that read it.)
  useLayoutEffect(() => {
    followRef.current = follow
  }, [follow])

  const setFollowing = useCallback((value: boolean) => {
    followRef.current = value
    setFollow(value)
  }, [])

  const onScroll = useCallback(() => {
    const el = scroller.current
    if (!el) return
    const atBottom = el.scrollHeight - el.scrollTop - el.clientHeight <= STICK_SLACK
    if (atBottom !== followRef.current) setFollowing(atBottom)
  }, [setFollowing])

  // A new turn (a message appended) follows again.
  const count = messages.length
  const lastRole = messages[count - 1]?.item.role
  const [turn, setTurn] = useState({ count, lastRole })
  if (turn.count !== count || turn.lastRole !== lastRole) {
    setTurn({ count, lastRole })
    if (lastRole === 'user') setFollow(true)
  }

  // A conversation opened (many messages at once) is put on the page newest first, a slice per
  // step: each step waits for an idle moment and renders as a transition, which React splits
  // into short tasks; each commit lays out a slice, not the whole history.
  const [reveal, setReveal] = useState<Reveal>(() => revealFor({ count: 0, start: 0 }, count))
  const shownReveal = revealFor(reveal, count)
  if (shownReveal !== reveal) setReveal(shownReveal)
  const start = shownReveal.start
  useEffect(() => {
    if (start === 0) return
    return whenIdle(() => startTransition(() => setReveal((previous) => revealMore(previous))), 50)
  }, [start])

  // Following the text: the conversation's size is watched (a ResizeObserver runs after the
  // browser's layout, so scrolling there costs no extra layout, and it also sees growth that
  // comes later than the text: a block parsed in the worker, a highlighted code block). Without
  // ResizeObserver, each change of the streamed text scrolls.
  const content = useRef<HTMLDivElement>(null)
  const observes = typeof ResizeObserver !== 'undefined'
  useEffect(() => {
    const el = scroller.current
    const inner = content.current
    if (!el || !inner || !observes) return
    const observer = new ResizeObserver(() => {
      if (followRef.current) el.scrollTop = el.scrollHeight
    })
    observer.observe(inner)
    return () => observer.disconnect()
  }, [observes])

  // (The number of notices, not `children` itself: that is a new array at every render.)
  const notices = Children.toArray(children).length
  const textWithoutObserver = observes ? null : streamingText
  // (While a conversation is revealed, the ResizeObserver follows it: scrolling here would make
  // the browser lay out the page in this task.)
  const revealing = observes && start > 0
  const shownWithoutObserver = observes ? null : start
  useLayoutEffect(() => {
    const el = scroller.current
    // (Nor when there is nothing to scroll: the page's first layout is the browser's to do.)
    const nothing = count === 0 && !streaming && notices === 0
    if (el && followRef.current && !revealing && !nothing) el.scrollTop = el.scrollHeight
  }, [count, streaming, notices, textWithoutObserver, revealing, shownWithoutObserver])

  const jump = () => {
    const el = scroller.current
    if (el) el.scrollTop = el.scrollHeight
    setFollowing(true)
  }

  const lastIndex = messages.length - 1
  const items = messages.map((message, index) => {
    // A tool's message is shown in the card of its call, in the answer that called it.
    if (message.item.role === 'tool' || index < start) return null
    return (
      <Message
        key={index}
        index={index}
        message={message}
        onRegenerate={index === lastIndex && message.item.role === 'assistant' ? onRegenerate : undefined}
        onEdit={onEdit}
        onRegenerateBranch={messages[index - 1]?.item.role === 'user' ? onRegenerateBranch : undefined}
        siblings={siblings?.[index]}
        onSwitchBranch={onSwitchBranch}
        busy={streaming}
        tools={tools[index]}
        onDecide={onDecide}
        vote={votes?.[index]}
        onVote={message.item.role === 'assistant' ? onVote : undefined}
      />
    )
  })
  if (streaming) {
    // In the same list, keyed as the message it becomes: when the final message arrives, React
    // keeps what is rendered (parsed blocks, highlighted code) instead of building it again.
    items.push(
      <Message
        key={messages.length}
        message={{ item: streamingItem(streamingText, mode, streamingReasoning) }}
        streaming={{ mode, action: activeAction }}
      />,
    )
  }
  return (
    <div className="relative min-h-0 flex-1">
      <div
        ref={scroller}
        onScroll={onScroll}
        data-testid="message-list"
        // Opaque (the page's colour), so the browser can scroll it without painting it again.
        className="h-full overflow-y-auto bg-gray-50 px-3 py-4 sm:px-6 dark:bg-gray-950"
      >
        <div
          ref={content}
          role="log"
          aria-live="polite"
          aria-label="Conversation"
          aria-busy={start > 0 ? 'true' : undefined}
          className="mx-auto max-w-3xl space-y-4">
          {messages.length === 0 && !streaming ? empty : null}
          {items}
          {orphans.map((approval) => (
            <ToolCard
              key={approval.id}
              view={{ call: { id: approval.id, name: approval.name, arguments: approval.arguments, needs_approval: true }, state: 'awaiting', outcome: null, approval }}
              onDecide={onDecide}
              busy={streaming}
            />
          ))}
          {children}
        </div>
      </div>
      {!follow && streaming && (
        <button
          type="button"
          onClick={jump}
          className="absolute bottom-3 left-1/2 -translate-x-1/2 rounded-full border border-gray-300 bg-white px-3 py-1 text-xs font-medium text-gray-700 shadow focus-visible:outline-2 focus-visible:outline-offset-2 focus-visible:outline-dwlightblue dark:border-gray-600 dark:bg-gray-800 dark:text-gray-200"
        >
          Jump to latest
        </button>
      )}
    </div>
  )
}
