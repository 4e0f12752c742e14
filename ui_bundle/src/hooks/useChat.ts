import { useCallback, useEffect, useEffectEvent, useLayoutEffect, useMemo, useReducer, useRef } from 'react'
import { api } from '../lib/api'
import { isAbortError, NetworkError } from '../lib/errors'
import { createTextBatcher } from '../lib/frameBatcher'
import { followConversation, resumeChat, streamChat, turnOf, type EventHandler, type StreamOutcome } from '../lib/stream'
import type { ChatItem, ConversationChange } from '../lib/types'
import { chatReducer, historyAfter, initialChatState, toChatError, type ChatAction, type ChatState } from './chatState'

export type { AnswerMeta, ChatError, ChatStatus, DisplayMessage } from './chatState'

/**
 * Waits before each attempt to reattach to an answer whose stream broke. The server keeps an
 * answer going for about half a second after its last reader left, so the first tries are quick.
 */
const REATTACH_DELAYS_MS = [0, 250, 1000]

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (ms <= 0 || signal.aborted) return resolve()
    const done = () => {
      clearTimeout(timer)
      signal.removeEventListener('abort', done)
      resolve()
    }
    const timer = setTimeout(done, ms)
    signal.addEventListener('abort', done, { once: true })
  })
}

export interface ReaderContext {
  project: string
  appId: string
  apiBase: string | undefined
  fetchImpl: typeof fetch | undefined
  signal: AbortSignal
  /** False once the page moved to another conversation: events are then dropped. */
  isCurrent: () => boolean
  dispatch: (action: ChatAction) => void
  /** The turn's prompt; null when the page does not know it (a turn it reattached to). */
  prompt: string | null
}

/**
 * Applies one turn's events to the state: deltas, and the thinking of a reasoning model, joined
 * per animation frame (one render per frame however many arrive), other events at once and in
 * order. Remembers the last event id, so a broken stream can be picked up where it broke.
 * (Exported for its tests.)
 */
export function turnReader(context: ReaderContext) {
  const { dispatch, isCurrent, signal } = context
  let lastId: string | undefined
  const joined = (type: 'delta' | 'reasoning') =>
    createTextBatcher((text) => {
      if (isCurrent()) dispatch({ type: 'event', event: { type, value: text }, prompt: context.prompt })
    })
  const deltas = joined('delta')
  const thoughts = joined('reasoning')

  const handle: EventHandler = (event, id) => {
    if (!isCurrent()) return
    if (id) lastId = id
    if (event.type === 'reasoning') {
      deltas.flush() // (the thinking comes before the answer; kept in order all the same)
      thoughts.push(event.value)
      return
    }
    thoughts.flush()
    if (event.type === 'delta') {
      deltas.push(event.value)
      return
    }
    deltas.flush()
    dispatch({ type: 'event', event, prompt: context.prompt })
  }

  /** GET /stream after the last event id, a few quick times; null when there is nothing to follow. */
  async function reattach(): Promise<StreamOutcome | null> {
    const turn = lastId ? turnOf(lastId) : null
    for (let attempt = 0; attempt < REATTACH_DELAYS_MS.length; attempt++) {
      await sleep(REATTACH_DELAYS_MS[attempt] ?? 0, signal)
      if (signal.aborted) return { kind: 'aborted' }
      if (!isCurrent()) return null
      const before = lastId
      const request = new AbortController()
      const cancel = () => request.abort()
      signal.addEventListener('abort', cancel, { once: true })
      let other = false
      try {
        const outcome = await resumeChat({
          project: context.project,
          appId: context.appId,
          lastEventId: lastId,
          signal: request.signal,
          ...(context.apiBase ? { apiBase: context.apiBase } : {}),
          ...(context.fetchImpl ? { fetchImpl: context.fetchImpl } : {}),
          onEvent: (event, id) => {
            if (other) return
            if (turn && id && turnOf(id) !== turn) {
              other = true // the server replays another turn: ours is gone
              request.abort()
              return
            }
            handle(event, id)
          },
        })
        if (other) return null
        if (outcome.kind !== 'incomplete') return outcome
        if (lastId !== before) attempt = -1 // it went on before breaking again: the tries start over
      } catch (error) {
        if (signal.aborted) return { kind: 'aborted' }
        if (!(error instanceof NetworkError)) return null // 404: no answer to reattach to
      } finally {
        signal.removeEventListener('abort', cancel)
      }
    }
    return null
  }

  return {
    handle,
    /** Sets the prompt once known (a reattached turn learns it from its first event). */
    setPrompt(prompt: string | null) {
      context.prompt = prompt
    },
    /** How the turn ended, after reattaching when its stream broke (not when the user stopped it). */
    async settle(outcome: StreamOutcome): Promise<StreamOutcome> {
      if (outcome.kind !== 'incomplete' || signal.aborted || !isCurrent()) return outcome
      return (await reattach()) ?? outcome
    },
    /** Applies what is waiting for the next frame now. */
    flush: () => {
      thoughts.flush()
      deltas.flush()
    },
  }
}

