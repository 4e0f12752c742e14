import type { ApiClient } from './api'
import { chatReducer, historyAfter, initialChatState, toChatError, type ChatAction, type ChatState, type DisplayMessage } from './chatState'
import { HttpError, isAbortError } from './errors'
import { turnOf, type EventHandler, type StreamOutcome } from './stream'
import { sleep, turnReader, type TurnReader } from './turnReader'
import type { ChatItem, ConversationChange } from './types'

/** Waits before asking `GET /stream` again when it still serves the turn before the one announced. */
const EXPECTED_TURN_RETRY_MS = [100, 250, 500, 1000]

/** Where one turn is in its life; the transitions are in TurnController's description. */
export type TurnPhase = 'probing' | 'quiet' | 'streaming' | 'ended'

/** The conversation the page shows. */
export interface Conversation {
  client: ApiClient
  /** The Burr project; null until known (sending waits for it). */
  project: string | null
  appId: string
  /** Made on this page and not sent to yet: there is no history to load. */
  isNew: boolean
}

/** What a request needs: the conversation shown, once its project is known. */
interface Target {
  client: ApiClient
  project: string
  appId: string
}

/** What the page is told about, besides the chat state. */
export interface TurnCallbacks {
  /** Called before the first prompt goes out, to create the conversation on the server. */
  ensureConversation?: ((appId: string) => Promise<void>) | undefined
  /** Called when a turn has ended, however it ended. */
  onTurnEnd?: (() => void) | undefined
  /** Called when a branch of this conversation's tree was made (by any tab). */
  onBranchCreated?: ((branch: Extract<ConversationChange, { type: 'branch_created' }>['value']) => void) | undefined
}

export interface SendOptions {
  /** The prompt is already the last message shown (Retry): it is not added again. */
  retry?: boolean
  /**
   * While an answer streams: true stops it (kept, marked interrupted) and asks the server with
   * `if_busy=interrupt`; false does not send. True unless given.
   */
  interrupt?: boolean
}

interface Turn {
  phase: TurnPhase
  readonly abort: AbortController
  readonly reader: TurnReader
  /** Sent from this page (not a turn it reattached to or follows). */
  readonly sent: boolean
}

/** How a turn's request ended: its stream's outcome, or what it threw. */
type TurnEnding = StreamOutcome | { kind: 'thrown'; error: unknown } | { kind: 'refused'; error: HttpError }

/** The last prompt of the user among `messages`; null when there is none. */
export function lastUserPrompt(messages: DisplayMessage[]): string | null {
  for (let i = messages.length - 1; i >= 0; i--) {
    const item = messages[i]?.item
    if (item?.role === 'user') return item.content
  }
  return null
}

/** What the chat state shows once a turn has ended, however it ended (a `message` or an `error` event was applied already). */
function endOf(ending: TurnEnding, signal: AbortSignal): ChatAction | null {
  switch (ending.kind) {
    case 'aborted':
      return { type: 'aborted' }
    case 'incomplete':
      return { type: 'failed', error: { code: 'incomplete', message: ending.reason, retryable: true } }
    case 'thrown':
      if (signal.aborted || isAbortError(ending.error)) return { type: 'aborted' }
      return { type: 'failed', error: toChatError(ending.error) }
    case 'refused':
      return { type: 'failed', error: { ...toChatError(ending.error), retryable: false } }
    default:
      return null
  }
}

/**
 * The turns of the conversation the page shows, without React: it sends prompts, reattaches to
 * an answer whose stream broke, shows an answer still streaming when a conversation is opened or
 * another tab starts one, stops answers, and keeps the chat state (`getSnapshot`), telling its
 * subscribers of each change (`subscribe`, as `useSyncExternalStore` wants them).
 *
 * At most one turn is current; a turn that is not (replaced by a newer one, or of a conversation
 * no longer shown) changes nothing. A turn goes through these phases (`TurnPhase`):
 *
 * | from                 | on                                                                        | to          |
 * |----------------------|---------------------------------------------------------------------------|-------------|
 * | (new)                | `send()`: `POST /response`                                                | `streaming` |
 * | (new)                | a history loaded (`open()`, or another tab's `turn_started`): `GET /stream` | `probing` |
 * | `probing`            | the turn's first event, when the page shows the messages before it       | `streaming` |
 * | `probing`            | the first event of a turn whose answer is in the history already          | `quiet`     |
 * | `probing`            | an event of a turn before the one announced (`GET /stream` asked again)   | `ended`     |
 * | `probing`, `quiet`   | its stream ends, or there is none (404)                                   | `ended`     |
 * | `streaming`          | its `message` or `error`; `stop()`; a new prompt; another conversation opened; a broken stream not picked up again (`turnReader`) | `ended` |
 *
 * Every turn ends in `finish()`, once: the end goes into the state, `onTurnEnd` is called, and
 * the turns other tabs started meanwhile are caught up on.
 */
