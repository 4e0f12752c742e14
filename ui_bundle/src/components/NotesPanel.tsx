import type { NoteInfo } from '../lib/types'

function when(createdAt: string): string | null {
  const date = new Date(createdAt)
  if (Number.isNaN(date.getTime())) return null
  return date.toLocaleString(undefined, { dateStyle: 'short', timeStyle: 'short' })
}

interface NotesPanelProps {
  notes: NoteInfo[] | null
  error: string | null
  /** Opens the conversation a note was saved from. */
  onOpen: (appId: string) => void
}

/** The notes the assistant saved (with a person's approval), newest first, each with the conversation it came from. */
export function NotesPanel({ notes, error, onOpen }: NotesPanelProps) {
  return (
    <section aria-labelledby="notes-title" className="max-h-[40%] shrink-0 overflow-y-auto border-t border-gray-200 px-3 pb-3 pt-2 dark:border-gray-700">
      <h2 id="notes-title" className="pb-2 text-xs font-semibold uppercase tracking-wide text-gray-500 dark:text-gray-400">
        Notes
      </h2>
      {error && <p className="text-xs text-red-700 dark:text-red-300">Could not load the notes: {error}</p>}
      {notes && notes.length === 0 && !error && (
        <p className="text-xs text-gray-500 dark:text-gray-400" data-testid="notes-empty">
          No notes yet. Ask the assistant to remember something.
        </p>
      )}
      {notes && notes.length > 0 && (
        <ul className="space-y-1.5" data-testid="notes-list">
          {notes.map((note) => {
            const stamp = when(note.created_at)
            return (
              <li key={String(note.id)} data-testid="note" className="rounded-md border border-gray-200 bg-white px-2 py-1.5 text-sm dark:border-gray-700 dark:bg-gray-900">
                <p className="whitespace-pre-wrap break-words" data-testid="note-text">
                  {note.text}
                </p>
                <button
                  type="button"
                  onClick={() => onOpen(note.app_id)}
                  className="mt-0.5 text-xs text-blue-700 underline-offset-2 hover:underline focus-visible:outline-2 focus-visible:outline-offset-2 focus-visible:outline-dwlightblue dark:text-sky-300"
                >
                  {stamp ? `${stamp}, ` : ''}from its conversation
                </button>
              </li>
            )
          })}
        </ul>
      )}
    </section>
  )
}
