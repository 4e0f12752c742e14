import { useCallback, useEffect, useState } from 'react'
import { isAbortError } from '../lib/errors'

export interface Resource<T> {
  data: T | null
  error: string | null
  loading: boolean
  reload: () => void
}

/** Loads one JSON resource once (and again on reload()). */
export function useResource<T>(load: (signal: AbortSignal) => Promise<T>): Resource<T> {
  const [data, setData] = useState<T | null>(null)
  const [error, setError] = useState<string | null>(null)
  const [loading, setLoading] = useState(true)
  const [version, setVersion] = useState(0)

  // Loading from the render that asks for the resource (not from the effect that fetches it).
  const [request, setRequest] = useState({ load, version })
  if (request.load !== load || request.version !== version) {
    setRequest({ load, version })
    setLoading(true)
  }

  useEffect(() => {
    const abort = new AbortController()
    // Asked in a task of its own: the page's first render mounts several resources, and each
    // request costs the page's thread a few milliseconds (the first one of a page more); asked in
    // the render's effects, they would all add up in one task.
    const timer = setTimeout(() => {
      load(abort.signal)
        .then((value) => {
          setData(value)
          setError(null)
        })
        .catch((err: unknown) => {
          if (!isAbortError(err)) setError(err instanceof Error ? err.message : 'Request failed.')
        })
        .finally(() => {
          if (!abort.signal.aborted) setLoading(false)
        })
    }, 0)
    return () => {
      clearTimeout(timer)
      abort.abort()
    }
  }, [load, version])

  const reload = useCallback(() => setVersion((v) => v + 1), [])
  return { data, error, loading, reload }
}
