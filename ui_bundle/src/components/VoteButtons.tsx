/** Thumbs up and down on an answer; the chosen one is pressed. */
export function VoteButtons({ vote, onVote }: { vote: boolean | undefined; onVote: (thumbsUp: boolean) => void }) {
  const button = (thumbsUp: boolean, label: string, glyph: string) => {
    const pressed = vote === thumbsUp
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
  return (
    <div role="group" aria-label="Rate this answer" className="flex items-center gap-1" data-testid="vote-buttons">
      {button(true, 'Good answer', '👍')}
      {button(false, 'Bad answer', '👎')}
    </div>
  )
}
