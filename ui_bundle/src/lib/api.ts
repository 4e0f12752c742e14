import { config } from './config'
import { httpErrorFrom, isAbortError, NetworkError } from './errors'
import {
  approveToolCall,
  followConversation,
  resumeChat,
  streamChat,
  type ApproveRequest,
  type FollowRequest,
  type ResumeRequest,
  type StreamOutcome,
  type StreamRequest,
} from './stream'
import type {
  AnswerSettings,
  AnswerSettingsInput,
  ApprovalRequest,
  BranchTree,
  ChatItem,
  ConversationSummary,
  DeleteResult,
  FeedbackInfo,
  FeedbackInput,
  GraphInfo,
  ModelInfo,
  ModelList,
  NoteInfo,
  RenameResult,
  StopResult,
  UserInfo,
} from './types'

export interface ApiOptions {
  signal?: AbortSignal
  /** This call's base URL instead of the client's. */
  apiBase?: string
  /** This call's `fetch` instead of the client's. */
  fetchImpl?: typeof fetch
}

/** What a stream request needs besides the client's base URL and `fetch`. */
type Bound<T> = Omit<T, 'apiBase' | 'fetchImpl'>

const seg = encodeURIComponent

/**
 * The chatbot's API, as one object that holds the base URL and the `fetch` every request goes
 * through: the JSON endpoints, the answer's stream (`POST /response`), reattaching to it
 * (`GET /stream`) and following a conversation's changes (`GET /events`).
 */
export class ApiClient {
  /** The API's URL, including any sub-path prefix, without a trailing slash. */
  readonly apiBase: string
  /** Called as a plain function (never as a method of the client). */
  readonly fetchImpl: typeof fetch

  /** Without arguments: the injected base URL (`config.apiBase`) and the browser's `fetch`. */
  constructor(options: { apiBase?: string | undefined; fetchImpl?: typeof fetch | undefined } = {}) {
    this.apiBase = options.apiBase ?? config.apiBase
    // The global is looked up at each call, not now (a test may replace it after the page loads).
    this.fetchImpl = options.fetchImpl ?? ((input, init) => fetch(input, init))
  }

  private async request<T>(path: string, init: RequestInit, options: ApiOptions): Promise<T> {
    const doFetch = options.fetchImpl ?? this.fetchImpl
    let response: Response
    try {
      response = await doFetch(`${options.apiBase ?? this.apiBase}${path}`, {
        ...init,
        headers: { Accept: 'application/json', ...(init.headers ?? {}) },
        signal: options.signal ?? null,
      })
    } catch (error) {
      if (isAbortError(error)) throw error
      throw new NetworkError(undefined, { cause: error })
    }
    if (!response.ok) throw await httpErrorFrom(response)
    return (await response.json()) as T
  }

  model(options: ApiOptions = {}): Promise<ModelInfo> {
    return this.request<ModelInfo>('/model', { method: 'GET' }, options)
  }

  /** `GET /me`: who is signed in (`user` is null when the server has no users). */
  me(options: ApiOptions = {}): Promise<UserInfo> {
    return this.request<UserInfo>('/me', { method: 'GET' }, options)
  }

  graph(options: ApiOptions = {}): Promise<GraphInfo> {
    return this.request<GraphInfo>('/graph', { method: 'GET' }, options)
  }

  conversations(project: string, options: ApiOptions = {}): Promise<ConversationSummary[]> {
    return this.request<ConversationSummary[]>(`/conversations/${seg(project)}`, { method: 'GET' }, options)
  }

  /** `GET /conversations?q=`: the conversations whose title or messages hold every word of `q`, newest first, one page. */
  searchConversations(project: string, q: string, limit: number, offset = 0, options: ApiOptions = {}): Promise<ConversationSummary[]> {
    const query = new URLSearchParams({ q, limit: String(limit), offset: String(offset) })
    return this.request<ConversationSummary[]>(`/conversations/${seg(project)}?${query.toString()}`, { method: 'GET' }, options)
  }

