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
    return () => abort.abort()
  }, [load, version])

  const reload = useCallback(() => setVersion((v) => v + 1), [])
  return { data, error, loading, reload }
}