/** Puts the end of a turn into the state (a message or an error event was applied already). */
function endTurn(dispatch: (action: ChatAction) => void, outcome: StreamOutcome): void {
  if (outcome.kind === 'aborted') dispatch({ type: 'aborted' })
  else if (outcome.kind === 'incomplete') {
    dispatch({ type: 'failed', error: { code: 'incomplete', message: outcome.reason, retryable: true } })
  }
}

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
  /** Called when a branch of this conversation's tree was made (by any tab). */
  onBranchCreated?: (branch: Extract<ConversationChange, { type: 'branch_created' }>['value']) => void
  /**
   * Follow the conversation's changes (`GET /events`) while it is open, so a prompt sent from
   * another tab appears here and its answer streams in. On unless false.
   */
  live?: boolean
  apiBase?: string
  fetchImpl?: typeof fetch
}

/** Waits before asking `GET /stream` again when it still serves the turn before the one announced. */
const EXPECTED_TURN_RETRY_MS = [100, 250, 500, 1000]

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
}

export function useChat(options: UseChatOptions): UseChat {
  const { project, appId, isNew = false, live = true, apiBase, fetchImpl } = options
  const [state, dispatch] = useReducer(chatReducer, initialChatState)

  // Callbacks may change every render; the running turn reads the latest ones.
  const callbacks = useRef(options)
  useLayoutEffect(() => {
    callbacks.current = options
  }, [options])

  /** Bumped when the conversation changes, so a turn or load of the old one is ignored. */
  const generation = useRef(0)
  const controller = useRef<AbortController | null>(null)
  /** Asking the server, after a load, whether an answer is streaming (see reattachOnLoad). */
  const probe = useRef<AbortController | null>(null)
  const busy = useRef(false)
  /**
   * Bumped by each turn this page starts or follows: a turn that is no longer the latest (it was
   * interrupted by a new prompt) applies nothing more.
   */
  const turnSeq = useRef(0)
  /** The turns (SSE id tokens) this page started or followed: `/events` news of them is ignored. */
  const knownTurns = useRef(new Set<string>())
  /** Turns announced by `/events` while this page was busy with another: caught up on after it. */
  const announced = useRef<string[]>([])
  /** The prompt to send once the page shows a conversation (sendWhenOpen). */
  const queued = useRef<{ appId: string; prompt: string } | null>(null)
  /** The server-side stop of the last stopped turn; the next turn waits for it (else 409). */
  const stopping = useRef<Promise<unknown> | null>(null)
  /** The messages shown, for the next prompt's `history_after`. */
  const shown = useRef(state.messages)
  useEffect(() => {
    shown.current = state.messages
  }, [state.messages])

  /**
   * After the history of a conversation loaded: if the server is still streaming (or has just
   * streamed) an answer there, e.g. the page was reloaded mid-answer, it is shown as it goes on.
   * The server replays the turn from its start: `chat_history` (the messages before the turn),
   * then every event. When the loaded history already holds the turn's answer, the replay is
   * read quietly, only to see whether that answer was stopped.
   */
  const reattachOnLoad = useCallback(
    async (gen: number, history: ChatItem[], expectTurn?: string): Promise<boolean> => {
      if (!project) return false
      const abort = new AbortController()
      probe.current?.abort()
      probe.current = abort
      const mine = ++turnSeq.current
      const isCurrent = () => gen === generation.current && turnSeq.current === mine
      // Asked because another tab started a turn: a replay of an earlier turn means the server
      // does not serve the new one yet; asked again shortly.
      let early = false
      // Set in the event callback, so held in an object (narrowing cannot follow callbacks).
      const replay: { mode: 'probing' | 'showing' | 'quiet'; stopped: boolean } = { mode: 'probing', stopped: false }
      const reader = turnReader({ project, appId, apiBase, fetchImpl, signal: abort.signal, isCurrent, dispatch, prompt: null })
      const onEvent: EventHandler = (event, id) => {
        if (!isCurrent() || early) return
        if (id) {
          const turn = turnOf(id)
          if (replay.mode === 'probing' && expectTurn && turn !== expectTurn) {
            early = true
            abort.abort()
            return
          }
          knownTurns.current.add(turn)
        }
        if (replay.mode === 'probing') {
          // The messages before the turn: the event carries those from `start` on when the turn
          // was started by a tab that asked only for what it lacked (history_after).
          const before = event.type === 'chat_history' ? (event.start ?? 0) + event.value.length : -1
          if (busy.current || before < 0 || history.length > before + 1) {
            replay.mode = 'quiet'
          } else {
            replay.mode = 'showing'
            const next = history[before]
            const prompt = next?.role === 'user' ? next.content : null
            reader.setPrompt(prompt)
            busy.current = true
            controller.current = abort
            probe.current = null
            dispatch({ type: 'resume_start', prompt })
          }
        }
        if (replay.mode === 'quiet') {
          if (event.type === 'error' && event.value.code === 'stopped') replay.stopped = true
          return
        }
        reader.handle(event, id)
      }
      try {
        const outcome = await resumeChat({
          project,
          appId,
          signal: abort.signal,
          onEvent,
          ...(apiBase ? { apiBase } : {}),
          ...(fetchImpl ? { fetchImpl } : {}),
        })
        if (replay.mode === 'showing') {
          const settled = await reader.settle(outcome)
          reader.flush()
          if (isCurrent()) endTurn(dispatch, settled)
        } else if (replay.mode === 'quiet' && replay.stopped && isCurrent()) {
          dispatch({ type: 'mark_stopped' })
        }
      } catch (error) {
        reader.flush()
        // While probing, a 404 (nothing streaming) or no answer at all leaves the history as it is.
        if (replay.mode === 'showing' && isCurrent()) {
          if (abort.signal.aborted || isAbortError(error)) dispatch({ type: 'aborted' })
          else dispatch({ type: 'failed', error: toChatError(error) })
        }
      } finally {
        if (probe.current === abort) probe.current = null
        if (replay.mode === 'showing' && isCurrent()) {
          busy.current = false
          controller.current = null
          callbacks.current.onTurnEnd?.()
          catchUpRef.current()
        }
      }
      return early && gen === generation.current && turnSeq.current === mine
    },
    [project, appId, apiBase, fetchImpl],
  )

  /**
   * Loads the history again and follows the answer streaming there, if any (another tab's turn,
   * `expectTurn`): the same path as opening the conversation, without clearing what is shown.
   * While this page is busy with a turn it waits for its end (catchUp).
   */
  const resync = useCallback(
    async (expectTurn?: string) => {
      if (!project || isNew) return
      if (busy.current) {
        if (expectTurn && !announced.current.includes(expectTurn)) announced.current.push(expectTurn)
        return
      }
      const gen = generation.current
      try {
        const items = await api.history(project, appId, { ...(apiBase ? { apiBase } : {}), ...(fetchImpl ? { fetchImpl } : {}) })
        if (gen !== generation.current) return
        if (busy.current) {
          if (expectTurn && !announced.current.includes(expectTurn)) announced.current.push(expectTurn)
          return
        }
        dispatch({ type: 'history_synced', items })
        for (const delay of EXPECTED_TURN_RETRY_MS) {
          if (!(await reattachOnLoad(gen, items, expectTurn))) return
          await new Promise((resolve) => setTimeout(resolve, delay))
          if (gen !== generation.current || busy.current) return
        }
      } catch {
        // The next change (or the next prompt) brings the page up to date.
      }
    },
    [project, appId, isNew, apiBase, fetchImpl, reattachOnLoad],
  )

  /** After a turn of this page ended: follows the turns other tabs started meanwhile. */
  const catchUp = useCallback(() => {
    const waiting = announced.current.filter((turn) => !knownTurns.current.has(turn))
    announced.current = []
    const last = waiting[waiting.length - 1]
    if (last !== undefined) void resync(last)
  }, [resync])
  // (reattachOnLoad, which resync calls, calls catchUp at the end of a turn: a ref breaks the cycle.)
  const catchUpRef = useRef(catchUp)
  useLayoutEffect(() => {
    catchUpRef.current = catchUp
  }, [catchUp])

  useEffect(
    () => () => {
      controller.current?.abort()
      probe.current?.abort()
    },
    [],
  )

  const run = useCallback(
    async (prompt: string, retry: boolean, interrupt: boolean): Promise<boolean> => {
      if (!prompt.trim() || !project) return false
      let interrupting = false
      if (busy.current) {
        if (!interrupt) return false
        // The answer streaming now is cut short: what arrived is kept, shown as stopped, and the
        // server stops it (if_busy=interrupt) before answering this prompt.
        interrupting = true
        const running = controller.current
        if (running && !running.signal.aborted) {
          running.abort()
          dispatch({ type: 'aborted' })
        }
      }
      busy.current = true
      probe.current?.abort()
      const gen = generation.current
      const mine = ++turnSeq.current
      const isCurrent = () => gen === generation.current && turnSeq.current === mine
      const abort = new AbortController()
      controller.current = abort
      const known = historyAfter(shown.current)
      dispatch({ type: 'send_start', prompt, optimistic: !retry })
      const reader = turnReader({ project, appId, apiBase, fetchImpl, signal: abort.signal, isCurrent, dispatch, prompt })
      const onEvent: EventHandler = (event, id) => {
        if (id && isCurrent()) knownTurns.current.add(turnOf(id))
        reader.handle(event, id)
      }
      try {
        if (stopping.current) await stopping.current
        await callbacks.current.ensureConversation?.(appId)
        const outcome = await streamChat({
          project,
          appId,
          prompt,
          historyAfter: known,
          signal: abort.signal,
          ...(interrupting ? { ifBusy: 'interrupt' as const } : {}),
          ...(apiBase ? { apiBase } : {}),
          ...(fetchImpl ? { fetchImpl } : {}),
          onEvent,
        })
        const settled = await reader.settle(outcome)
        reader.flush()
        if (isCurrent()) endTurn(dispatch, settled)
      } catch (error) {
        reader.flush()
        if (isCurrent()) {
          if (abort.signal.aborted) dispatch({ type: 'aborted' })
          else dispatch({ type: 'failed', error: toChatError(error) })
        }
      } finally {
        if (isCurrent()) {
          busy.current = false
          controller.current = null
        }
        callbacks.current.onTurnEnd?.()
        if (isCurrent()) catchUpRef.current()
      }
      return true
    },
    [project, appId, apiBase, fetchImpl],
  )
  // Opening a conversation. What it reads through these Effect Events is not a reason to open it
  // again: isNew only matters when the conversation changes (a new one turning "created" keeps its
  // state), and the latest run and reattachOnLoad are those of the conversation being opened.
  const isNewWhenOpened = useEffectEvent(() => isNew)
  const sendQueued = useEffectEvent((prompt: string) => void run(prompt, false, false))
  const reattachLoaded = useEffectEvent((gen: number, items: ChatItem[]) => void reattachOnLoad(gen, items))
  useEffect(() => {
    const gen = ++generation.current
    controller.current?.abort()
    controller.current = null
    probe.current?.abort()
    probe.current = null
    busy.current = false
    announced.current = []
    shown.current = []
    const waiting = queued.current
    queued.current = null // (for this conversation, or stale: the page went elsewhere)
    if (project && waiting && waiting.appId === appId) {
      dispatch({ type: 'reset', loading: false })
      sendQueued(waiting.prompt)
      return
    }
    if (!project || isNewWhenOpened()) {
      dispatch({ type: 'reset', loading: false })
      return
    }
    dispatch({ type: 'reset', loading: true })
    const load = new AbortController()
    api
      .history(project, appId, { signal: load.signal, ...(apiBase ? { apiBase } : {}), ...(fetchImpl ? { fetchImpl } : {}) })
      .then((items) => {
        if (gen !== generation.current || busy.current) return
        dispatch({ type: 'history_loaded', items })
        reattachLoaded(gen, items)
      })
      .catch((error: unknown) => {
        if (isAbortError(error) || gen !== generation.current || busy.current) return
        dispatch({ type: 'history_failed', error: toChatError(error) })
      })
    return () => load.abort()
  }, [project, appId, apiBase, fetchImpl])

  const send = useCallback((prompt: string) => run(prompt, false, true), [run])

  const sendWhenOpen = useCallback((target: string, prompt: string) => {
    queued.current = { appId: target, prompt }
  }, [])

  // Another tab's prompts and new branches, while the conversation is open.
  const resyncFollowed = useEffectEvent((turn?: string) => void resync(turn))
  useEffect(() => {
    if (!project || isNew || !live) return
    const abort = new AbortController()
    void followConversation({
      project,
      appId,
      signal: abort.signal,
      ...(apiBase ? { apiBase } : {}),
      ...(fetchImpl ? { fetchImpl } : {}),
      // Changes may have been missed while the stream was down.
      onOpen: (again) => {
        if (again) resyncFollowed()
      },
      onChange: (change) => {
        if (change.type === 'turn_started') {
          const { turn } = change.value
          if (!knownTurns.current.has(turn)) resyncFollowed(turn)
        } else if (change.type === 'branch_created') {
          callbacks.current.onBranchCreated?.(change.value)
        }
      },
    })
    return () => abort.abort()
  }, [project, appId, isNew, live, apiBase, fetchImpl])

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
  const lastUserPrompt = useMemo(() => {
    for (let i = messages.length - 1; i >= 0; i--) {
      const item = messages[i]?.item
      if (item?.role === 'user') return item.content
    }
    return null
  }, [messages])
  const unanswered = messages[messages.length - 1]?.item.role === 'user' ? lastUserPrompt : null

  const retry = useCallback(() => {
    const prompt = lastPrompt ?? unanswered
    return prompt ? run(prompt, true, false) : Promise.resolve(false)
  }, [run, lastPrompt, unanswered])

  const regenerate = useCallback(
    () => (lastUserPrompt ? run(lastUserPrompt, false, false) : Promise.resolve(false)),
    [run, lastUserPrompt],
  )

  const canRegenerate =
    status !== 'streaming' && lastUserPrompt !== null && messages[messages.length - 1]?.item.role === 'assistant'

  return { ...state, send, sendWhenOpen, stop, retry, regenerate, canRegenerate }
}
