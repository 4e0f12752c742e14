import { memo, useMemo } from 'react'

/** Words in a text (runs of non-space characters). */
export function countWords(text: string): number {
  let count = 0
  let inWord = false
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i)
    // space, tab, newline, vertical tab, form feed, carriage return, no-break space
    const space = code === 32 || (code >= 9 && code <= 13) || code === 160
    if (!space && !inWord) count++
    inWord = !space
  }
  return count
}

interface ThinkingBlockProps {
  /** What the model thought (so far, while it streams). */
  text: string
  /** The model is still thinking: its answer's text has not started. */
  live?: boolean
}

/**
 * A reasoning model's thinking, above its answer: a native disclosure, collapsed by default.
 * Its summary says "Thinking…" (and how many words so far) while the model thinks, "Thought"
 * once the answer's text has started; opened, it shows the thinking as it streams. The element
 * is not controlled, so a reader's open or closed choice survives the answer's end (the
 * streamed answer and its final message are the same element).
 */
export const ThinkingBlock = memo(function ThinkingBlock({ text, live = false }: ThinkingBlockProps) {
  const words = useMemo(() => countWords(text), [text])
  return (
    <details
      data-testid="thinking"
      data-state={live ? 'thinking' : 'done'}
      className="mb-2 rounded-md border border-gray-200 bg-gray-50 px-3 py-1.5 text-sm dark:border-gray-700 dark:bg-gray-800/60"
    >
      <summary
        data-testid="thinking-summary"
        className="cursor-pointer select-none text-gray-600 focus-visible:outline-2 focus-visible:outline-offset-2 focus-visible:outline-dwlightblue dark:text-gray-300"
      >
        <span className={live ? 'font-medium text-dwlightblue-deep dark:text-dwlightblue' : 'font-medium'}>{live ? 'Thinking…' : 'Thought'}</span>
        <span data-testid="thinking-count" className="ml-2 text-xs text-gray-500 dark:text-gray-400">
          {words} {words === 1 ? 'word' : 'words'}
        </span>
        {live && (
          <span
            aria-hidden="true"
            className="ml-2 inline-block h-1.5 w-1.5 animate-pulse rounded-full bg-dwlightblue align-middle"
          />
        )}
      </summary>
      <div
        data-testid="thinking-text"
        className="mt-1.5 max-h-96 overflow-y-auto whitespace-pre-wrap break-words border-l-2 border-gray-300 pl-3 text-gray-600 dark:border-gray-600 dark:text-gray-300"
      >
        {text}
      </div>
    </details>
  )
})
