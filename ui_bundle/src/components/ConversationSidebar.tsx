import { useState, type FormEvent, type KeyboardEvent } from 'react'
import { groupByRoot } from '../lib/branches'
import type { ConversationSummary } from '../lib/types'

interface ConversationSidebarProps {
  conversations: ConversationSummary[]
  currentId: string
  isNew: boolean
  loading: boolean
  error: string | null
  onSelect: (appId: string) => void
  /** Renames a conversation (`PATCH /conversations`); rejects with the reason it failed. */
  onRename?: ((appId: string, title: string) => Promise<void>) | undefined
  /** Deletes a conversation (`DELETE /conversations`), once confirmed; rejects with the reason it failed. */
  onDelete?: ((appId: string) => Promise<void>) | undefined
  /** The search box and its results (none: no search box). */
  search?: SidebarSearch | undefined
}

/** What the sidebar shows of a search (see `useConversationSearch`). */
export interface SidebarSearch {
  query: string
  onQuery: (query: string) => void
  /** Null while there is no query: the whole list is shown. */
  results: ConversationSummary[] | null
  searching: boolean
  error: string | null
  more: boolean
  onMore: () => void
}

/** The longest title the server takes (after trimming). */
export const MAX_TITLE_CHARS = 200

function when(updatedAt: string | null | undefined): string | null {
  if (!updatedAt) return null
  const date = new Date(updatedAt)
  if (Number.isNaN(date.getTime())) return null
  return date.toLocaleString(undefined, { dateStyle: 'short', timeStyle: 'short' })
}

/** "Branch at message 3": where a branch's own messages start (counted from 1). */
export function branchLabel(forkAt: number | null | undefined): string {
  return forkAt === null || forkAt === undefined ? 'Branch' : `Branch at message ${forkAt + 1}`
}

function Entry({ c, current, branch, onSelect }: { c: ConversationSummary; current: boolean; branch: boolean; onSelect: (appId: string) => void }) {
  const stamp = when(c.updated_at)
  return (
    <button
      type="button"
      onClick={() => onSelect(c.app_id)}
      aria-current={current ? 'page' : undefined}
      title={c.title ?? c.app_id}
      data-testid={branch ? 'conversation-branch' : 'conversation-entry'}
      className={`block w-full rounded-md px-2 py-1.5 text-left text-sm focus-visible:outline-2 focus-visible:outline-offset-1 focus-visible:outline-dwlightblue ${
        current
          ? 'bg-blue-50 font-medium text-gray-900 dark:bg-dwdarkblue dark:text-white'
          : 'text-gray-700 hover:bg-gray-100 dark:text-gray-300 dark:hover:bg-gray-800'
      }`}
    >
      {branch && (
        <span className="block text-xs font-medium text-dwlightblue-deep dark:text-sky-300">
          {branchLabel(c.fork_at)}
          {c.parent_deleted && <span data-testid="original-deleted"> · original deleted</span>}
        </span>
      )}
      <span className="block truncate">{c.title || c.app_id}</span>
      {stamp && (
        <span className={`block text-xs ${current ? 'text-gray-600 dark:text-gray-300' : 'text-gray-500 dark:text-gray-400'}`}>{stamp}</span>
      )}
    </button>
  )
}

/** The form that renames a conversation in place: Enter (or Save) saves, Escape cancels. */
function RenameForm({ c, onRename, onDone }: { c: ConversationSummary; onRename: (appId: string, title: string) => Promise<void>; onDone: () => void }) {
  const [title, setTitle] = useState(c.title ?? '')
  const [saving, setSaving] = useState(false)
  const [problem, setProblem] = useState<string | null>(null)
  const trimmed = title.trim()
  const submit = (event: FormEvent) => {
    event.preventDefault()
    if (!trimmed || saving) return
    setSaving(true)
    setProblem(null)
    onRename(c.app_id, trimmed).then(onDone, (err: unknown) => {
      setSaving(false)
      setProblem(err instanceof Error ? err.message : 'Could not rename the conversation.')
    })
  }
  const onKeyDown = (event: KeyboardEvent) => {
    if (event.key === 'Escape') onDone()
  }
  return (
    <form onSubmit={submit} className="px-1 py-1" data-testid="rename-form">
      <input
        autoFocus
        aria-label="New title"
        value={title}
        maxLength={MAX_TITLE_CHARS}
        onChange={(event) => setTitle(event.target.value)}
        onKeyDown={onKeyDown}
        disabled={saving}
        className="w-full rounded border border-gray-300 bg-white px-1.5 py-1 text-sm text-gray-900 dark:border-gray-600 dark:bg-gray-800 dark:text-gray-100"
      />
      <div className="mt-1 flex gap-1">
        <button type="submit" disabled={!trimmed || saving} className="rounded bg-dwdarkblue px-2 py-0.5 text-xs text-white disabled:opacity-50">
          Save
        </button>
        <button type="button" onClick={onDone} className="rounded px-2 py-0.5 text-xs text-gray-700 hover:bg-gray-100 dark:text-gray-300 dark:hover:bg-gray-800">
          Cancel
        </button>
      </div>
      {problem && (
        <p role="alert" className="mt-1 text-xs text-red-700 dark:text-red-300">
          {problem}
        </p>
      )}
    </form>
  )
}