export class TurnController {
  private state: ChatState = initialChatState
  private readonly listeners = new Set<() => void>()
  private callbacks: TurnCallbacks = {}
  private conversation: Conversation | null = null
  /** Counts the conversations opened: a history loaded for an earlier one is dropped. */
  private opened = 0
  private current: Turn | null = null
  /** The turns (SSE id tokens) this page started or followed: `/events` news of them is ignored. */
  private readonly knownTurns = new Set<string>()
  /** The turns (SSE id tokens) this page sent: it is told of their end without `/events`. */
  private readonly sentTurns = new Set<string>()
  /** Turns announced by `/events` while this page streamed another: caught up on after it. */
  private announced: string[] = []
  /** The prompt to send once the page shows a conversation (`sendWhenOpen`). */
  private queued: { appId: string; prompt: string } | null = null
  /** Counts the reads of the waiting approvals: only the latest one's answer is applied. */
  private approvalsAsked = 0
  /** The server-side stop of the last stopped turn; the next turn waits for it (else 409). */
  private stopping: Promise<unknown> | null = null

  /** Registers a listener called after each change of the state; returns its removal. */
  readonly subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  /** The chat state now (the same object until it changes). */
  readonly getSnapshot = (): ChatState => this.state

  /** The callbacks the next events call (they may change at any time). */
  setCallbacks(callbacks: TurnCallbacks): void {
    this.callbacks = callbacks
  }

  private readonly dispatch = (action: ChatAction): void => {
    const next = chatReducer(this.state, action)
    if (next === this.state) return
    this.state = next
    for (const listener of this.listeners) listener()
  }

  private get streaming(): boolean {
    return this.current?.phase === 'streaming'
  }

  /** The conversation shown, when its project is known (else nothing is asked). */
  private target(): Target | null {
    const shown = this.conversation
    return shown?.project ? { client: shown.client, project: shown.project, appId: shown.appId } : null
  }

  /**
   * Shows a conversation: what the page did for the one before is dropped, then the prompt
   * queued for it is sent (`sendWhenOpen`), or its history is loaded and an answer still
   * streaming there is shown as it goes on. Returns what cancels the loading.
   */
  open(conversation: Conversation): () => void {
    const opened = ++this.opened
    this.current?.abort.abort()
    this.current = null
    this.announced = []
    this.conversation = conversation
    const { client, project, appId, isNew } = conversation
    const waiting = this.queued
    this.queued = null // (for this conversation, or stale: the page went elsewhere)
    if (project && waiting?.appId === appId) {
      this.dispatch({ type: 'reset', loading: false })
      void this.send(waiting.prompt, { interrupt: false })
      return () => undefined
    }
    if (!project || isNew) {
      this.dispatch({ type: 'reset', loading: false })
      return () => undefined
    }
    this.dispatch({ type: 'reset', loading: true })
    const load = new AbortController()
    client
      .history(project, appId, { signal: load.signal })
      .then((items) => {
        if (opened !== this.opened || this.streaming) return
        this.dispatch({ type: 'history_loaded', items })
        // (In a task of its own: the page renders the history in this one, and a request costs
        // the page's thread a few milliseconds. The probe checks that the page is still there.)
        setTimeout(() => void this.probe(opened, items), 0)
      })
      .catch((error: unknown) => {
        if (isAbortError(error) || opened !== this.opened || this.streaming) return
        this.dispatch({ type: 'history_failed', error: toChatError(error) })
      })
    return () => load.abort()
  }

  /** Stops everything the page does for the conversation (the page is closing). */
  close(): void {
    this.current?.abort.abort()
  }

