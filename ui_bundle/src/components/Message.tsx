import { memo, useState, type FormEvent, type KeyboardEvent } from 'react'
import type { AnswerMeta, DisplayMessage } from '../hooks/useChat'
import type { Vote } from '../hooks/useVotes'
import type { Siblings } from '../lib/branches'
import type { ToolView } from '../lib/toolViews'
import type { ChatItem, TokenUsage } from '../lib/types'
import { formatMs } from './format'
import { Markdown } from './Markdown'
import { ThinkingBlock } from './ThinkingBlock'
import { ToolCard, type OnDecide } from './ToolCard'
import { VoteButtons } from './VoteButtons'

export { formatMs }

/** "120 tokens (20 in, 100 out, 40 thinking)"; the thinking part only when the server counted it. */
export function formatUsage(usage: TokenUsage): string {
  const parts = [`${usage.prompt_tokens} in`, `${usage.completion_tokens} out`]
  if (usage.reasoning_tokens !== null && usage.reasoning_tokens !== undefined) {
    parts.push(`${usage.reasoning_tokens} thinking`)
  }
  return `${usage.total_tokens} ${usage.total_tokens === 1 ? 'token' : 'tokens'} (${parts.join(', ')})`
}

function MetaLine({ item, meta, streaming }: { item?: ChatItem; meta?: AnswerMeta | undefined; streaming?: { mode: string | null } }) {
  const mode = meta?.mode ?? item?.mode ?? streaming?.mode ?? null
  const model = meta?.model ?? item?.model ?? null
  const parts: { label: string; value: string; testid: string }[] = []
  if (mode) parts.push({ label: 'Mode', value: mode, testid: 'answer-mode' })
  if (model) parts.push({ label: 'Model', value: model, testid: 'answer-model' })
  if (meta && meta.ttft_ms !== null && meta.ttft_ms !== undefined) {
    parts.push({ label: 'First token', value: formatMs(meta.ttft_ms), testid: 'answer-ttft' })
  }
  if (meta?.usage) parts.push({ label: 'Usage', value: formatUsage(meta.usage), testid: 'answer-usage' })
  if (!parts.length && !streaming) return null
  return (
    <dl className="mt-2 flex flex-wrap gap-x-3 gap-y-1 text-xs text-gray-500 dark:text-gray-400">
      {parts.map((p) => (
        <div key={p.label} className="flex gap-1" data-testid={p.testid}>
          <dt>{p.label}:</dt>
          <dd className="font-mono text-gray-700 dark:text-gray-300">{p.value}</dd>
        </div>
      ))}
      {streaming && (
        <div className="flex gap-1">
          <dt className="sr-only">Status:</dt>
          <dd className="text-dwlightblue-deep dark:text-dwlightblue">
            {/* The dot pulses, not the word: text fading to half opacity would not stay readable. */}
            <span aria-hidden="true" className="mr-1 inline-block h-1.5 w-1.5 animate-pulse rounded-full bg-dwlightblue align-middle" />
            streaming…
          </dd>
        </div>
      )}
    </dl>
  )
}

function Body({ item, streaming }: { item: ChatItem; streaming: boolean }) {
  if (item.role === 'user') {
    return <p className="whitespace-pre-wrap break-words">{item.content}</p>
  }
  if (item.type === 'image' && /^https?:\/\//i.test(item.content)) {
    return <img src={item.content} alt="Generated" className="max-h-96 rounded-md" loading="lazy" />
  }
  return <Markdown text={item.content} streaming={streaming} />
}

/** What is going on while an answer streams. */
export interface StreamingInfo {
  mode: string | null
  /** The Burr action running now. */
  action: string | null
}

interface MessageProps {
  message: DisplayMessage
  /** Shown on the last answer when the page can ask again (in this conversation). */
  onRegenerate?: (() => void) | undefined
  /** Set while this answer is being streamed. */
  streaming?: StreamingInfo | undefined
  /** The message's index in the conversation (for the callbacks below). */
  index?: number
  /** A user message: edit it and send it in a new branch. */
  onEdit?: ((index: number, text: string) => void) | undefined
  /** An earlier answer: a new answer to its prompt, in a new branch. */
  onRegenerateBranch?: ((index: number) => void) | undefined
  /** The alternatives at this message across the branch tree (two or more). */
  siblings?: Siblings | null | undefined
  /** Opens another alternative (a conversation of the tree). */
  onSwitchBranch?: ((appId: string) => void) | undefined
  /** Editing and branching are off (an answer streams). */
  busy?: boolean | undefined
  /** The cards of the tools this answer called (see `toolViewsOf`). */
  tools?: ToolView[] | null | undefined
  /** Approves or denies a call waiting for a person. */
  onDecide?: OnDecide | undefined
  /** This answer's vote, if the reader gave one. */
  vote?: Vote | undefined
  /** An answer: a thumbs up or down on it, with a comment or keeping the one given (a Burr
   * annotation on the step that wrote it). */
  onVote?: ((index: number, thumbsUp: boolean, comment?: string) => void) | undefined
}

