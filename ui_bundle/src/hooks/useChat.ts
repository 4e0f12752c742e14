import { useCallback, useEffect, useEffectEvent, useLayoutEffect, useMemo, useState, useSyncExternalStore } from 'react'
import { api, type ApiClient } from '../lib/api'
import type { ChatState } from '../lib/chatState'
import { lastUserPrompt, TurnController, type TurnCallbacks } from '../lib/turns'

export type { AnswerMeta, ChatError, ChatStatus, DisplayMessage } from '../lib/chatState'

export interface UseChatOptions extends TurnCallbacks {
  /** The Burr project; null until known (sending waits for it). */
  project: string | null
  appId: string
  /** A conversation made on this page and not sent to yet: there is no history to load. */
  isNew?: boolean
  /**
   * Follow the conversation's changes (`GET /events`) while it is open, so a prompt sent from
   * another tab appears here and its answer streams in. On unless false.
   */
  live?: boolean
  /** The API; the page's own (`api`) unless given. */
  client?: ApiClient
}

export interface UseChat extends ChatState {
  /**
   * Sends a prompt; false when it was not sent (blank, no project yet). While an answer streams,
   * that answer is stopped and kept (marked interrupted) and the prompt is answered next: the
   * server is asked with `if_busy=interrupt`.
   */
  send: (prompt: string) => Promise<boolean>
  /**
   * Sends `prompt` in conversation `appId` as soon as the page shows it (the caller switches to
   * it): after a fork, the answer's `chat_history` brings the branch's history, so it is not
   * loaded first.
   */
  sendWhenOpen: (appId: string, prompt: string) => void
  /** Stops the answer streaming now; what arrived is kept, marked interrupted. */
  stop: () => void
  /** Sends the last prompt again (the server does not add an unanswered prompt twice). Also what
   * "Regenerate" does after a turn stopped before any text. */
  retry: () => Promise<boolean>
  /** Asks again with the last user prompt, for a new answer. */
  regenerate: () => Promise<boolean>
  canRegenerate: boolean
  /** Approves or denies a tool call waiting for a person; the answer goes on streaming (a turn). */
  decide: (toolCallId: string, approved: boolean, reason: string | null) => Promise<boolean>
}

/** The chat of the conversation shown: the page's view of a TurnController (lib/turns.ts). */
export function useChat(options: UseChatOptions): UseChat {
  const { project, appId, isNew = false, live = true, client = api } = options
  const [turns] = useState(() => new TurnController())
  const state = useSyncExternalStore(turns.subscribe, turns.getSnapshot)

  // Callbacks may change every render; the running turn calls the latest ones.
  useLayoutEffect(() => turns.setCallbacks(options), [turns, options])

  // Opening a conversation. isNew is not a reason to open it again: it only matters when the
  // conversation changes (a new one turning "created" keeps its state).
  const isNewWhenOpened = useEffectEvent(() => isNew)
  useEffect(() => turns.open({ client, project, appId, isNew: isNewWhenOpened() }), [turns, client, project, appId])
  useEffect(() => () => turns.close(), [turns])

  // Another tab's prompts and new branches, while a saved conversation is open.
  useEffect(() => {
    if (!project || isNew || !live) return
    return turns.follow()
  }, [turns, client, project, appId, isNew, live])

  const send = useCallback((prompt: string) => turns.send(prompt), [turns])
  const sendWhenOpen = useCallback((target: string, prompt: string) => turns.sendWhenOpen(target, prompt), [turns])
  const stop = useCallback(() => turns.stop(), [turns])
  const retry = useCallback(() => turns.retry(), [turns])
  const regenerate = useCallback(() => turns.regenerate(), [turns])
  const decide = useCallback(
    (toolCallId: string, approved: boolean, reason: string | null) => turns.approve(toolCallId, approved, reason),
    [turns],
  )

  const { messages, status } = state
  const lastPrompt = useMemo(() => lastUserPrompt(messages), [messages])
  const canRegenerate = status !== 'streaming' && lastPrompt !== null && messages[messages.length - 1]?.item.role === 'assistant'

  return { ...state, send, sendWhenOpen, stop, retry, regenerate, canRegenerate, decide }
}
