import type { GraphInfo } from '../lib/types'

interface BurrPanelProps {
  graph: GraphInfo | null
  graphError: string | null
  /** The action running now (from `action` events). */
  activeAction: string | null
  /** The actions of the current turn, or of the last answer. */
  path: string[]
  streaming: boolean
  project: string | null
  appId: string
  /** Whether the conversation exists on the server (so Burr's UI can show it). */
  saved: boolean
  burrBase: string
  /** Whether the conversation already has answers (e.g. loaded from its history). */
  hasAnswers?: boolean
  /** Tool calls wait for a person: the graph halted before its approval step. */
  awaitingApproval?: boolean
}

/** The step the server halts before while a tool call waits for a person (`POST /approve` runs it). */
export const APPROVAL_ACTION = 'tool_approval'

function orderedActions(graph: GraphInfo): string[] {
  const rest = graph.actions.filter((a) => a !== graph.entrypoint)
  return graph.actions.includes(graph.entrypoint) ? [graph.entrypoint, ...rest] : graph.actions
}

/** Burr's view of the chat: the state machine, the step running now, the path of the last turn. */
export function BurrPanel(props: BurrPanelProps) {
  const { graph, graphError, activeAction, path, streaming, project, appId, saved, burrBase, hasAnswers = false, awaitingApproval = false } = props
  const waitingAt = awaitingApproval && !streaming && graph?.actions.includes(APPROVAL_ACTION) ? APPROVAL_ACTION : null
  const onPath = new Set(path)
  const streamingActions = new Set(graph?.streaming_actions ?? [])
  const conversationUrl = project ? `${burrBase}/project/${encodeURIComponent(project)}/__none__/${encodeURIComponent(appId)}` : null

  return (
    <section aria-labelledby="burr-panel-title" className="flex min-h-0 flex-1 flex-col overflow-y-auto p-3 text-sm">
      <h2 id="burr-panel-title" className="text-xs font-semibold uppercase tracking-wide text-gray-500 dark:text-gray-400">
        Burr state machine
      </h2>
      {graphError && <p className="mt-2 text-xs text-red-700 dark:text-red-300">Could not load the graph: {graphError}</p>}
      {graph && (
        <ol className="mt-2 space-y-1.5" aria-label="Actions" data-testid="burr-graph">
          {orderedActions(graph).map((action) => {
            const active = action === activeAction
            const waiting = action === waitingAt
            const visited = onPath.has(action)
            const edges = graph.transitions.filter((t) => t.from === action)
            return (
              <li
                key={action}
                data-testid="graph-node"
                data-action={action}
                data-active={active ? 'true' : undefined}
                data-on-path={visited ? 'true' : undefined}
                data-waiting={waiting ? 'true' : undefined}
                aria-current={active ? 'step' : undefined}
                className={`rounded-md border px-2 py-1.5 transition-colors ${
                  active
                    ? 'border-dwlightblue-deep bg-dwlightblue-deep text-white shadow'
                    : waiting
                      ? 'border-amber-500 bg-amber-50 text-gray-900 shadow dark:border-amber-400 dark:bg-amber-950/60 dark:text-gray-100'
                      : visited
                      ? 'border-dwlightblue/60 bg-sky-50 text-gray-900 dark:bg-sky-950/40 dark:text-gray-100'
                      : 'border-gray-200 bg-white text-gray-800 dark:border-gray-700 dark:bg-gray-900 dark:text-gray-200'
                }`}
              >
                <div className="flex items-center justify-between gap-2">
                  <span className="font-mono text-[13px]">{action}</span>
                  <span className="flex gap-1 text-[10px] uppercase tracking-wide">
                    {action === graph.entrypoint && <span className={active ? '' : 'text-gray-500 dark:text-gray-400'}>entry</span>}
                    {streamingActions.has(action) && <span className={active ? '' : 'text-gray-500 dark:text-gray-400'}>streams</span>}
                    {active && <span className="sr-only">running now</span>}
                    {waiting && <span className="text-amber-900 dark:text-amber-200">waits</span>}
                  </span>
                </div>
                {waiting && (
                  <p className="mt-1 text-xs text-amber-900 dark:text-amber-200" data-testid="graph-waiting">
                    Halted here until a person approves or denies the tool call.
                  </p>
                )}
                {edges.length > 0 && (
                  <ul className={`mt-1 space-y-0.5 text-xs ${active ? 'text-white' : 'text-gray-500 dark:text-gray-400'}`} aria-label={`Transitions from ${action}`}>
                    {edges.map((t) => (
                      <li key={`${t.to}-${t.condition}`}>
                        <span aria-hidden="true">→ </span>
                        <span className="sr-only">to </span>
                        <span className="font-mono">{t.to}</span>
                        {t.condition && t.condition !== 'default' && <span> if {t.condition}</span>}
                      </li>
                    ))}
                  </ul>
                )}
              </li>
            )
          })}
        </ol>
      )}

      <h3 className="mt-4 text-xs font-semibold uppercase tracking-wide text-gray-500 dark:text-gray-400">
        {streaming ? 'This turn so far' : 'Path of the last answer'}
      </h3>
      {path.length ? (
        <ol className="mt-1 flex flex-wrap items-center gap-1 font-mono text-xs" data-testid="answer-path">
          {path.map((step, index) => (
            <li key={`${index}-${step}`} className="flex items-center gap-1">
              {index > 0 && <span aria-hidden="true" className="text-gray-400">→</span>}
              <span className="rounded bg-gray-100 px-1.5 py-0.5 dark:bg-gray-800">{step}</span>
            </li>
          ))}
        </ol>
      ) : (
        <p className="mt-1 text-xs text-gray-500 dark:text-gray-400" data-testid="answer-path-empty">
          {hasAnswers
            ? 'Shown for answers given on this page; Burr\u2019s UI has the steps of earlier ones.'
            : 'No answer yet.'}
        </p>
      )}

      <div className="mt-4 space-y-1 border-t border-gray-200 pt-3 text-sm dark:border-gray-700">
        {conversationUrl && saved ? (
          <a
            href={conversationUrl}
            target="_blank"
            rel="noopener noreferrer"
            data-testid="burr-conversation-link"
            className="block text-blue-700 underline-offset-2 hover:underline focus-visible:outline-2 focus-visible:outline-offset-2 focus-visible:outline-dwlightblue dark:text-sky-300"
          >
            Open this conversation in Burr
          </a>
        ) : (
          <p className="text-xs text-gray-500 dark:text-gray-400">Send a message to see this conversation in Burr.</p>
        )}
        <a
          href={`${burrBase}/projects`}
          className="block text-blue-700 underline-offset-2 hover:underline focus-visible:outline-2 focus-visible:outline-offset-2 focus-visible:outline-dwlightblue dark:text-sky-300"
        >
          Back to Burr projects
        </a>
      </div>
    </section>
  )
}
