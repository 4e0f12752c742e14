import { memo, useId, useState, type FormEvent } from 'react'
import { prettyJson, type ToolView } from '../lib/toolViews'
import { formatMs } from './format'

/** A person's answer to a waiting call: approved or not, and why (optional). */
export type OnDecide = (toolCallId: string, approved: boolean, reason: string | null) => void

function statusText({ state, outcome }: ToolView): string {
  switch (state) {
    case 'arguments':
      return 'writing arguments…'
    case 'running':
      return 'running…'
    case 'awaiting':
      return 'waiting for approval'
    case 'not_run':
      return 'not run'
    case 'done':
      if (outcome?.status === 'error') return 'error'
      if (outcome?.status === 'denied') return outcome.reason ? `denied: ${outcome.reason}` : 'denied'
      return 'done'
  }
}

const statusColour: Record<string, string> = {
  ok: 'text-green-800 dark:text-green-300',
  error: 'text-red-800 dark:text-red-300',
  denied: 'text-amber-900 dark:text-amber-200',
  awaiting: 'text-amber-900 dark:text-amber-200',
  live: 'text-dwlightblue-deep dark:text-dwlightblue',
  idle: 'text-gray-600 dark:text-gray-300',
}

function colourOf({ state, outcome }: ToolView): string {
  if (state === 'done') return statusColour[outcome?.status ?? 'ok'] ?? ''
  if (state === 'awaiting') return statusColour.awaiting ?? ''
  if (state === 'not_run') return statusColour.idle ?? ''
  return statusColour.live ?? ''
}

const decideButton =
  'rounded-md px-3 py-1 text-xs font-semibold focus-visible:outline-2 focus-visible:outline-offset-2 focus-visible:outline-dwlightblue disabled:cursor-not-allowed disabled:opacity-50'

/** Approve or Deny a waiting call, with an optional reason (the model is told). */
function ApprovalForm({ view, onDecide, busy }: { view: ToolView; onDecide: OnDecide | undefined; busy: boolean }) {
  const [reason, setReason] = useState('')
  const reasonId = useId()
  const messageId = useId()
  const id = view.call.id
  const decide = (approved: boolean) => (event?: FormEvent) => {
    event?.preventDefault()
    onDecide?.(id, approved, reason.trim() || null)
  }
  const disabled = busy || !onDecide
  return (
    <form
      data-testid="approval-card"
      data-tool-call={id}
      aria-describedby={messageId}
      onSubmit={decide(true)}
      className="mt-2 space-y-2 rounded-md border border-amber-300 bg-amber-50 p-2 text-sm text-gray-900 dark:border-amber-700 dark:bg-amber-950/40 dark:text-gray-100"
    >
      <p id={messageId} data-testid="approval-message">
        {view.approval?.message ?? `Run ${view.call.name}?`}
      </p>
      <div className="flex flex-wrap items-center gap-2">
        <label htmlFor={reasonId} className="text-xs text-gray-700 dark:text-gray-300">
          Reason (optional)
        </label>
        <input
          id={reasonId}
          type="text"
          value={reason}
          maxLength={1000}
          onChange={(e) => setReason(e.target.value)}
          className="min-w-40 flex-1 rounded-md border border-gray-300 bg-white px-2 py-1 text-sm text-gray-900 focus:border-dwlightblue focus:outline-2 focus:outline-dwlightblue dark:border-gray-600 dark:bg-gray-800 dark:text-gray-100"
        />
      </div>
      <div className="flex gap-2">
        <button type="submit" disabled={disabled} className={`${decideButton} bg-dwlightblue-deep text-white hover:bg-sky-700`}>
          Approve
        </button>
        <button
          type="button"
          disabled={disabled}
          onClick={decide(false)}
          className={`${decideButton} border border-gray-400 bg-white text-gray-800 hover:bg-gray-100 dark:border-gray-500 dark:bg-gray-800 dark:text-gray-100 dark:hover:bg-gray-700`}
        >
          Deny
        </button>
      </div>
    </form>
  )
}

/**
 * One tool call in an answer: its name and state, then (a native disclosure, open until the call
 * has ended) its arguments as pretty JSON (streaming in as the model writes them) and its result,
 * error or denial, and the time it took. A call waiting for a person has Approve and Deny.
 */
export const ToolCard = memo(function ToolCard({ view, onDecide, busy = false }: { view: ToolView; onDecide?: OnDecide | undefined; busy?: boolean }) {
  const { call, state, outcome } = view
  const ended = state === 'done' || state === 'not_run'
  const duration = outcome?.duration_ms
  const label = outcome?.status === 'error' ? 'Error' : outcome?.status === 'denied' ? 'Denied' : 'Result'
  const output = outcome?.status === 'denied' ? (outcome.reason ? `denied: ${outcome.reason}` : 'denied') : outcome ? prettyJson(outcome.content) : null
  return (
    <div
      data-testid="tool-card"
      data-tool-name={call.name}
      data-state={state}
      data-status={outcome?.status ?? undefined}
      className="my-2 rounded-md border border-gray-200 bg-gray-50 px-3 py-1.5 text-sm dark:border-gray-700 dark:bg-gray-800/60"
    >
      {/* Open while the call streams, runs or waits; closed once it has ended (a reader may open it). */}
      <details open={!ended} data-testid="tool-details">
        <summary className="cursor-pointer select-none focus-visible:outline-2 focus-visible:outline-offset-2 focus-visible:outline-dwlightblue">
          <span className="text-xs text-gray-600 dark:text-gray-300">Tool </span>
          <span className="font-mono font-medium" data-testid="tool-name">
            {call.name}
          </span>{' '}
          <span data-testid="tool-status" className={`ml-1 text-xs font-medium ${colourOf(view)}`}>
            {statusText(view)}
          </span>
          {duration !== null && duration !== undefined && (
            <>
              {', '}
              <span data-testid="tool-duration" className="text-xs text-gray-600 dark:text-gray-300">
                {formatMs(duration)}
              </span>
            </>
          )}
        </summary>
        <div className="mt-1.5 space-y-1.5">
          <div>
            <p className="text-xs font-medium text-gray-600 dark:text-gray-300">Arguments</p>
            <pre data-testid="tool-arguments" className="max-h-60 overflow-auto whitespace-pre-wrap break-words rounded bg-white px-2 py-1 font-mono text-xs text-gray-900 dark:bg-gray-900 dark:text-gray-100">
              {prettyJson(call.arguments) || ' '}
            </pre>
          </div>
          {output !== null && (
            <div>
              <p className="text-xs font-medium text-gray-600 dark:text-gray-300">{label}</p>
              <pre data-testid="tool-output" className="max-h-60 overflow-auto whitespace-pre-wrap break-words rounded bg-white px-2 py-1 font-mono text-xs text-gray-900 dark:bg-gray-900 dark:text-gray-100">
                {output}
              </pre>
            </div>
          )}
        </div>
      </details>
      {state === 'awaiting' && <ApprovalForm view={view} onDecide={onDecide} busy={busy} />}
    </div>
  )
})
