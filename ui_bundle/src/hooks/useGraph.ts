import { useCallback } from 'react'
import { api } from '../lib/api'
import type { GraphInfo } from '../lib/types'
import { useResource, type Resource } from './useResource'

/** `GET /graph`: the Burr state machine every conversation runs. */
export function useGraph(fetchImpl?: typeof fetch): Resource<GraphInfo> {
  const load = useCallback(
    (signal: AbortSignal) => api.graph({ signal, ...(fetchImpl ? { fetchImpl } : {}) }),
    [fetchImpl],
  )
  return useResource(load)
}