const smallButton =
  'rounded-md border border-gray-300 px-2.5 py-1 text-xs font-medium text-gray-700 hover:bg-gray-50 focus-visible:outline-2 focus-visible:outline-offset-2 focus-visible:outline-dwlightblue disabled:cursor-not-allowed disabled:opacity-50 dark:border-gray-600 dark:text-gray-200 dark:hover:bg-gray-800'

/** `‹ 2 / 3 ›`: steps through the alternatives at a message (each one a conversation of the tree). */
export function BranchSwitcher({ siblings, onSwitch }: { siblings: Siblings; onSwitch: (appId: string) => void }) {
  const { ids, position } = siblings
  const previous = ids[position - 1]
  const next = ids[position + 1]
  return (
    <div role="group" aria-label="Branches" data-testid="branch-switcher" className="flex items-center gap-1 text-xs text-gray-600 dark:text-gray-300">
      <button
        type="button"
        aria-label="Previous branch"
        disabled={previous === undefined}
        onClick={() => previous !== undefined && onSwitch(previous)}
        className="rounded px-1.5 py-0.5 hover:bg-gray-100 disabled:opacity-40 dark:hover:bg-gray-800"
      >
        ‹
      </button>
      <span data-testid="branch-position" className="tabular-nums">
        {position + 1} / {ids.length}
      </span>
      <button
        type="button"
        aria-label="Next branch"
        disabled={next === undefined}
        onClick={() => next !== undefined && onSwitch(next)}
        className="rounded px-1.5 py-0.5 hover:bg-gray-100 disabled:opacity-40 dark:hover:bg-gray-800"
      >
        ›
      </button>
    </div>
  )
}

/** A user message opened for editing: Send makes a branch with the new text, Cancel closes it. */
function MessageEditor({ initial, onSend, onCancel }: { initial: string; onSend: (text: string) => void; onCancel: () => void }) {
  const [text, setText] = useState(initial)
  const canSend = text.trim().length > 0
  const submit = (event?: FormEvent) => {
    event?.preventDefault()
    if (canSend) onSend(text)
  }
  const onKeyDown = (event: KeyboardEvent<HTMLTextAreaElement>) => {
    if (event.key === 'Escape') {
      event.preventDefault()
      onCancel()
    } else if (event.key === 'Enter' && !event.shiftKey && !event.nativeEvent.isComposing) {
      event.preventDefault()
      submit()
    }
  }
  return (
    <form onSubmit={submit} className="space-y-2" data-testid="message-editor">
      <textarea
        aria-label="Edited message"
        value={text}
        autoFocus
        onChange={(e) => setText(e.target.value)}
        onKeyDown={onKeyDown}
        rows={Math.min(8, Math.max(2, text.split('\n').length))}
        className="block w-full min-w-64 resize-y rounded-md border border-gray-300 bg-white px-3 py-2 text-sm text-gray-900 focus:border-dwlightblue focus:outline-2 focus:outline-dwlightblue dark:border-gray-600 dark:bg-gray-800 dark:text-gray-100"
      />
      <div className="flex justify-end gap-2">
        <button type="button" onClick={onCancel} className={smallButton}>
          Cancel
        </button>
        <button
          type="submit"
          disabled={!canSend}
          className="rounded-md bg-dwlightblue-deep px-2.5 py-1 text-xs font-semibold text-white hover:bg-sky-700 disabled:cursor-not-allowed disabled:opacity-50"
        >
          Send
        </button>
      </div>
    </form>
  )
}

/**
 * One message of the conversation; memoized so finished messages do not re-render per token.
 * The answer being streamed is this component too, at the place its final message takes, so
 * when the message arrives React keeps everything already rendered (parsed blocks, highlighted
 * code) instead of building it again.
 */
