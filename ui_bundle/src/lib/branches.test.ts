import { describe, expect, it } from 'vitest'
import { groupByRoot, ownerOf, siblingsAt, type BranchNode } from './branches'

const root = (app_id: string): BranchNode => ({ app_id, parent: null, fork_at: null })
const fork = (app_id: string, parent: string, fork_at: number): BranchNode => ({ app_id, parent, fork_at })

describe('siblingsAt', () => {
  it('a conversation without branches has no alternatives', () => {
    expect(siblingsAt([root('R')], 'R', 0)).toBeNull()
    expect(siblingsAt([root('R')], 'R', 3)).toBeNull()
  })

  it('an edited first message: the original and the branch, both ways, and nothing after', () => {
    // R: u0 a1 u2 a3 u4 a5; B = edit of u0: u0' a1'
    const tree = [root('R'), fork('B', 'R', 0)]
    expect(siblingsAt(tree, 'B', 0)).toEqual({ ids: ['R', 'B'], position: 1 })
    expect(siblingsAt(tree, 'R', 0)).toEqual({ ids: ['R', 'B'], position: 0 })
    // B's own answer and R's later messages have no alternative.
    expect(siblingsAt(tree, 'B', 1)).toBeNull()
    expect(siblingsAt(tree, 'R', 1)).toBeNull()
    expect(siblingsAt(tree, 'R', 4)).toBeNull()
  })

  it('a regenerated answer is an alternative at its own index, not at its prompt', () => {
    // R: u0 a1 u2 a3; B = regenerate a3 (fork at 3): u0 a1 u2 a3'
    const tree = [root('R'), fork('B', 'R', 3)]
    expect(siblingsAt(tree, 'B', 3)).toEqual({ ids: ['R', 'B'], position: 1 })
    expect(siblingsAt(tree, 'R', 3)).toEqual({ ids: ['R', 'B'], position: 0 })
    for (const i of [0, 1, 2, 4]) {
      expect(siblingsAt(tree, 'B', i)).toBeNull()
      expect(siblingsAt(tree, 'R', i)).toBeNull()
    }
  })

  it('several forks at one message, in creation order', () => {
    const tree = [root('R'), fork('B', 'R', 2), fork('C', 'R', 2), fork('D', 'R', 4)]
    expect(siblingsAt(tree, 'C', 2)).toEqual({ ids: ['R', 'B', 'C'], position: 2 })
    expect(siblingsAt(tree, 'D', 2)).toEqual({ ids: ['R', 'B', 'C'], position: 0 }) // D shows R's message 2
    expect(siblingsAt(tree, 'D', 4)).toEqual({ ids: ['R', 'D'], position: 1 })
    expect(siblingsAt(tree, 'B', 4)).toBeNull() // B's message 4 is its own: R's and D's differ before it
  })

  it('nested forks: a fork of a fork at the same message is one more alternative there', () => {
    // B edits R's message 2; C edits B's message 2 again (forked from B at 2).
    const tree = [root('R'), fork('B', 'R', 2), fork('C', 'B', 2)]
    expect(siblingsAt(tree, 'C', 2)).toEqual({ ids: ['R', 'B', 'C'], position: 2 })
    expect(siblingsAt(tree, 'R', 2)).toEqual({ ids: ['R', 'B', 'C'], position: 0 })
    expect(siblingsAt(tree, 'C', 0)).toBeNull()
  })

  it('nested forks: a fork of a branch, earlier than the branch point, offers the message it inherited', () => {
    // B forked from R at 4 (B: R's 0-3, then its own); C forked from B at 2: C's message 2 is an
    // alternative to R's message 2, which B shows too (one alternative, named by its owner R).
    const tree = [root('R'), fork('B', 'R', 4), fork('C', 'B', 2)]
    expect(siblingsAt(tree, 'C', 2)).toEqual({ ids: ['R', 'C'], position: 1 })
    expect(siblingsAt(tree, 'B', 2)).toEqual({ ids: ['R', 'C'], position: 0 })
    expect(siblingsAt(tree, 'R', 2)).toEqual({ ids: ['R', 'C'], position: 0 })
    expect(siblingsAt(tree, 'B', 4)).toEqual({ ids: ['R', 'B'], position: 1 })
    expect(siblingsAt(tree, 'C', 4)).toBeNull() // C's message 4 follows its own message 2
  })

  it('nested forks: deeper in a branch, only the conversations that share the messages before', () => {
    // B edits R's message 0; C and D fork B at 2; E forks R at 2.
    const tree = [root('R'), fork('B', 'R', 0), fork('C', 'B', 2), fork('E', 'R', 2), fork('D', 'B', 2)]
    expect(siblingsAt(tree, 'D', 2)).toEqual({ ids: ['B', 'C', 'D'], position: 2 })
    expect(siblingsAt(tree, 'E', 2)).toEqual({ ids: ['R', 'E'], position: 1 })
    expect(siblingsAt(tree, 'C', 0)).toEqual({ ids: ['R', 'B'], position: 1 }) // C shows B's first message
    expect(siblingsAt(tree, 'E', 0)).toEqual({ ids: ['R', 'B'], position: 0 })
    expect(siblingsAt(tree, 'C', 1)).toBeNull()
  })

  it('is null for a conversation not in the tree, a negative index, and survives a broken tree', () => {
    expect(siblingsAt([root('R'), fork('B', 'R', 0)], 'X', 0)).toBeNull()
    expect(siblingsAt([root('R'), fork('B', 'R', 0)], 'B', -1)).toBeNull()
    // A parent missing from the tree: the branch counts as owning its messages.
    expect(siblingsAt([root('R'), fork('B', 'gone', 1)], 'B', 0)).toEqual({ ids: ['R', 'B'], position: 1 })
    // A cycle does not hang.
    expect(ownerOf(new Map([['A', fork('A', 'B', 5)], ['B', fork('B', 'A', 5)]]), 'A', 0)).toMatch(/^[AB]$/)
  })
})

describe('groupByRoot', () => {
  const c = (app_id: string, rootId: string | null = null) => ({ app_id, root: rootId, parent: rootId, fork_at: rootId ? 0 : null })

  it('puts each branch under its root, keeping the list order', () => {
    const groups = groupByRoot([c('B2', 'R'), c('S'), c('R'), c('B1', 'R'), c('T2', 'S')])
    expect(groups.map((g) => [g.conversation.app_id, g.branches.map((b) => b.app_id)])).toEqual([
      ['S', ['T2']],
      ['R', ['B2', 'B1']],
    ])
  })

  it('shows a branch whose root is not listed on its own', () => {
    expect(groupByRoot([c('B', 'gone')]).map((g) => g.conversation.app_id)).toEqual(['B'])
  })
})
