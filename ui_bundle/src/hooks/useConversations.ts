import { useCallback, useEffect, useLayoutEffect, useRef, useState } from 'react'
import type { ApiClient } from '../lib/api'
import { isAbortError } from '../lib/errors'
import { isValidId, newConversationId } from '../lib/ids'
import type { ConversationSummary } from '../lib/types'

export const QUERY_KEY = 'c'

function idFromUrl(): string | null {
  const id = new URLSearchParams(window.location.search).get(QUERY_KEY)
  return isValidId(id) ? id : null
}

function urlWith(id: string | null): string {
  const url = new URL(window.location.href)
  if (id) url.searchParams.set(QUERY_KEY, id)
  else url.searchParams.delete(QUERY_KEY)
  return url.toString()
}

export interface UseConversations {
  conversations: ConversationSummary[]
  loading: boolean
  error: string | null
  /** The conversation shown (from `?c=<app_id>`, or a fresh id). */
  currentId: string
  /** True while the current conversation exists only on this page (created on first send). */
  isNew: boolean
  select: (appId: string) => void
  /** Starts a new conversation; it is created on the server when its first prompt is sent. */
  newConversation: () => void
  /** Creates the conversation on the server if it is new, and puts it in the URL. */
  ensureCreated: (appId: string) => Promise<void>
  refresh: () => void
}

interface Current {
  id: string
  isNew: boolean
}

function currentFromUrl(): Current {
  const id = idFromUrl()
  return id ? { id, isNew: false } : { id: newConversationId(), isNew: true }
}

export function useConversations(project: string | null, client: ApiClient): UseConversations {
  const [current, setCurrent] = useState<Current>(currentFromUrl)
  const [conversations, setConversations] = useState<ConversationSummary[]>([])
  const [loading, setLoading] = useState(project !== null)
  const [error, setError] = useState<string | null>(null)
  const [version, setVersion] = useState(0)
  const created = useRef(new Set<string>())
  const currentRef = useRef(current)
  useLayoutEffect(() => {
    currentRef.current = current
  }, [current])

  // Loading from the render that asks for a list (not from the effect that fetches it).
  const [request, setRequest] = useState({ project, version, client })
  if (request.project !== project || request.version !== version || request.client !== client) {
    setRequest({ project, version, client })
    if (project) setLoading(true)
  }

  useEffect(() => {
    if (!project) return
    const abort = new AbortController()
    client
      .conversations(project, { signal: abort.signal })
      .then((list) => {
        setConversations(list)
        setError(null)
      })
      .catch((err: unknown) => {
        if (!isAbortError(err)) setError(err instanceof Error ? err.message : 'Could not load conversations.')
      })
      .finally(() => {
        if (!abort.signal.aborted) setLoading(false)
      })
    return () => abort.abort()
  }, [project, version, client])

  useEffect(() => {
    const onPopState = () => setCurrent(currentFromUrl())
    window.addEventListener('popstate', onPopState)
    return () => window.removeEventListener('popstate', onPopState)
  }, [])

  const select = useCallback((appId: string) => {
    if (!isValidId(appId) || currentRef.current.id === appId) return
    window.history.pushState(null, '', urlWith(appId))
    setCurrent({ id: appId, isNew: false })
  }, [])

  const newConversation = useCallback(() => {
    if (idFromUrl() !== null) window.history.pushState(null, '', urlWith(null))
    setCurrent({ id: newConversationId(), isNew: true })
  }, [])

  const ensureCreated = useCallback(
    async (appId: string) => {
      if (!project || created.current.has(appId)) return
      const now = currentRef.current
      if (now.id === appId && now.isNew) {
        await client.create(project, appId)
        window.history.replaceState(null, '', urlWith(appId))
        setCurrent((prev) => (prev.id === appId ? { id: appId, isNew: false } : prev))
      }
      created.current.add(appId)
    },
    [project, client],
  )

  const refresh = useCallback(() => setVersion((v) => v + 1), [])

  return {
    conversations,
    loading,
    error,
    currentId: current.id,
    isNew: current.isNew,
    select,
    newConversation,
    ensureCreated,
    refresh,
  }
}
