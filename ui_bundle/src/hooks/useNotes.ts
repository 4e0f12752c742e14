import { useCallback } from 'react'
import type { ApiClient } from '../lib/api'
import type { NoteInfo } from '../lib/types'
import { useResource, type Resource } from './useResource'

/** `GET /notes/{project}`: the notes the `save_note` tool saved, newest first (none until the project is known). */
export function useNotes(project: string | null, client: ApiClient): Resource<NoteInfo[]> {
  const load = useCallback(
    (signal: AbortSignal) => (project ? client.notes(project, { signal }) : Promise.resolve([])),
    [client, project],
  )
  return useResource(load)
}
