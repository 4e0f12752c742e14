import type { DisplayMessage } from './chatState'
import type { ApprovalRequest, ChatItem, ToolCall } from './types'

/** Where a tool call is: its arguments streaming, running, waiting for a person, ended, or never run. */
export type ToolCallState = 'arguments' | 'running' | 'awaiting' | 'done' | 'not_run'

/** What a tool card shows: the call, how it ended (its tool message), and the approval it waits for. */
export interface ToolView {
  call: ToolCall
  state: ToolCallState
  /** The call's tool message (result, error or denial), once it has one. */
  outcome: ChatItem | null
  approval: ApprovalRequest | null
}

/**
 * The tool cards of each message (by index; null for a message without tool calls): each call of
 * an assistant message, with its outcome found among the tool messages. A call without one is
 * `awaiting` while listed in `approvals`, `arguments` while its arguments stream, `running` while
 * the last turn streams, else `not_run` (the turn was stopped or failed before it ran).
 */
export function toolViewsOf(
  messages: DisplayMessage[],
  approvals: ApprovalRequest[],
  liveToolCalls: string[],
  streaming: boolean,
): (ToolView[] | null)[] {
  const outcomes = new Map<string, ChatItem>()
  for (const { item } of messages) {
    if (item.role === 'tool' && item.tool_call_id) outcomes.set(item.tool_call_id, item)
  }
  let lastPrompt = -1
  messages.forEach((m, i) => {
    if (m.item.role === 'user') lastPrompt = i
  })
  return messages.map(({ item }, index) => {
    const calls = item.role === 'assistant' ? item.tool_calls : null
    if (!calls?.length) return null
    return calls.map((call) => {
      const outcome = outcomes.get(call.id) ?? null
      const approval = outcome ? null : (approvals.find((a) => a.id === call.id) ?? null)
      let state: ToolCallState
      if (outcome) state = 'done'
      else if (approval) state = 'awaiting'
      else if (liveToolCalls.includes(call.id)) state = 'arguments'
      else if (streaming && index > lastPrompt) state = 'running'
      else state = 'not_run'
      return { call, state, outcome, approval }
    })
  })
}

/** The approvals whose calls no message shows (a card of their own is made for them). */
export function unshownApprovals(messages: DisplayMessage[], approvals: ApprovalRequest[]): ApprovalRequest[] {
  if (!approvals.length) return approvals
  const shown = new Set(messages.flatMap((m) => (m.item.tool_calls ?? []).map((call) => call.id)))
  return approvals.filter((a) => !shown.has(a.id))
}

/** JSON text pretty-printed (two spaces); anything that does not parse (arguments still streaming), as it is. */
export function prettyJson(text: string): string {
  try {
    const parsed: unknown = JSON.parse(text)
    return typeof parsed === 'string' ? parsed : JSON.stringify(parsed, null, 2)
  } catch {
    return text
  }
}
