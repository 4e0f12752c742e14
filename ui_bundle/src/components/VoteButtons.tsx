import { useState, type FormEvent } from 'react'
import type { Vote } from '../hooks/useVotes'

const MAX_COMMENT = 2000

/** Thumbs up and down on an answer (the chosen one is pressed); once voted, a comment too. */
export function VoteButtons({ vote, onVote }: { vote: Vote | undefined; onVote: (thumbsUp: boolean, comment?: string) => void }) {
  const [editing, setEditing] = useState(false)
  const [draft, setDraft] = useState('')
  const button = (thumbsUp: boolean, label: string, glyph: string) => {
    const pressed = vote?.thumbs_up === thumbsUp
    return (
      <button
        type="button"
        aria-label={label}
        aria-pressed={pressed}
        title={label}
        onClick={() => onVote(thumbsUp)}
        data-testid={thumbsUp ? 'vote-up' : 'vote-down'}
        className={`rounded-md border px-2 py-0.5 text-xs focus-visible:outline-2 focus-visible:outline-offset-2 focus-visible:outline-dwlightblue ${
          pressed
            ? 'border-dwlightblue-deep bg-sky-100 text-gray-900 dark:border-dwlightblue dark:bg-sky-900 dark:text-gray-100'
            : 'border-gray-300 text-gray-700 hover:bg-gray-50 dark:border-gray-600 dark:text-gray-200 dark:hover:bg-gray-800'
        }`}
      >
        <span aria-hidden="true">{glyph}</span>
      </button>
    )
  }
  const save = (event: FormEvent) => {
    event.preventDefault()
    if (vote) onVote(vote.thumbs_up, draft)
    setEditing(false)
  }
  return (
    <div role="group" aria-label="Rate this answer" className="flex flex-wrap items-center gap-1" data-testid="vote-buttons">
      {button(true, 'Good answer', '👍')}
      {button(false, 'Bad answer', '👎')}
      {vote && !editing && (
        <button
          type="button"
          onClick={() => {
            setDraft(vote.comment ?? '')
            setEditing(true)
          }}
          className="rounded-md px-1.5 py-0.5 text-xs text-gray-600 underline-offset-2 hover:underline focus-visible:outline-2 focus-visible:outline-dwlightblue dark:text-gray-300"
        >
          {vote.comment ? 'Edit comment' : 'Add a comment'}
        </button>
      )}
      {vote?.comment && !editing && (
        <span data-testid="vote-comment" className="max-w-64 truncate text-xs text-gray-600 italic dark:text-gray-300" title={vote.comment}>
          {vote.comment}
        </span>
      )}
      {editing && (
        <form onSubmit={save} className="flex items-center gap-1">
          <input
            type="text"
            aria-label="Comment on this answer"
            value={draft}
            maxLength={MAX_COMMENT}
            autoFocus
            onChange={(e) => setDraft(e.target.value)}
            className="w-56 rounded-md border border-gray-300 bg-white px-2 py-0.5 text-xs text-gray-900 focus:border-dwlightblue focus:outline-2 focus:outline-dwlightblue dark:border-gray-600 dark:bg-gray-800 dark:text-gray-100"
          />
          <button type="submit" className="rounded-md border border-gray-300 px-2 py-0.5 text-xs font-medium text-gray-700 hover:bg-gray-50 dark:border-gray-600 dark:text-gray-200 dark:hover:bg-gray-800">
            Save
          </button>
          <button type="button" onClick={() => setEditing(false)} className="rounded-md px-2 py-0.5 text-xs text-gray-600 dark:text-gray-300">
            Cancel
          </button>
        </form>
      )}
    </div>
  )
}
