import { useCallback, useEffect, useState } from 'react'
import type { ApiClient } from '../lib/api'
import { isAbortError } from '../lib/errors'
import type { ConversationSummary } from '../lib/types'

/** How many results one page of a search holds. */
export const SEARCH_PAGE = 50
/** How long typing must pause before a search is sent. */
export const SEARCH_DELAY_MS = 250

export interface UseConversationSearch {
  query: string
  setQuery: (query: string) => void
  /** The results of the current query; null while there is no query (the list shows everything). */
  results: ConversationSummary[] | null
  /** True while the results are not yet those of the current query. */
  searching: boolean
  error: string | null
  /** True when the last page was full: there may be more. */
  more: boolean
  loadMore: () => void
  /** Searches again (after a rename or a delete). */
  refresh: () => void
}

interface Found {
  query: string
  version: number
  list: ConversationSummary[]
  more: boolean
}

/** The sidebar's search: the server's full-text search (`GET /conversations?q=`), paged. */
export function useConversationSearch(project: string | null, client: ApiClient): UseConversationSearch {
  const [query, setQuery] = useState('')
  const [found, setFound] = useState<Found | null>(null)
  const [error, setError] = useState<string | null>(null)
  const [version, setVersion] = useState(0)
  const wanted = query.trim()

  useEffect(() => {
    if (!project || !wanted) return
    const abort = new AbortController()
    const timer = window.setTimeout(() => {
      client
        .searchConversations(project, wanted, SEARCH_PAGE, 0, { signal: abort.signal })
        .then((list) => {
          setFound({ query: wanted, version, list, more: list.length === SEARCH_PAGE })
          setError(null)
        })
        .catch((err: unknown) => {
          if (!isAbortError(err)) setError(err instanceof Error ? err.message : 'Could not search.')
        })
    }, SEARCH_DELAY_MS)
    return () => {
      window.clearTimeout(timer)
      abort.abort()
    }
  }, [project, wanted, version, client])

  const current = found !== null && found.query === wanted ? found : null
  const loadMore = useCallback(() => {
    if (!project || !current) return
    client
      .searchConversations(project, current.query, SEARCH_PAGE, current.list.length)
      .then((page) => {
        setFound((prev) =>
          prev && prev.query === current.query ? { ...prev, list: [...prev.list, ...page], more: page.length === SEARCH_PAGE } : prev,
        )
      })
      .catch((err: unknown) => setError(err instanceof Error ? err.message : 'Could not search.'))
  }, [project, client, current])
  const refresh = useCallback(() => setVersion((v) => v + 1), [])

  return {
    query,
    setQuery,
    results: wanted ? (current?.list ?? []) : null,
    searching: Boolean(wanted) && (current === null || current.version !== version),
    error: wanted ? error : null,
    more: current?.more ?? false,
    loadMore,
    refresh,
  }
}
