import type { ApiClient } from './api'
import type { ChatAction } from './chatState'
import { NetworkError } from './errors'
import { createTextBatcher } from './frameBatcher'
import { turnOf, type EventHandler, type StreamOutcome } from './stream'

/**
 * Waits before each attempt to reattach to an answer whose stream broke. The server keeps an
 * answer going for about half a second after its last reader left, so the first tries are quick.
 */
const REATTACH_DELAYS_MS = [0, 250, 1000]

/** Resolves after `ms`, or at once when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (ms <= 0 || signal?.aborted) return resolve()
    const done = () => {
      clearTimeout(timer)
      signal?.removeEventListener('abort', done)
      resolve()
    }
    const timer = setTimeout(done, ms)
    signal?.addEventListener('abort', done, { once: true })
  })
}

export interface ReaderContext {
  client: ApiClient
  project: string
  appId: string
  signal: AbortSignal
  /** False once the turn is no longer the one shown: events are then dropped. */
  isCurrent: () => boolean
  dispatch: (action: ChatAction) => void
  /** The turn's prompt; null when the page does not know it (a turn it reattached to). */
  prompt: string | null
}

export interface TurnReader {
  /** Applies one event of the turn. */
  handle: EventHandler
  /** Sets the prompt once known (a reattached turn learns it from its first event). */
  setPrompt: (prompt: string | null) => void
  /** How the turn ended, after reattaching when its stream broke (not when the user stopped it). */
  settle: (outcome: StreamOutcome) => Promise<StreamOutcome>
  /** Applies what is waiting for the next frame now. */
  flush: () => void
}

/**
 * Applies one turn's events to the state: deltas, and the thinking of a reasoning model, joined
 * per animation frame (one render per frame however many arrive), other events at once and in
 * order. Remembers the last event id, so a broken stream can be picked up where it broke.
 */
export function turnReader(context: ReaderContext): TurnReader {
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
        const outcome = await context.client.resumeChat({
          project: context.project,
          appId: context.appId,
          lastEventId: lastId,
          signal: request.signal,
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
    setPrompt(prompt) {
      context.prompt = prompt
    },
    async settle(outcome) {
      if (outcome.kind !== 'incomplete' || signal.aborted || !isCurrent()) return outcome
      return (await reattach()) ?? outcome
    },
    flush: () => {
      thoughts.flush()
      deltas.flush()
    },
  }
}
