import { useLayoutEffect, useRef, useState, type FormEvent, type KeyboardEvent } from 'react'
import { whenIdle } from '../lib/idle'

interface ComposerProps {
  /** Sends the text; the composer clears itself when this returns true. */
  onSend: (text: string) => boolean
  onStop: () => void
  streaming: boolean
  /** False while sending cannot work yet (e.g. the project is not known). */
  ready?: boolean
}

const MAX_HEIGHT = 200

/**
 * The message box: Enter sends, Shift+Enter adds a line. While an answer streams, Stop ends it,
 * and sending is still possible: the answer is then cut short (kept) and the new prompt answered.
 */
export function Composer({ onSend, onStop, streaming, ready = true }: ComposerProps) {
  const [text, setText] = useState('')
  const area = useRef<HTMLTextAreaElement>(null)

  const fitted = useRef(false)
  useLayoutEffect(() => {
    const el = area.current
    if (!el) return
    const fit = () => {
      el.style.height = 'auto'
      el.style.height = `${Math.min(el.scrollHeight, MAX_HEIGHT)}px`
    }
    if (fitted.current) return fit()
    // The first fit waits for the page's first layout, which the browser then does in its own
    // time: measuring here would make it lay out the whole page in the task that mounts it.
    fitted.current = true
    return whenIdle(fit)
  }, [text])

  const canSend = ready && text.trim().length > 0

  const submit = () => {
    if (!canSend) return
    if (onSend(text)) setText('')
  }

  const onSubmit = (event: FormEvent) => {
    event.preventDefault()
    submit()
  }

  const onKeyDown = (event: KeyboardEvent<HTMLTextAreaElement>) => {
    if (event.key !== 'Enter' || event.shiftKey || event.nativeEvent.isComposing) return
    event.preventDefault()
    submit()
  }

  return (
    <form onSubmit={onSubmit} className="border-t border-gray-200 bg-white px-3 py-3 dark:border-gray-700 dark:bg-gray-900 sm:px-6">
      <div className="mx-auto flex max-w-3xl items-end gap-2">
        <div className="flex-1">
          <label htmlFor="composer-input" className="sr-only">
            Message
          </label>
          <textarea
            id="composer-input"
            ref={area}
            value={text}
            onChange={(e) => setText(e.target.value)}
            onKeyDown={onKeyDown}
            rows={1}
            placeholder={streaming ? 'Send to interrupt the answer with a new prompt…' : 'Ask a question, ask for a poem or for code…'}
            aria-describedby="composer-hint"
            className="block w-full resize-none rounded-md border border-gray-300 bg-white px-3 py-2 text-sm text-gray-900 placeholder:text-gray-400 focus:border-dwlightblue focus:outline-2 focus:outline-offset-0 focus:outline-dwlightblue dark:border-gray-600 dark:bg-gray-800 dark:text-gray-100 dark:placeholder:text-gray-500"
          />
          <p id="composer-hint" className="sr-only">
            Enter sends, Shift+Enter starts a new line.{streaming ? ' Sending now stops the answer being written.' : ''}
          </p>
        </div>
        {streaming && (
          <button
            type="button"
            onClick={onStop}
            className="rounded-md bg-dwred-deep px-4 py-2 text-sm font-semibold text-white hover:bg-red-700 focus-visible:outline-2 focus-visible:outline-offset-2 focus-visible:outline-dwred"
          >
            Stop
          </button>
        )}
        {(!streaming || text.trim().length > 0) && (
          <button
            type="submit"
            disabled={!canSend}
            className="rounded-md bg-dwlightblue-deep px-4 py-2 text-sm font-semibold text-white hover:bg-sky-700 focus-visible:outline-2 focus-visible:outline-offset-2 focus-visible:outline-dwlightblue disabled:cursor-not-allowed disabled:opacity-50"
          >
            Send
          </button>
        )}
      </div>
    </form>
  )
}
