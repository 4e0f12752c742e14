import { useCallback } from 'react'
import type { ApiClient } from '../lib/api'
import type { GraphInfo } from '../lib/types'
import { useResource, type Resource } from './useResource'

/** `GET /graph`: the Burr state machine every conversation runs. */
export function useGraph(client: ApiClient): Resource<GraphInfo> {
  const load = useCallback(
    (signal: AbortSignal) => client.graph({ signal }),
    [client],
  )
  return useResource(load)
}
