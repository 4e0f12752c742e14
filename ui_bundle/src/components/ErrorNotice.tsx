import type { ChatError } from '../hooks/useChat'

/** The turn failed: what the server said, and Retry when trying again may help. */
export function ErrorNotice({ error, onRetry, busy }: { error: ChatError; onRetry: () => void; busy?: boolean }) {
  return (
    <div
      role="alert"
      data-testid="chat-error"
      data-code={error.code}
      className="flex flex-wrap items-center gap-3 rounded-lg border border-dwred/50 bg-red-50 px-4 py-3 text-sm text-red-900 dark:bg-red-950/40 dark:text-red-100"
    >
      <p className="min-w-0 flex-1 break-words">
        <span className="font-semibold">The answer failed.</span> {error.message}
      </p>
      {error.retryable && (
        <button
          type="button"
          onClick={onRetry}
          disabled={busy}
          className="rounded-md border border-dwred/60 bg-white px-3 py-1 font-medium text-red-800 hover:bg-red-100 focus-visible:outline-2 focus-visible:outline-offset-2 focus-visible:outline-dwred disabled:opacity-50 dark:bg-transparent dark:text-red-100 dark:hover:bg-red-900/40"
        >
          Retry
        </button>
      )}
    </div>
  )
}

/** The last turn was stopped before any text: a neutral note (not a failure), and a way to ask again. */
export function StoppedNotice({ onRegenerate }: { onRegenerate: () => void }) {
  return (
    <div
      data-testid="stopped-notice"
      className="flex flex-wrap items-center gap-3 rounded-lg border border-gray-200 bg-gray-50 px-4 py-2 text-sm text-gray-700 dark:border-gray-700 dark:bg-gray-900 dark:text-gray-300"
    >
      <p className="min-w-0 flex-1">Stopped before any answer.</p>
      <button
        type="button"
        onClick={onRegenerate}
        className="rounded-md border border-gray-300 px-2.5 py-1 text-xs font-medium text-gray-700 hover:bg-gray-100 focus-visible:outline-2 focus-visible:outline-offset-2 focus-visible:outline-dwlightblue disabled:opacity-50 dark:border-gray-600 dark:text-gray-200 dark:hover:bg-gray-800"
      >
        Regenerate
      </button>
    </div>
  )
}
