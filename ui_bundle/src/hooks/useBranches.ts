import { useCallback, useEffect, useState } from 'react'
import type { ApiClient } from '../lib/api'
import { isAbortError } from '../lib/errors'
import type { BranchTree } from '../lib/types'

export interface UseBranches {
  /** The tree of the conversation shown; null while unknown (a new conversation, not loaded, an error). */
  tree: BranchTree | null
  /** Loads it again (a branch was made). */
  reload: () => void
}

/** The branch tree (`GET /branches`) of the conversation shown. */
export function useBranches(project: string | null, appId: string, isNew: boolean, client: ApiClient): UseBranches {
  const [tree, setTree] = useState<BranchTree | null>(null)
  const [version, setVersion] = useState(0)

  // No tree for a new conversation (or without a project): set from the render that says so.
  const none = !project || isNew
  const [wasNone, setWasNone] = useState(none)
  if (wasNone !== none) {
    setWasNone(none)
    if (none) setTree(null)
  }

  useEffect(() => {
    if (!project || isNew) return
    const abort = new AbortController()
    client
      .branches(project, appId, { signal: abort.signal })
      .then((next) => setTree(next))
      .catch((error: unknown) => {
        // A tree that cannot be read shows no switcher; the conversation itself still works.
        if (!isAbortError(error)) setTree(null)
      })
    return () => abort.abort()
  }, [project, appId, isNew, version, client])

  const reload = useCallback(() => setVersion((v) => v + 1), [])
  return { tree, reload }
}