  /**
   * Follows the conversation's changes (`GET /events`), so a prompt sent from another tab
   * appears here and its answer streams in, until the returned function is called.
   */
  follow(): () => void {
    const target = this.target()
    if (!target) return () => undefined
    const abort = new AbortController()
    void target.client.followConversation({
      project: target.project,
      appId: target.appId,
      signal: abort.signal,
      // Changes may have been missed while the stream was down.
      onOpen: (again) => {
        if (again) void this.resync()
      },
      onChange: (change) => {
        if (change.type === 'turn_started') {
          const { turn } = change.value
          if (!this.knownTurns.has(turn)) void this.resync(turn)
        } else if (change.type === 'turn_ended') {
          // Another tab's turn (an approval answered there, a note saved) ended: what it changed.
          const { turn } = change.value
          if (!this.knownTurns.has(turn)) void this.reload()
          else if (!this.sentTurns.has(turn)) this.callbacks.onTurnEnd?.() // (followed, maybe only read quietly)
        } else if (change.type === 'branch_created') {
          this.callbacks.onBranchCreated?.(change.value)
        }
      },
    })
    return () => abort.abort()
  }

  /**
   * Sends a prompt; resolves once its turn has ended, with false when it was not sent (blank,
   * no project yet, or an answer streams and `interrupt` is false).
   */
  async send(prompt: string, options: SendOptions = {}): Promise<boolean> {
    const target = this.target()
    if (!prompt.trim() || !target) return false
    const { client, project, appId } = target
    // What the page shows, without the answer a new prompt cuts short (the server sends it again).
    const known = historyAfter(this.state.messages)
    const running = this.current
    let interrupting = false
    if (running?.phase === 'streaming') {
      if (!(options.interrupt ?? true)) return false
      // The answer streaming now is cut short: what arrived is kept, shown as stopped, and the
      // server stops it (if_busy=interrupt) before answering this prompt.
      interrupting = true
      if (!running.abort.signal.aborted) {
        running.abort.abort()
        this.dispatch({ type: 'aborted' })
      }
    }
    running?.abort.abort() // (asking whether an answer streams: this prompt comes first)
    const turn = this.begin('streaming', target, prompt, true)
    this.dispatch({ type: 'send_start', prompt, optimistic: !options.retry })
    await this.run(turn, async (onEvent) => {
      await this.callbacks.ensureConversation?.(appId)
      return client.streamChat({
        project,
        appId,
        prompt,
        historyAfter: known,
        signal: turn.abort.signal,
        ...(interrupting ? { ifBusy: 'interrupt' as const } : {}),
        onEvent,
      })
    })
    return true
  }

  /**
   * Approves (or denies, with an optional reason) a tool call waiting for a person: a turn like
   * a prompt's (`POST /approve`), so it streams, stops, reattaches and fails as one. Resolves
   * once it has ended; false when it was not sent (no conversation, or an answer streams).
   */
  async approve(toolCallId: string, approved: boolean, reason: string | null = null): Promise<boolean> {
    const target = this.target()
    if (!target || this.streaming) return false
    const { client, project, appId } = target
    const known = historyAfter(this.state.messages)
    this.current?.abort.abort() // (asking whether an answer streams)
    const turn = this.begin('streaming', target, null, true)
    this.dispatch({ type: 'approve_start', toolCallId })
    const decision = { tool_call_id: toolCallId, approved, reason: reason?.trim() || null }
    await this.run(turn, (onEvent) => client.approve({ project, appId, decision, historyAfter: known, signal: turn.abort.signal, onEvent }), true)
    return true
  }

  /**
   * Streams a turn this page started (a prompt or an approval) after the stop of the turn before
   * has gone through, and ends it. `refusedIsFinal`: a request the server refused (a 4xx, e.g.
   * an approval decided in another tab) is not offered again with Retry.
   */
  private async run(turn: Turn, request: (onEvent: EventHandler) => Promise<StreamOutcome>, refusedIsFinal = false): Promise<void> {
    const onEvent: EventHandler = (event, id) => {
      if (id) this.sentTurns.add(turnOf(id))
      if (id && this.current === turn) this.knownTurns.add(turnOf(id))
      turn.reader.handle(event, id)
    }
    let ending: TurnEnding
    try {
      if (this.stopping) await this.stopping
      ending = await turn.reader.settle(await request(onEvent))
    } catch (error) {
      ending = { kind: 'thrown', error }
    }
    if (refusedIsFinal && ending.kind === 'thrown' && ending.error instanceof HttpError && ending.error.status < 500) {
      ending = { kind: 'refused', error: ending.error }
    }
    this.finish(turn, ending)
  }

