import { useCallback } from 'react'
import type { ApiClient } from '../lib/api'
import type { ModelInfo } from '../lib/types'
import { useResource, type Resource } from './useResource'

/** `GET /model`: which models answer, whether offline, the default project. */
export function useModelInfo(client: ApiClient): Resource<ModelInfo> {
  const load = useCallback(
    (signal: AbortSignal) => client.model({ signal }),
    [client],
  )
  return useResource(load)
}
