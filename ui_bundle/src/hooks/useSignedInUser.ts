import { useCallback } from 'react'
import type { ApiClient } from '../lib/api'
import type { UserInfo } from '../lib/types'
import { useResource, type Resource } from './useResource'

/** `GET /me`: who is signed in (`user` is null when the server has no users). */
export function useSignedInUser(client: ApiClient): Resource<UserInfo> {
  const load = useCallback((signal: AbortSignal) => client.me({ signal }), [client])
  return useResource(load)
}
