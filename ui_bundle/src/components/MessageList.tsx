import { useCallback, useLayoutEffect, useRef, useState } from 'react'
import type { DisplayMessage } from '../hooks/useChat'
import { Message, StreamingMessage } from './Message'

interface MessageListProps {
  messages: DisplayMessage[]
  streaming: boolean
  streamingText: string
  mode: string | null
  activeAction: string | null
  onRegenerate?: (() => void) | undefined
  children?: React.ReactNode
  empty?: React.ReactNode
}

/** How close to the bottom (px) still counts as "at the bottom". */
const STICK_SLACK = 48

/** The conversation, following new text unless the reader has scrolled up. */
export function MessageList(props: MessageListProps) {
  const { messages, streaming, streamingText, mode, activeAction, onRegenerate, children, empty } = props
  const scroller = useRef<HTMLDivElement>(null)
  const [follow, setFollow] = useState(true)
  const followRef = useRef(true)

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
  useLayoutEffect(() => {
    if (lastRole === 'user') setFollowing(true)
  }, [count, lastRole, setFollowing])

  useLayoutEffect(() => {
    const el = scroller.current
    if (el && followRef.current) el.scrollTop = el.scrollHeight
  }, [count, streamingText, streaming, children])

  const jump = () => {
    const el = scroller.current
    if (el) el.scrollTop = el.scrollHeight
    setFollowing(true)
  }

  const lastIndex = messages.length - 1
  return (
    <div className="relative min-h-0 flex-1">
      <div
        ref={scroller}
        onScroll={onScroll}
        data-testid="message-list"
        className="h-full overflow-y-auto px-3 py-4 sm:px-6"
      >
        <div role="log" aria-live="polite" aria-label="Conversation" className="mx-auto flex max-w-3xl flex-col gap-4">
          {messages.length === 0 && !streaming ? empty : null}
          {messages.map((message, index) => (
            <Message
              key={index}
              message={message}
              onRegenerate={index === lastIndex && message.item.role === 'assistant' ? onRegenerate : undefined}
            />
          ))}
          {streaming && <StreamingMessage text={streamingText} mode={mode} action={activeAction} />}
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