export const Message = memo(function Message(props: MessageProps) {
  const { message, onRegenerate, streaming, index = 0, onEdit, onRegenerateBranch, siblings, onSwitchBranch, busy, tools, onDecide, vote, onVote } = props
  const { item, meta, stopped } = message
  const [editing, setEditing] = useState(false)
  const isUser = item.role === 'user'
  const isError = item.type === 'error'
  const waiting = streaming && !item.content
  const reasoning = isUser ? null : item.reasoning
  const hasActions =
    !streaming &&
    Boolean(onRegenerate || (onRegenerateBranch && !isUser) || (onEdit && isUser && !editing) || (siblings && onSwitchBranch) || (onVote && !isUser))
  const actions = hasActions ? (
    <div className={`mt-2 flex flex-wrap items-center gap-2 ${isUser ? 'justify-end' : ''}`}>
      {siblings && onSwitchBranch && <BranchSwitcher siblings={siblings} onSwitch={onSwitchBranch} />}
      {!isUser && onVote && <VoteButtons vote={vote} onVote={(thumbsUp, comment) => onVote(index, thumbsUp, comment)} />}
      {isUser && onEdit && !editing && (
        <button type="button" aria-label="Edit message" disabled={busy} onClick={() => setEditing(true)} className={smallButton}>
          Edit
        </button>
      )}
      {!isUser && onRegenerate ? (
        <button type="button" onClick={onRegenerate} className={smallButton}>
          Regenerate
        </button>
      ) : !isUser && onRegenerateBranch ? (
        <button
          type="button"
          disabled={busy}
          onClick={() => onRegenerateBranch(index)}
          title="A new answer to this prompt, in a new branch"
          className={smallButton}
        >
          Regenerate
        </button>
      ) : null}
    </div>
  ) : null
  const bubble = (
    <article
      data-testid={isUser ? 'user-message' : 'assistant-message'}
      data-tools={tools?.length ? 'true' : undefined}
      data-streaming={streaming ? 'true' : undefined}
      data-interrupted={item.interrupted ? 'true' : undefined}
      aria-label={isUser ? 'You said' : streaming ? 'Assistant is answering' : 'Assistant answered'}
      // The class stays the same when streaming ends (the border follows data-streaming): a class
      // change makes the browser restyle the whole answer (the typography plugin's `not-prose`
      // rules match on the class attribute of any ancestor), a long task for a long answer.
      // An answer off screen is neither styled, laid out nor painted (content-visibility; its
      // height is taken as 12rem until it has been laid out once): opening a long conversation
      // lays out the answers in view only.
      className={
        isUser
          ? 'ml-auto w-fit max-w-[85%] rounded-lg bg-blue-50 px-4 py-2 text-gray-900 dark:bg-dwdarkblue dark:text-gray-100'
          : `max-w-full rounded-lg border px-4 py-3 [contain-intrinsic-size:auto_12rem] [content-visibility:auto] ${
              isError
                ? 'border-dwred/50 bg-red-50 text-red-900 dark:bg-red-950/40 dark:text-red-100'
                : 'border-gray-200 bg-white text-gray-900 data-streaming:border-dwlightblue/40 dark:border-gray-700 dark:bg-gray-900 dark:text-gray-100 dark:data-streaming:border-dwlightblue/40'
            }`
      }
    >
      {reasoning ? <ThinkingBlock text={reasoning} live={Boolean(waiting)} /> : null}
      {editing && onEdit ? (
        <MessageEditor
          initial={item.content}
          onCancel={() => setEditing(false)}
          onSend={(text) => {
            setEditing(false)
            onEdit(index, text)
          }}
        />
      ) : waiting ? (
        reasoning ? null : (
          <p className="text-sm text-gray-500 dark:text-gray-400">
            Thinking{streaming.action ? ` (${streaming.action})` : ''}…
          </p>
        )
      ) : item.content || !tools?.length ? (
        <Body item={item} streaming={Boolean(streaming)} />
      ) : null}
      {tools?.map((view) => <ToolCard key={view.call.id} view={view} onDecide={onDecide} busy={busy} />)}
      {item.interrupted && (
        <p
          data-testid="interrupted-marker"
          data-reason={stopped ? 'stopped' : undefined}
          className={
            stopped
              ? 'mt-2 block w-fit rounded bg-gray-100 px-2 py-0.5 text-xs font-medium text-gray-700 dark:bg-gray-800 dark:text-gray-300'
              : 'mt-2 block w-fit rounded bg-amber-100 px-2 py-0.5 text-xs font-medium text-amber-900 dark:bg-amber-900/50 dark:text-amber-100'
          }
        >
          {stopped ? 'Stopped' : 'Interrupted: this answer was cut short.'}
        </p>
      )}
      {!isUser && <MetaLine item={item} meta={meta} streaming={streaming} />}
      {!isUser && actions}
    </article>
  )
  // A user message's buttons sit under its bubble, outside the message itself (its text stays the
  // prompt's); an answer's sit inside it, under its details.
  if (isUser) {
    return (
      <div data-testid="user-message-row" className="flex flex-col items-end">
        {bubble}
        {actions}
      </div>
    )
  }
  return bubble
})

/** The item of an answer being streamed (with the thinking streamed before it, if any). */
export function streamingItem(text: string, mode: string | null, reasoning = ''): ChatItem {
  return { role: 'assistant', content: text, type: 'text', mode, model: null, interrupted: false, reasoning: reasoning || null }
}
