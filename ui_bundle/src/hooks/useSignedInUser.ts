import { useCallback } from 'react'
import { api } from '../lib/api'
import type { UserInfo } from '../lib/types'
import { useResource, type Resource } from './useResource'

/** `GET /me`: who is signed in (`user` is null when the server has no users). */
export function useSignedInUser(fetchImpl?: typeof fetch): Resource<UserInfo> {
  const load = useCallback(
    (signal: AbortSignal) => api.me({ signal, ...(fetchImpl ? { fetchImpl } : {}) }),
    [fetchImpl],
  )
  return useResource(load)
}
