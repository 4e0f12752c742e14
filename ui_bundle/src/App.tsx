import { useCallback, useEffect, useLayoutEffect, useMemo, useRef, useState } from 'react'
import { BurrPanel } from './components/BurrPanel'
import { Composer } from './components/Composer'
import { ConversationSidebar } from './components/ConversationSidebar'
import { useConversationSearch } from './hooks/useConversationSearch'
import { ErrorNotice, StoppedNotice } from './components/ErrorNotice'
import { ExportLinks } from './components/ExportLinks'
import { MessageList } from './components/MessageList'
import { NotesPanel } from './components/NotesPanel'
import { OfflineBanner } from './components/OfflineBanner'
import { SettingsPanel } from './components/SettingsPanel'
import { useBranches } from './hooks/useBranches'
import { useChat } from './hooks/useChat'
import { useConversations } from './hooks/useConversations'
import { useGraph } from './hooks/useGraph'
import { useModelInfo } from './hooks/useModelInfo'
import { useNotes } from './hooks/useNotes'
import { useSignedInUser } from './hooks/useSignedInUser'
import { useVotes } from './hooks/useVotes'
import { ApiClient } from './lib/api'
import { siblingsAt } from './lib/branches'
import { config as defaultConfig, type DemoConfig } from './lib/config'
import { whenIdle } from './lib/idle'
import { warmUpRenderer } from './lib/renderClient'

/** Used only when /model cannot be read (the server's default project). */
export const FALLBACK_PROJECT = 'demo_streaming_chatbot'

type Drawer = 'none' | 'conversations' | 'burr'

const headerButton =
  'rounded-md border border-gray-300 bg-white px-3 py-1.5 text-sm font-medium text-gray-700 hover:bg-gray-50 focus-visible:outline-2 focus-visible:outline-offset-2 focus-visible:outline-dwlightblue dark:border-gray-600 dark:bg-gray-800 dark:text-gray-200 dark:hover:bg-gray-700'

export interface AppProps {
  config?: DemoConfig
  fetchImpl?: typeof fetch
}