/** Asks before a conversation is deleted: Delete deletes it, Cancel (or Escape) keeps it. */
function DeleteConfirm({ c, onDelete, onDone }: { c: ConversationSummary; onDelete: (appId: string) => Promise<void>; onDone: () => void }) {
  const [deleting, setDeleting] = useState(false)
  const [problem, setProblem] = useState<string | null>(null)
  const name = c.title || c.app_id
  const confirm = () => {
    setDeleting(true)
    setProblem(null)
    onDelete(c.app_id).then(onDone, (err: unknown) => {
      setDeleting(false)
      setProblem(err instanceof Error ? err.message : 'Could not delete the conversation.')
    })
  }
  return (
    <div
      role="group"
      aria-label={`Delete ${name}?`}
      data-testid="delete-confirm"
      className="rounded-md border border-red-200 px-2 py-1.5 text-sm dark:border-red-900"
      onKeyDown={(event) => {
        if (event.key === 'Escape') onDone()
      }}
    >
      <p className="truncate text-gray-800 dark:text-gray-200">Delete “{name}”?</p>
      <p className="text-xs text-gray-600 dark:text-gray-400">Its messages are gone for good; its branches stay.</p>
      <div className="mt-1 flex gap-1">
        <button
          type="button"
          autoFocus
          onClick={confirm}
          disabled={deleting}
          className="rounded bg-red-700 px-2 py-0.5 text-xs text-white disabled:opacity-50"
        >
          Delete
        </button>
        <button type="button" onClick={onDone} className="rounded px-2 py-0.5 text-xs text-gray-700 hover:bg-gray-100 dark:text-gray-300 dark:hover:bg-gray-800">
          Cancel
        </button>
      </div>
      {problem && (
        <p role="alert" className="mt-1 text-xs text-red-700 dark:text-red-300">
          {problem}
        </p>
      )}
    </div>
  )
}

const SMALL_BUTTON =
  'shrink-0 rounded px-1 py-1.5 text-xs text-gray-500 hover:bg-gray-100 hover:text-gray-900 focus-visible:outline-2 focus-visible:outline-dwlightblue dark:text-gray-400 dark:hover:bg-gray-800 dark:hover:text-white'

/** A conversation's entry, with Rename (a form in place) and Delete (after a confirm) when the page can do them. */
function Row(props: {
  c: ConversationSummary
  current: boolean
  branch: boolean
  onSelect: (appId: string) => void
  onRename?: ((appId: string, title: string) => Promise<void>) | undefined
  onDelete?: ((appId: string) => Promise<void>) | undefined
}) {
  const { c, onRename, onDelete } = props
  const [mode, setMode] = useState<'show' | 'rename' | 'delete'>('show')
  const back = () => setMode('show')
  if (mode === 'rename' && onRename) return <RenameForm c={c} onRename={onRename} onDone={back} />
  if (mode === 'delete' && onDelete) return <DeleteConfirm c={c} onDelete={onDelete} onDone={back} />
  return (
    <div className="group flex items-start gap-0.5">
      <div className="min-w-0 flex-1">
        <Entry c={c} current={props.current} branch={props.branch} onSelect={props.onSelect} />
      </div>
      {onRename && (
        <button type="button" onClick={() => setMode('rename')} aria-label={`Rename ${c.title || c.app_id}`} title="Rename" data-testid="rename-conversation" className={SMALL_BUTTON}>
          ✎
        </button>
      )}
      {onDelete && (
        <button type="button" onClick={() => setMode('delete')} aria-label={`Delete ${c.title || c.app_id}`} title="Delete" data-testid="delete-conversation" className={SMALL_BUTTON}>
          🗑
        </button>
      )}
    </div>
  )
}