  /** `PATCH /conversations`: gives a conversation a title the list shows instead of its first message. */
  rename(project: string, appId: string, title: string, options: ApiOptions = {}): Promise<RenameResult> {
    return this.request<RenameResult>(
      `/conversations/${seg(project)}/${seg(appId)}`,
      { method: 'PATCH', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ title }) },
      options,
    )
  }

  /** `DELETE /conversations`: deletes a conversation (an answer streaming in it is stopped first). */
  deleteConversation(project: string, appId: string, options: ApiOptions = {}): Promise<DeleteResult> {
    return this.request<DeleteResult>(`/conversations/${seg(project)}/${seg(appId)}`, { method: 'DELETE' }, options)
  }

  create(project: string, appId: string, options: ApiOptions = {}): Promise<string> {
    return this.request<string>(`/create/${seg(project)}/${seg(appId)}`, { method: 'POST' }, options)
  }

  history(project: string, appId: string, options: ApiOptions = {}): Promise<ChatItem[]> {
    return this.request<ChatItem[]>(`/history/${seg(project)}/${seg(appId)}`, { method: 'GET' }, options)
  }

  /** Stops the answer streaming in a conversation; resolves once the server has ended it. */
  stop(project: string, appId: string, options: ApiOptions = {}): Promise<StopResult> {
    return this.request<StopResult>(`/stop/${seg(project)}/${seg(appId)}`, { method: 'POST' }, options)
  }

  /** Forks a conversation: a new one with its first `at` messages (a Burr fork); resolves with its id. */
  fork(project: string, appId: string, at: number, options: ApiOptions = {}): Promise<string> {
    return this.request<string>(
      `/fork/${seg(project)}/${seg(appId)}`,
      { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ at }) },
      options,
    )
  }

  /** The tree of branches a conversation belongs to (the root first, then in creation order). */
  branches(project: string, appId: string, options: ApiOptions = {}): Promise<BranchTree> {
    return this.request<BranchTree>(`/branches/${seg(project)}/${seg(appId)}`, { method: 'GET' }, options)
  }

  /** The tool calls of a conversation waiting for a person's approval (`GET /approvals`). */
  approvals(project: string, appId: string, options: ApiOptions = {}): Promise<ApprovalRequest[]> {
    return this.request<ApprovalRequest[]>(`/approvals/${seg(project)}/${seg(appId)}`, { method: 'GET' }, options)
  }

  /** The notes the `save_note` tool saved in a project, newest first (`GET /notes`). */
  notes(project: string, options: ApiOptions = {}): Promise<NoteInfo[]> {
    return this.request<NoteInfo[]>(`/notes/${seg(project)}`, { method: 'GET' }, options)
  }

  /** `GET /models`: the models a conversation may answer with (and where the list came from). */
  models(options: ApiOptions = {}): Promise<ModelList> {
    return this.request<ModelList>('/models', { method: 'GET' }, options)
  }

  /** `GET /settings`: a conversation's answer model, system prompt and temperature (null: the default). */
  answerSettings(project: string, appId: string, options: ApiOptions = {}): Promise<AnswerSettings> {
    return this.request<AnswerSettings>(`/settings/${seg(project)}/${seg(appId)}`, { method: 'GET' }, options)
  }

  /** `PATCH /settings`: changes the fields given (null: back to the default); resolves with them all. */
  changeAnswerSettings(
    project: string,
    appId: string,
    changes: AnswerSettingsInput,
    options: ApiOptions = {},
  ): Promise<AnswerSettings> {
    return this.request<AnswerSettings>(
      `/settings/${seg(project)}/${seg(appId)}`,
      { method: 'PATCH', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(changes) },
      options,
    )
  }

  /** `POST /feedback`: a thumbs up or down on the answer at `vote.at` (a Burr annotation on its step). */
  vote(project: string, appId: string, vote: FeedbackInput, options: ApiOptions = {}): Promise<FeedbackInfo> {
    return this.request<FeedbackInfo>(
      `/feedback/${seg(project)}/${seg(appId)}`,
      { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(vote) },
      options,
    )
  }

  /** `GET /feedback`: the votes on a conversation's answers. */
  votes(project: string, appId: string, options: ApiOptions = {}): Promise<FeedbackInfo[]> {
    return this.request<FeedbackInfo[]>(`/feedback/${seg(project)}/${seg(appId)}`, { method: 'GET' }, options)
  }

  /** `GET /export`: where the conversation downloads as a file (for a link; `Content-Disposition: attachment`). */
  exportUrl(project: string, appId: string, format: 'markdown' | 'json'): string {
    return `${this.apiBase}/export/${seg(project)}/${seg(appId)}?format=${format}`
  }

  /** `POST /approve`: approves or denies a waiting tool call and reads the answer that goes on (see `approveToolCall`). */
  approve(request: Bound<ApproveRequest>): Promise<StreamOutcome> {
    return approveToolCall({ ...request, apiBase: this.apiBase, fetchImpl: this.fetchImpl })
  }

  /** `POST /response`: sends a prompt and reads its answer's events (see `streamChat`). */
  streamChat(request: Bound<StreamRequest>): Promise<StreamOutcome> {
    return streamChat({ ...request, apiBase: this.apiBase, fetchImpl: this.fetchImpl })
  }

  /** `GET /stream`: reattaches to the answer streaming in a conversation (see `resumeChat`). */
  resumeChat(request: Bound<ResumeRequest>): Promise<StreamOutcome> {
    return resumeChat({ ...request, apiBase: this.apiBase, fetchImpl: this.fetchImpl })
  }

  /** `GET /events`: follows a conversation's changes until the signal aborts (see `followConversation`). */
  followConversation(request: Bound<FollowRequest>): Promise<void> {
    return followConversation({ ...request, apiBase: this.apiBase, fetchImpl: this.fetchImpl })
  }
}

/** The page's client: the injected base URL and the browser's `fetch`. */
export const api = new ApiClient()
