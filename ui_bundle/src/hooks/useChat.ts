import { useCallback, useEffect, useMemo, useReducer, useRef } from 'react'
import { api } from '../lib/api'
import { isAbortError } from '../lib/errors'
import { streamChat } from '../lib/stream'
import { chatReducer, initialChatState, toChatError, type ChatState } from './chatState'

export type { AnswerMeta, ChatError, ChatStatus, DisplayMessage } from './chatState'

export interface UseChatOptions {
  /** The Burr project; null until known (sending waits for it). */
  project: string | null
  appId: string
  /** A conversation made on this page and not sent to yet: there is no history to load. */
  isNew?: boolean
  /** Called before the first prompt goes out, to create the conversation on the server. */
  ensureConversation?: (appId: string) => Promise<void>
  /** Called when a turn has ended, however it ended. */
  onTurnEnd?: () => void
  apiBase?: string
  fetchImpl?: typeof fetch
}

export interface UseChat extends ChatState {
  /** Sends a prompt; false when it was not sent (blank, already streaming, no project yet). */
  send: (prompt: string) => Promise<boolean>
  /** Stops the answer streaming now; what arrived is kept, marked interrupted. */
  stop: () => void
  /** Sends the last prompt again (the server does not add an unanswered prompt twice). */
  retry: () => Promise<boolean>
  /** Asks again with the last user prompt, for a new answer. */
  regenerate: () => Promise<boolean>
  canRegenerate: boolean
}

export function useChat(options: UseChatOptions): UseChat {
  const { project, appId, isNew = false, apiBase, fetchImpl } = options
  const [state, dispatch] = useReducer(chatReducer, initialChatState)

  // Callbacks may change every render; the running turn reads the latest ones.
  const callbacks = useRef(options)
  callbacks.current = options

  /** Bumped when the conversation changes, so a turn or load of the old one is ignored. */
  const generation = useRef(0)
  const controller = useRef<AbortController | null>(null)
  const busy = useRef(false)
  /** The server-side stop of the last stopped turn; the next turn waits for it (else 409). */
  const stopping = useRef<Promise<unknown> | null>(null)

  useEffect(() => {
    const gen = ++generation.current
    controller.current?.abort()
    controller.current = null
    busy.current = false
    if (!project || isNew) {
      dispatch({ type: 'reset', loading: false })
      return
    }
    dispatch({ type: 'reset', loading: true })
    const load = new AbortController()
    api
      .history(project, appId, { signal: load.signal, ...(apiBase ? { apiBase } : {}), ...(fetchImpl ? { fetchImpl } : {}) })
      .then((items) => {
        if (gen === generation.current && !busy.current) dispatch({ type: 'history_loaded', items })
      })
      .catch((error: unknown) => {
        if (isAbortError(error) || gen !== generation.current || busy.current) return
        dispatch({ type: 'history_failed', error: toChatError(error) })
      })
    return () => load.abort()
    // isNew only matters when the conversation changes: a new one turning "created" keeps its state.
  }, [project, appId, apiBase, fetchImpl])

  useEffect(() => () => controller.current?.abort(), [])

  const run = useCallback(
    async (prompt: string, retry: boolean): Promise<boolean> => {
      if (!prompt.trim() || busy.current || !project) return false
      busy.current = true
      const gen = generation.current
      const abort = new AbortController()
      controller.current = abort
      dispatch({ type: 'send_start', prompt, optimistic: !retry })
      try {
        if (stopping.current) await stopping.current
        await callbacks.current.ensureConversation?.(appId)
        const outcome = await streamChat({
          project,
          appId,
          prompt,
          signal: abort.signal,
          ...(apiBase ? { apiBase } : {}),
          ...(fetchImpl ? { fetchImpl } : {}),
          onEvent: (event) => {
            if (gen === generation.current) dispatch({ type: 'event', event, prompt })
          },
        })
        if (gen !== generation.current) return true
        if (outcome.kind === 'aborted') dispatch({ type: 'aborted' })
        else if (outcome.kind === 'incomplete') {
          dispatch({ type: 'failed', error: { code: 'incomplete', message: outcome.reason, retryable: true } })
        }
      } catch (error) {
        if (gen === generation.current) {
          if (abort.signal.aborted) dispatch({ type: 'aborted' })
          else dispatch({ type: 'failed', error: toChatError(error) })
        }
      } finally {
        if (gen === generation.current) {
          busy.current = false
          controller.current = null
        }
        callbacks.current.onTurnEnd?.()
      }
      return true
    },
    [project, appId, apiBase, fetchImpl],
  )

  const send = useCallback((prompt: string) => run(prompt, false), [run])

  const stop = useCallback(() => {
    const running = controller.current
    if (!running || running.signal.aborted) return
    running.abort()
    if (!project) return
    // Closing the stream alone leaves the server's turn running for a grace period (a reader
    // may reattach), and a prompt sent meanwhile would get a 409: stop it explicitly.
    const pending: Promise<unknown> = api
      .stop(project, appId, { ...(apiBase ? { apiBase } : {}), ...(fetchImpl ? { fetchImpl } : {}) })
      .catch(() => undefined)
      .finally(() => {
        if (stopping.current === pending) stopping.current = null
      })
    stopping.current = pending
  }, [project, appId, apiBase, fetchImpl])

  const { lastPrompt, messages, status } = state
  const retry = useCallback(
    () => (lastPrompt ? run(lastPrompt, true) : Promise.resolve(false)),
    [run, lastPrompt],
  )

  const lastUserPrompt = useMemo(() => {
    for (let i = messages.length - 1; i >= 0; i--) {
      const item = messages[i]?.item
      if (item?.role === 'user') return item.content
    }
    return null
  }, [messages])

  const regenerate = useCallback(
    () => (lastUserPrompt ? run(lastUserPrompt, false) : Promise.resolve(false)),
    [run, lastUserPrompt],
  )

  const canRegenerate =
    status !== 'streaming' && lastUserPrompt !== null && messages[messages.length - 1]?.item.role === 'assistant'

  return { ...state, send, stop, retry, regenerate, canRegenerate }
}