  /**
   * Sends `prompt` in conversation `appId` when it is opened next (the caller opens it): after a
   * fork, the answer's `chat_history` brings the branch's history, so it is not loaded first.
   */
  sendWhenOpen(appId: string, prompt: string): void {
    this.queued = { appId, prompt }
  }

  /** Sends the last prompt again (the server does not add an unanswered prompt twice). */
  retry(): Promise<boolean> {
    const { lastPrompt, messages } = this.state
    const unanswered = messages[messages.length - 1]?.item.role === 'user' ? lastUserPrompt(messages) : null
    const prompt = lastPrompt ?? unanswered
    return prompt ? this.send(prompt, { retry: true, interrupt: false }) : Promise.resolve(false)
  }

  /** Asks again with the last user prompt, for a new answer. */
  regenerate(): Promise<boolean> {
    const prompt = lastUserPrompt(this.state.messages)
    return prompt ? this.send(prompt, { interrupt: false }) : Promise.resolve(false)
  }

  /** Stops the answer streaming now; what arrived is kept, marked interrupted. */
  stop(): void {
    const turn = this.current
    if (turn?.phase !== 'streaming' || turn.abort.signal.aborted) return
    turn.abort.abort()
    const target = this.target()
    if (!target) return
    // Closing the stream alone leaves the server's turn running for a grace period (a reader
    // may reattach), and a prompt sent meanwhile would get a 409: stop it explicitly.
    const pending: Promise<unknown> = target.client
      .stop(target.project, target.appId)
      .catch(() => undefined)
      .finally(() => {
        if (this.stopping === pending) this.stopping = null
      })
    this.stopping = pending
  }

  /** A new turn, now the current one. */
  private begin(phase: TurnPhase, target: Target, prompt: string | null, sent: boolean): Turn {
    const abort = new AbortController()
    const reader = turnReader({
      ...target,
      signal: abort.signal,
      isCurrent: () => this.current === turn,
      dispatch: this.dispatch,
      prompt,
    })
    const turn: Turn = { phase, abort, reader, sent }
    this.current = turn
    return turn
  }

  /** The one end of every turn; a turn that ended already is left alone. */
  private finish(turn: Turn, ending: TurnEnding): void {
    if (turn.phase === 'ended') return
    const shown = turn.phase === 'streaming'
    turn.phase = 'ended'
    turn.reader.flush()
    const current = this.current === turn
    if (current) {
      this.current = null
      // The calls waiting now (a probe's turn too: the page may have been reloaded while one waits).
      void this.refreshApprovals()
    }
    if (!shown) return // (asked whether an answer streams: nothing was shown)
    if (current) {
      const end = endOf(ending, turn.abort.signal)
      if (end) this.dispatch(end)
    }
    // A turn sent from this page changed the conversation, even when no longer shown.
    if (current || turn.sent) this.callbacks.onTurnEnd?.()
    if (current) this.catchUp()
  }

  /**
   * Asks the server (`GET /stream`) whether an answer is streaming (or has just streamed) after
   * `history`, e.g. the page was reloaded mid-answer: if so it is shown as it goes on. The server
   * replays the turn from its start: `chat_history` (the messages before the turn), then every
   * event. When `history` already holds the turn's answer, the replay is read quietly, only to
   * see whether that answer was stopped. Resolves with true when the server still serves a turn
   * before `expectTurn` (the turn another tab announced): ask again shortly.
   */
  private async probe(opened: number, history: ChatItem[], expectTurn?: string): Promise<boolean> {
    const target = this.target()
    if (!target || opened !== this.opened || this.streaming) return false
    this.current?.abort.abort() // (an earlier probe)
    const turn = this.begin('probing', target, null, false)
    let early = false
    let stopped = false
    const onEvent: EventHandler = (event, id) => {
      if (this.current !== turn || early) return
      if (id) {
        const name = turnOf(id)
        if (turn.phase === 'probing' && expectTurn && name !== expectTurn) {
          early = true
          turn.abort.abort()
          return
        }
        this.knownTurns.add(name)
      }
      if (turn.phase === 'probing') this.showOrRead(turn, event.type === 'chat_history' ? (event.start ?? 0) + event.value.length : -1, history)
      if (turn.phase === 'quiet') {
        if (event.type === 'error' && event.value.code === 'stopped') stopped = true
        return
      }
      turn.reader.handle(event, id)
    }
    let ending: TurnEnding
    try {
      const outcome = await target.client.resumeChat({
        project: target.project,
        appId: target.appId,
        signal: turn.abort.signal,
        onEvent,
      })
      ending = turn.phase === 'streaming' ? await turn.reader.settle(outcome) : outcome
    } catch (error) {
      // While probing, a 404 (nothing streaming) or no answer at all leaves the history as it is.
      ending = { kind: 'thrown', error }
    }
    const current = this.current === turn
    if (turn.phase === 'quiet' && stopped && current) this.dispatch({ type: 'mark_stopped' })
    this.finish(turn, ending)
    return early && current
  }

