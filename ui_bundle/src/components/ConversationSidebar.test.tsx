import { render, screen, within } from '@testing-library/react'
import userEvent from '@testing-library/user-event'
import { describe, expect, it, vi } from 'vitest'
import { ConversationSidebar } from './ConversationSidebar'
import type { ConversationSummary } from '../lib/types'

const c = (app_id: string, title: string, branch?: { root: string; parent: string; fork_at: number; parent_deleted?: boolean }): ConversationSummary => ({
  app_id,
  title,
  updated_at: null,
  root: branch?.root ?? null,
  parent: branch?.parent ?? null,
  fork_at: branch?.fork_at ?? null,
  parent_deleted: branch?.parent_deleted ?? false,
})

describe('ConversationSidebar', () => {
  it('lists the branches of a conversation indented under it, with where they branched', async () => {
    const onSelect = vi.fn()
    const user = userEvent.setup()
    render(
      <ConversationSidebar
        conversations={[
          c('B', 'Edited question', { root: 'R', parent: 'R', fork_at: 0 }),
          c('S', 'Other chat'),
          c('R', 'Original question'),
          c('C', 'Original question', { root: 'R', parent: 'B', fork_at: 3 }),
        ]}
        currentId="B"
        isNew={false}
        loading={false}
        error={null}
        onSelect={onSelect}
      />,
    )
    expect(screen.getAllByTestId('conversation-entry').map((e) => e.textContent)).toEqual(['Other chat', 'Original question'])
    const group = screen.getByRole('list', { name: 'Branches of Original question' })
    const branches = within(group).getAllByTestId('conversation-branch')
    expect(branches.map((b) => b.textContent)).toEqual(['Branch at message 1Edited question', 'Branch at message 4Original question'])
    expect(branches[0]).toHaveAttribute('aria-current', 'page')
    await user.click(branches[1]!)
    expect(onSelect).toHaveBeenCalledWith('C')
  })

  it('renames a conversation in place: Enter saves the trimmed title, Escape cancels, a failure is shown', async () => {
    const user = userEvent.setup()
    const onRename = vi.fn<(appId: string, title: string) => Promise<void>>()
    onRename.mockRejectedValueOnce(new Error('No such conversation.')).mockResolvedValue(undefined)
    render(
      <ConversationSidebar
        conversations={[c('S', 'Other chat'), c('R', 'Original question')]}
        currentId="S"
        isNew={false}
        loading={false}
        error={null}
        onSelect={vi.fn()}
        onRename={onRename}
      />,
    )
    await user.click(screen.getByRole('button', { name: 'Rename Original question' }))
    await user.keyboard('{Escape}')
    expect(screen.queryByRole('textbox', { name: 'New title' })).toBeNull()
    expect(onRename).not.toHaveBeenCalled()

    await user.click(screen.getByRole('button', { name: 'Rename Original question' }))
    const input = screen.getByRole('textbox', { name: 'New title' })
    expect(input).toHaveValue('Original question')
    await user.clear(input)
    await user.type(input, '   {Enter}')
    expect(onRename).not.toHaveBeenCalled() // (blank: nothing sent)
    await user.type(input, ' About Burr {Enter}')
    expect(onRename).toHaveBeenLastCalledWith('R', 'About Burr')
    expect(await screen.findByRole('alert')).toHaveTextContent('No such conversation.')
    await user.click(screen.getByRole('button', { name: 'Save' }))
    expect(onRename).toHaveBeenCalledTimes(2)
    expect(screen.queryByRole('textbox', { name: 'New title' })).toBeNull()
  })

  it('offers no rename without a way to save it', () => {
    render(<ConversationSidebar conversations={[c('S', 'Other chat')]} currentId="S" isNew={false} loading={false} error={null} onSelect={vi.fn()} />)
    expect(screen.queryByRole('button', { name: /Rename/ })).toBeNull()
  })

  it('deletes a conversation only once confirmed, shows a failure, and marks branches whose original was deleted', async () => {
    const user = userEvent.setup()
    const onDelete = vi.fn<(appId: string) => Promise<void>>()
    onDelete.mockRejectedValueOnce(new Error('The service is unavailable.')).mockResolvedValue(undefined)
    render(
      <ConversationSidebar
        conversations={[c('S', 'Other chat'), c('B', 'Kept branch', { root: 'R', parent: 'R', fork_at: 2, parent_deleted: true })]}
        currentId="S"
        isNew={false}
        loading={false}
        error={null}
        onSelect={vi.fn()}
        onDelete={onDelete}
      />,
    )
    expect(screen.getByTestId('conversation-branch')).toHaveTextContent('Branch at message 3 · original deleted')
    expect(screen.getAllByTestId('conversation-entry')[0]).not.toHaveTextContent('original deleted')

    await user.click(screen.getByRole('button', { name: 'Delete Other chat' }))
    const confirm = screen.getByRole('group', { name: 'Delete Other chat?' })
    await user.click(within(confirm).getByRole('button', { name: 'Cancel' }))
    expect(onDelete).not.toHaveBeenCalled()
    expect(screen.queryByRole('group', { name: 'Delete Other chat?' })).toBeNull()

    await user.click(screen.getByRole('button', { name: 'Delete Other chat' }))
    await user.keyboard('{Escape}')
    expect(screen.queryByRole('group', { name: 'Delete Other chat?' })).toBeNull()

    await user.click(screen.getByRole('button', { name: 'Delete Other chat' }))
    await user.click(within(screen.getByRole('group', { name: 'Delete Other chat?' })).getByRole('button', { name: 'Delete' }))
    expect(onDelete).toHaveBeenCalledWith('S')
    expect(await screen.findByRole('alert')).toHaveTextContent('The service is unavailable.')
    await user.click(within(screen.getByRole('group', { name: 'Delete Other chat?' })).getByRole('button', { name: 'Delete' }))
    expect(onDelete).toHaveBeenCalledTimes(2)
    expect(screen.queryByRole('group', { name: 'Delete Other chat?' })).toBeNull()
  })

  it('shows the search results instead of the list while there is a query, with More results when the page was full', async () => {
    const user = userEvent.setup()
    const onQuery = vi.fn()
    const onMore = vi.fn()
    const props = { currentId: 'S', isNew: false, loading: false, error: null, onSelect: vi.fn() }
    const search = { query: 'bur', onQuery, results: [c('R', 'About Burr')], searching: false, error: null, more: true, onMore }
    const { rerender } = render(<ConversationSidebar {...props} conversations={[c('S', 'Other chat'), c('R', 'About Burr')]} search={search} />)
    expect(screen.getByTestId('conversation-list')).not.toBeVisible()
    const results = screen.getByRole('list', { name: 'Search results' })
    expect(within(results).getAllByTestId('conversation-entry').map((e) => e.textContent)).toEqual(['About Burr'])
    expect(screen.getByRole('status')).toHaveTextContent('1+ found')
    await user.click(screen.getByRole('button', { name: 'More results' }))
    expect(onMore).toHaveBeenCalledOnce()
    await user.type(screen.getByRole('searchbox', { name: 'Search conversations' }), 'r')
    expect(onQuery).toHaveBeenLastCalledWith('burr')

    rerender(<ConversationSidebar {...props} conversations={[c('S', 'Other chat')]} search={{ ...search, results: [], more: false }} />)
    expect(screen.getByRole('status')).toHaveTextContent('No conversation matches.')
    expect(screen.queryByRole('button', { name: 'More results' })).toBeNull()
    rerender(<ConversationSidebar {...props} conversations={[c('S', 'Other chat')]} search={{ ...search, query: '', results: null }} />)
    expect(screen.getByTestId('conversation-list')).toBeVisible()
    expect(screen.queryByRole('list', { name: 'Search results' })).toBeNull()
  })
})
