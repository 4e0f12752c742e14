import { useCallback } from 'react'
import { api } from '../lib/api'
import type { ModelInfo } from '../lib/types'
import { useResource, type Resource } from './useResource'

/** `GET /model`: which models answer, whether offline, the default project. */
export function useModelInfo(fetchImpl?: typeof fetch): Resource<ModelInfo> {
  const load = useCallback(
    (signal: AbortSignal) => api.model({ signal, ...(fetchImpl ? { fetchImpl } : {}) }),
    [fetchImpl],
  )
  return useResource(load)
}