export function App({ config = defaultConfig, fetchImpl }: AppProps) {
  // Every request of the page goes through this one client (its base URL and fetch).
  const client = useMemo(() => new ApiClient({ apiBase: config.apiBase, fetchImpl }), [config.apiBase, fetchImpl])
  const model = useModelInfo(client)
  const signedIn = useSignedInUser(client)
  const graph = useGraph(client)
  const project = model.data?.project_id ?? (model.error ? FALLBACK_PROJECT : null)
  const conversations = useConversations(project, client)
  const branches = useBranches(project, conversations.currentId, conversations.isNew, client)
  const { reload: reloadBranches } = branches
  const { refresh: refreshConversations } = conversations
  const notes = useNotes(project, client)
  const { reload: reloadNotes } = notes
  // A turn may have saved a note (an approved save_note) and changed the list's order.
  const onTurnEnd = useCallback(() => {
    refreshConversations()
    reloadNotes()
  }, [refreshConversations, reloadNotes])
  const search = useConversationSearch(project, client)
  const { refresh: refreshSearch } = search
  const renameConversation = useCallback(
    async (appId: string, title: string) => {
      if (!project) return
      await client.rename(project, appId, title)
      refreshConversations()
      refreshSearch()
      reloadBranches()
    },
    [client, project, refreshConversations, refreshSearch, reloadBranches],
  )
  const { newConversation } = conversations
  const shownId = conversations.currentId
  const deleteConversation = useCallback(
    async (appId: string) => {
      if (!project) return
      await client.deleteConversation(project, appId)
      if (appId === shownId) newConversation()
      refreshConversations()
      refreshSearch()
      reloadBranches()
    },
    [client, project, shownId, newConversation, refreshConversations, refreshSearch, reloadBranches],
  )
  const onBranchCreated = useCallback(() => {
    reloadBranches()
    refreshConversations()
  }, [reloadBranches, refreshConversations])
  const chat = useChat({
    project,
    appId: conversations.currentId,
    isNew: conversations.isNew,
    ensureConversation: conversations.ensureCreated,
    onTurnEnd,
    onBranchCreated,
    client,
  })
  const [drawer, setDrawer] = useState<Drawer>('none')
  const streaming = chat.status === 'streaming'

  const { send, sendWhenOpen, decide } = chat
  const onDecide = useCallback(
    (toolCallId: string, approved: boolean, reason: string | null) => void decide(toolCallId, approved, reason),
    [decide],
  )
  const onSend = useCallback(
    (text: string) => {
      if (!project) return false
      // While an answer streams, sending interrupts it (useChat asks with if_busy=interrupt).
      void send(text)
      return true
    },
    [project, send],
  )

  // Branches: editing a message or regenerating an earlier answer forks the conversation at that
  // message (a Burr fork keeping the messages before it), opens the fork (?c=<id>) and sends there.
  const [branchError, setBranchError] = useState<string | null>(null)
  const { currentId, select: selectConversation } = conversations
  const messages = chat.messages
  const messagesRef = useRef(messages)
  useLayoutEffect(() => {
    messagesRef.current = messages
  }, [messages])
  const branchOff = useCallback(
    async (at: number, prompt: string) => {
      if (!project) return
      setBranchError(null)
      try {
        const id = await client.fork(project, currentId, at)
        sendWhenOpen(id, prompt)
        selectConversation(id)
        onBranchCreated()
      } catch (error) {
        setBranchError(error instanceof Error ? error.message : 'The branch could not be made.')
      }
    },
    [project, currentId, client, sendWhenOpen, selectConversation, onBranchCreated],
  )
  // Another conversation shown: the error was about the one before.
  const [branchErrorFor, setBranchErrorFor] = useState(currentId)
  if (branchErrorFor !== currentId) {
    setBranchErrorFor(currentId)
    setBranchError(null)
  }
  const onEdit = useCallback((index: number, text: string) => void branchOff(index, text), [branchOff])
  const onRegenerateBranch = useCallback(
    (index: number) => {
      // The answer's prompt: the fork keeps the messages before the answer, so it ends with it,
      // and the server answers that unanswered prompt without adding it again.
      const prompt = messagesRef.current[index - 1]?.item
      if (prompt?.role === 'user') void branchOff(index, prompt.content)
    },
    [branchOff],
  )
  const { votes, error: voteError, vote: onVote } = useVotes(project, currentId, !conversations.isNew, client)
  const tree = branches.tree
  const count = messages.length
  const siblings = useMemo(
    () => Array.from({ length: count }, (_, index) => (tree ? siblingsAt(tree.branches, currentId, index) : null)),
    [tree, currentId, count],
  )

  const select = (appId: string) => {
    conversations.select(appId)
    setDrawer('none')
  }
  const startNew = () => {
    conversations.newConversation()
    setDrawer('none')
    document.getElementById('composer-input')?.focus()
  }

  // The render worker (started with the page, see main.tsx) warms its parser up once the page is idle.
  useEffect(() => whenIdle(warmUpRenderer, 2000), [])

  useEffect(() => {
    if (drawer === 'none') return
    const onKey = (e: KeyboardEvent) => {
      if (e.key === 'Escape') setDrawer('none')
    }
    window.addEventListener('keydown', onKey)
    return () => window.removeEventListener('keydown', onKey)
  }, [drawer])

  const drawerClass = (which: Drawer) =>
    drawer === which
      ? 'fixed inset-x-0 bottom-0 top-14 z-20 flex flex-col bg-white shadow-xl dark:bg-gray-900 lg:static lg:z-auto lg:shadow-none'
      : 'hidden lg:flex lg:flex-col'

  return (
    <div className="flex h-dvh flex-col bg-gray-50 text-gray-900 dark:bg-gray-950 dark:text-gray-100">
      <header className="flex h-14 shrink-0 items-center gap-2 border-b border-gray-200 bg-white px-3 dark:border-gray-700 dark:bg-gray-900 sm:px-4">
        <div className="min-w-0 flex-1">
          <h1 className="truncate text-base font-semibold">
            <span className="text-dwlightblue-deep dark:text-dwlightblue">Burr</span> streaming chatbot
          </h1>
          <p className="truncate text-xs text-gray-500 dark:text-gray-400" data-testid="model-line">
            {model.data
              ? `Router ${model.data.router_model} · answers ${model.data.answer_model}`
              : model.error
                ? `Model information unavailable: ${model.error}`
                : 'Loading model…'}
          </p>
        </div>
        {signedIn.data?.user && (
          <p
            className="hidden max-w-48 truncate text-xs text-gray-600 dark:text-gray-300 sm:block"
            data-testid="signed-in"
            title={`Signed in as ${signedIn.data.user}`}
          >
            Signed in as <span className="font-medium">{signedIn.data.user}</span>
          </p>
        )}
        <button
          type="button"
          className={`${headerButton} lg:hidden`}
          aria-expanded={drawer === 'conversations'}
          aria-controls="conversations-drawer"
          onClick={() => setDrawer(drawer === 'conversations' ? 'none' : 'conversations')}
        >
          <span className="sr-only sm:not-sr-only">Conversations</span>
          <span aria-hidden="true" className="sm:hidden">☰</span>
        </button>
        <button
          type="button"
          className={`${headerButton} lg:hidden`}
          aria-expanded={drawer === 'burr'}
          aria-controls="burr-drawer"
          onClick={() => setDrawer(drawer === 'burr' ? 'none' : 'burr')}
        >
          Graph
        </button>
        <button
          type="button"
          onClick={startNew}
          aria-label="New conversation"
          className="rounded-md bg-dwlightblue-deep px-3 py-1.5 text-sm font-semibold text-white hover:bg-sky-700 focus-visible:outline-2 focus-visible:outline-offset-2 focus-visible:outline-dwlightblue"
        >
          New<span className="hidden sm:inline"> conversation</span>
        </button>
      </header>

      <OfflineBanner model={model.data} />

      <div className="flex min-h-0 flex-1">
        <aside
          id="conversations-drawer"
          aria-label="Conversation list"
          className={`${drawerClass('conversations')} w-full shrink-0 border-r border-gray-200 bg-white dark:border-gray-700 dark:bg-gray-900 lg:w-60`}
        >
          <ConversationSidebar
            conversations={conversations.conversations}
            currentId={conversations.currentId}
            isNew={conversations.isNew}
            loading={conversations.loading}
            error={conversations.error}
            onSelect={select}
            onRename={project ? renameConversation : undefined}
            onDelete={project ? deleteConversation : undefined}
            search={
              project
                ? {
                    query: search.query,
                    onQuery: search.setQuery,
                    results: search.results,
                    searching: search.searching,
                    error: search.error,
                    more: search.more,
                    onMore: search.loadMore,
                  }
                : undefined
            }
          />
          <NotesPanel notes={notes.data} error={notes.error} onOpen={select} />
        </aside>

        <main className="flex min-w-0 flex-1 flex-col" aria-label="Chat">
          {project && !conversations.isNew && chat.messages.length > 0 && (
            <ExportLinks
              markdownUrl={client.exportUrl(project, conversations.currentId, 'markdown')}
              jsonUrl={client.exportUrl(project, conversations.currentId, 'json')}
            />
          )}
          <MessageList
            messages={chat.messages}
            streaming={streaming}
            streamingText={chat.streamingText}
            streamingReasoning={chat.streamingReasoning}
            mode={chat.mode}
            activeAction={chat.activeAction}
            // Every answer, the last one too, is answered again in a branch (the original stays
            // as it was); asking again in place is left for a conversation not saved yet.
            onRegenerate={chat.canRegenerate && (!project || conversations.isNew) ? () => void chat.regenerate() : undefined}
            onEdit={project && !conversations.isNew ? onEdit : undefined}
            onRegenerateBranch={project && !conversations.isNew ? onRegenerateBranch : undefined}
            siblings={siblings}
            onSwitchBranch={selectConversation}
            approvals={chat.approvals}
            liveToolCalls={chat.liveToolCalls}
            onDecide={onDecide}
            votes={votes}
            onVote={project && !conversations.isNew ? onVote : undefined}
            empty={
              chat.historyLoading ? (
                <p className="text-center text-sm text-gray-500 dark:text-gray-400">Loading the conversation…</p>
              ) : (
                <div className="mx-auto mt-10 max-w-md text-center text-sm text-gray-500 dark:text-gray-400">
                  <p className="text-base font-medium text-gray-700 dark:text-gray-200">Ask anything.</p>
                  <p className="mt-1">
                    Each message runs through a Burr state machine: a safety check, a mode decision, then an
                    answer, a poem or code, streamed as it is written. The answer may call tools (each one a
                    step of the graph); a tool that changes something waits for your approval.
                  </p>
                </div>
              )
            }
          >
            {chat.error && chat.status === 'error' && (
              <ErrorNotice error={chat.error} onRetry={() => void chat.retry()} busy={streaming} />
            )}
            {chat.stoppedEarly && chat.status === 'idle' && <StoppedNotice onRegenerate={() => void chat.retry()} />}
            {voteError && (
              <p role="alert" data-testid="vote-error" className="rounded-lg border border-dwred/50 bg-red-50 px-4 py-3 text-sm text-red-900 dark:bg-red-950/40 dark:text-red-100">
                <span className="font-semibold">The vote could not be recorded.</span> {voteError}
              </p>
            )}
            {branchError && (
              <p role="alert" data-testid="branch-error" className="rounded-lg border border-dwred/50 bg-red-50 px-4 py-3 text-sm text-red-900 dark:bg-red-950/40 dark:text-red-100">
                <span className="font-semibold">The branch could not be made.</span> {branchError}
              </p>
            )}
          </MessageList>
          {streaming && chat.activeAction && (
            <p className="border-t border-gray-200 bg-white px-4 py-1 text-xs text-gray-500 dark:border-gray-700 dark:bg-gray-900 dark:text-gray-400 lg:hidden">
              Burr is running <span className="font-mono">{chat.activeAction}</span>
            </p>
          )}
          <Composer onSend={onSend} onStop={chat.stop} streaming={streaming} ready={project !== null} />
        </main>

        <aside
          id="burr-drawer"
          aria-label="Burr"
          className={`${drawerClass('burr')} w-full shrink-0 border-l border-gray-200 bg-white dark:border-gray-700 dark:bg-gray-900 lg:w-72`}
        >
          <BurrPanel
            graph={graph.data}
            graphError={graph.error}
            activeAction={chat.activeAction}
            path={chat.path}
            streaming={streaming}
            project={project}
            appId={conversations.currentId}
            saved={!conversations.isNew}
            burrBase={config.burrBase}
            hasAnswers={chat.messages.some((m) => m.item.role === 'assistant')}
            awaitingApproval={chat.approvals.length > 0}
          />
          <SettingsPanel
            client={client}
            project={project}
            appId={conversations.currentId}
            editable={!streaming}
            onSaved={refreshConversations}
          />
        </aside>
      </div>
    </div>
  )
}
