import { config } from './config'
import { httpErrorFrom, isAbortError, NetworkError } from './errors'
import type { BranchTree, ChatItem, ConversationSummary, GraphInfo, ModelInfo, StopResult, UserInfo } from './types'

export interface ApiOptions {
  apiBase?: string
  signal?: AbortSignal
  fetchImpl?: typeof fetch
}

function url(path: string, options: ApiOptions): string {
  return `${options.apiBase ?? config.apiBase}${path}`
}

async function request<T>(path: string, init: RequestInit, options: ApiOptions): Promise<T> {
  const doFetch = options.fetchImpl ?? fetch
  let response: Response
  try {
    response = await doFetch(url(path, options), {
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

const seg = encodeURIComponent

export const api = {
  model: (options: ApiOptions = {}) => request<ModelInfo>('/model', { method: 'GET' }, options),
  me: (options: ApiOptions = {}) => request<UserInfo>('/me', { method: 'GET' }, options),
  graph: (options: ApiOptions = {}) => request<GraphInfo>('/graph', { method: 'GET' }, options),
  conversations: (project: string, options: ApiOptions = {}) =>
    request<ConversationSummary[]>(`/conversations/${seg(project)}`, { method: 'GET' }, options),
  create: (project: string, appId: string, options: ApiOptions = {}) =>
    request<string>(`/create/${seg(project)}/${seg(appId)}`, { method: 'POST' }, options),
  history: (project: string, appId: string, options: ApiOptions = {}) =>
    request<ChatItem[]>(`/history/${seg(project)}/${seg(appId)}`, { method: 'GET' }, options),
  /** Stops the answer streaming in a conversation; resolves once the server has ended it. */
  stop: (project: string, appId: string, options: ApiOptions = {}) =>
    request<StopResult>(`/stop/${seg(project)}/${seg(appId)}`, { method: 'POST' }, options),
  /** Forks a conversation: a new one with its first `at` messages (a Burr fork); resolves with its id. */
  fork: (project: string, appId: string, at: number, options: ApiOptions = {}) =>
    request<string>(
      `/fork/${seg(project)}/${seg(appId)}`,
      { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ at }) },
      options,
    ),
  /** The tree of branches a conversation belongs to (the root first, then in creation order). */
  branches: (project: string, appId: string, options: ApiOptions = {}) =>
    request<BranchTree>(`/branches/${seg(project)}/${seg(appId)}`, { method: 'GET' }, options),
}
