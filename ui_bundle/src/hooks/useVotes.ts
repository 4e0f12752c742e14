import { useCallback, useEffect, useState } from 'react'
import type { ApiClient } from '../lib/api'
import { isAbortError } from '../lib/errors'
import type { FeedbackInput } from '../lib/types'

/** A reader's vote on an answer: thumbs up (true) or down, and a comment. */
export interface Vote {
  thumbs_up: boolean
  comment: string | null
}

/** The votes on the answers of a conversation, by message index. */
export type Votes = Readonly<Record<number, Vote>>

export interface VotesState {
  votes: Votes
  /** Why the last vote could not be recorded (null when it was). */
  error: string | null
  /** Records a thumbs up or down on the answer at `at` (a Burr annotation on its step);
   * `comment` left out keeps the one given before. */
  vote: (at: number, thumbsUp: boolean, comment?: string) => void
}

const NO_VOTES: Votes = {}

/** `GET /feedback` for the conversation shown (once it is saved), and `POST /feedback` for a new vote, shown at once. */
export function useVotes(project: string | null, appId: string, saved: boolean, client: ApiClient): VotesState {
  const [loaded, setLoaded] = useState<{ key: string; votes: Votes }>({ key: '', votes: NO_VOTES })
  const [error, setError] = useState<string | null>(null)
  const key = project && saved ? `${project}/${appId}` : ''

  useEffect(() => {
    if (!project || !saved) return
    const abort = new AbortController()
    client
      .votes(project, appId, { signal: abort.signal })
      .then((list) =>
        setLoaded({
          key: `${project}/${appId}`,
          votes: Object.fromEntries(list.map((v) => [v.at, { thumbs_up: v.thumbs_up, comment: v.comment ?? null }])),
        }),
      )
      .catch((err: unknown) => {
        // A conversation that is not stored yet has no votes.
        if (!isAbortError(err)) setLoaded({ key: `${project}/${appId}`, votes: NO_VOTES })
      })
    return () => abort.abort()
  }, [client, project, appId, saved])

  const vote = useCallback(
    (at: number, thumbsUp: boolean, comment?: string) => {
      if (!project) return
      const voteKey = `${project}/${appId}`
      setError(null)
      setLoaded((current) => {
        const votes = current.key === voteKey ? current.votes : NO_VOTES
        const kept = comment === undefined ? (votes[at]?.comment ?? null) : comment.trim() || null
        return { key: voteKey, votes: { ...votes, [at]: { thumbs_up: thumbsUp, comment: kept } } }
      })
      const body: FeedbackInput = comment === undefined ? { at, thumbs_up: thumbsUp } : { at, thumbs_up: thumbsUp, comment }
      client.vote(project, appId, body).catch((err: unknown) => {
        setError(err instanceof Error ? err.message : 'The vote could not be recorded.')
        setLoaded((current) => {
          if (current.key !== voteKey) return current
          const votes: Record<number, Vote> = { ...current.votes }
          delete votes[at]
          return { key: voteKey, votes }
        })
      })
    },
    [client, project, appId],
  )
  return { votes: loaded.key === key ? loaded.votes : NO_VOTES, error, vote }
}