  /**
   * A probed turn's first event: shown when the page shows the messages before it (`before`,
   * -1 when unknown; the event carries those from `start` on when the turn was started by a tab
   * that asked only for what it lacked), else read quietly.
   */
  private showOrRead(turn: Turn, before: number, history: ChatItem[]): void {
    if (before < 0 || history.length > before + 1) {
      turn.phase = 'quiet'
      return
    }
    turn.phase = 'streaming'
    const next = history[before]
    const prompt = next?.role === 'user' ? next.content : null
    turn.reader.setPrompt(prompt)
    this.dispatch({ type: 'resume_start', prompt })
  }

  /**
   * Loads the history again and follows the answer streaming there, if any (another tab's turn,
   * `expectTurn`): the same path as opening the conversation, without clearing what is shown.
   * While this page streams an answer it waits for its end (catchUp).
   */
  private async resync(expectTurn?: string): Promise<void> {
    const target = this.target()
    if (!target) return
    if (this.streaming) return this.announce(expectTurn)
    const opened = this.opened
    try {
      const items = await target.client.history(target.project, target.appId)
      if (opened !== this.opened) return
      if (this.streaming) return this.announce(expectTurn)
      this.dispatch({ type: 'history_synced', items })
      for (const delay of EXPECTED_TURN_RETRY_MS) {
        if (!(await this.probe(opened, items, expectTurn))) return
        await sleep(delay)
        if (opened !== this.opened || this.streaming) return
      }
    } catch {
      // The next change (or the next prompt) brings the page up to date.
    }
  }

  /**
   * Reads the history and the calls waiting again, without following an answer (another tab's
   * turn has ended); a turn streaming here comes first.
   */
  private async reload(): Promise<void> {
    const target = this.target()
    if (!target || this.streaming) return
    const opened = this.opened
    try {
      const items = await target.client.history(target.project, target.appId)
      if (opened !== this.opened || this.streaming) return
      this.dispatch({ type: 'history_synced', items })
    } catch {
      // The next change brings the page up to date.
    }
    await this.refreshApprovals()
    this.callbacks.onTurnEnd?.()
  }

  /**
   * `GET /approvals`: the calls waiting for a person now, shown with Approve and Deny (after a
   * reload, or when another tab's turn halted or was answered). Dropped when a turn started
   * meanwhile: its events say what waits.
   */
  private async refreshApprovals(): Promise<void> {
    const target = this.target()
    const shown = this.conversation
    if (!target || shown?.isNew) return
    const asked = ++this.approvalsAsked
    const opened = this.opened
    try {
      const approvals = await target.client.approvals(target.project, target.appId)
      if (asked !== this.approvalsAsked || opened !== this.opened || this.streaming) return
      this.dispatch({ type: 'approvals_loaded', approvals })
    } catch {
      // (No such conversation yet, or the server is away: nothing is shown as waiting.)
    }
  }

  private announce(turn: string | undefined): void {
    if (turn && !this.announced.includes(turn)) this.announced.push(turn)
  }

  /** After a turn of this page ended: follows the turns other tabs started meanwhile. */
  private catchUp(): void {
    const waiting = this.announced.filter((turn) => !this.knownTurns.has(turn))
    this.announced = []
    const last = waiting[waiting.length - 1]
    if (last !== undefined) void this.resync(last)
  }
}