/**
 * The project's conversations, newest first (the "New conversation" button is in the header).
 * The branches of a conversation are listed under it, indented, with where they branched off.
 */
export function ConversationSidebar(props: ConversationSidebarProps) {
  const { conversations, currentId, isNew, loading, error, onSelect, onRename, onDelete, search } = props
  const groups = groupByRoot(conversations)
  const results = search?.results ?? null
  return (
    <nav aria-label="Conversations" className="flex min-h-0 flex-1 flex-col">
      <h2 className="px-3 pb-2 pt-3 text-xs font-semibold uppercase tracking-wide text-gray-500 dark:text-gray-400">
        Conversations
      </h2>
      {error && (
        <p role="status" className="px-3 text-xs text-red-700 dark:text-red-300">
          {error}
        </p>
      )}
      {search && (
        <div className="px-2 pb-2">
          <input
            type="search"
            aria-label="Search conversations"
            placeholder="Search conversations"
            value={search.query}
            maxLength={200}
            onChange={(event) => search.onQuery(event.target.value)}
            className="w-full rounded-md border border-gray-300 bg-white px-2 py-1 text-sm text-gray-900 placeholder:text-gray-500 dark:border-gray-600 dark:bg-gray-800 dark:text-gray-100 dark:placeholder:text-gray-400"
          />
        </div>
      )}
      {search && results !== null && (
        <div className="min-h-0 flex-1 overflow-y-auto px-2 pb-3">
          <p role="status" className="px-1 pb-1 text-xs text-gray-600 dark:text-gray-400">
            {search.error ?? (search.searching ? 'Searching…' : results.length === 0 ? 'No conversation matches.' : `${results.length}${search.more ? '+' : ''} found`)}
          </p>
          <ul aria-label="Search results" className="space-y-0.5" data-testid="search-results">
            {results.map((c) => (
              <li key={c.app_id}>
                <Row c={c} current={c.app_id === currentId} branch={Boolean(c.parent)} onSelect={onSelect} onRename={onRename} onDelete={onDelete} />
              </li>
            ))}
          </ul>
          {search.more && !search.searching && (
            <button type="button" onClick={search.onMore} className="mt-1 w-full rounded px-2 py-1 text-xs text-gray-700 hover:bg-gray-100 dark:text-gray-300 dark:hover:bg-gray-800">
              More results
            </button>
          )}
        </div>
      )}
      <ul hidden={results !== null} className="min-h-0 flex-1 space-y-0.5 overflow-y-auto px-2 pb-3" data-testid="conversation-list">
        {isNew && (
          <li>
            <span
              aria-current="page"
              className="block truncate rounded-md bg-blue-50 px-2 py-1.5 text-sm italic text-gray-700 dark:bg-dwdarkblue dark:text-gray-200"
            >
              New conversation (not saved yet)
            </span>
          </li>
        )}
        {groups.map(({ conversation, branches }) => (
          <li key={conversation.app_id}>
            <Row c={conversation} current={conversation.app_id === currentId} branch={Boolean(conversation.parent)} onSelect={onSelect} onRename={onRename} onDelete={onDelete} />
            {branches.length > 0 && (
              <ul aria-label={`Branches of ${conversation.title || conversation.app_id}`} className="ml-3 mt-0.5 space-y-0.5 border-l border-gray-200 pl-2 dark:border-gray-700">
                {branches.map((b) => (
                  <li key={b.app_id}>
                    <Row c={b} current={b.app_id === currentId} branch onSelect={onSelect} onRename={onRename} onDelete={onDelete} />
                  </li>
                ))}
              </ul>
            )}
          </li>
        ))}
        {!loading && !error && conversations.length === 0 && !isNew && (
          <li className="px-2 text-sm text-gray-500 dark:text-gray-400">No conversations yet.</li>
        )}
      </ul>
    </nav>
  )
}
