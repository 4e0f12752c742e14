/**
 * Branches of a conversation, from the user's side.
 *
 * Editing a message or regenerating an answer makes a new conversation (a Burr fork) that
 * shares the messages before that point with the conversation it was forked from. The
 * conversations forked from one another form a tree (`GET /branches`): each branch names its
 * `parent` and `fork_at`, the index of its first message of its own (it shares messages
 * `[0, fork_at)` with its parent). A root has neither.
 *
 * Who wrote a message: message `i` of conversation C is C's own when `i >= fork_at` (or C is a
 * root), else it is its parent's message `i`, and so on up the tree. That conversation is the
 * message's *owner*: two conversations show the same message `i` exactly when it has the same
 * owner.
 *
 * The alternatives at message `i` of the conversation being read (what the `‹ 2 / 3 ›` switcher
 * steps through) are the different messages `i` of every conversation of the tree that shows the
 * same messages before `i`; each alternative is named by its owner, the conversation the switcher
 * opens. They come in creation order (the tree's order), so the original comes first.
 */

/** What this module reads of a conversation of the tree (a `ConversationSummary`). */
export interface BranchNode {
  app_id: string
  parent?: string | null | undefined
  fork_at?: number | null | undefined
}

/** The alternatives at one message: the owners' ids in creation order, and which one is shown. */
export interface Siblings {
  ids: string[]
  /** The index in `ids` of the alternative the current conversation shows. */
  position: number
}

/** The conversation that wrote message `index` of `id` (see the module's comment). */
export function ownerOf(byId: ReadonlyMap<string, BranchNode>, id: string, index: number): string {
  let at = id
  const seen = new Set<string>()
  for (;;) {
    const node = byId.get(at)
    if (!node || seen.has(at)) return at // not in the tree (or a cycle): it owns its messages
    seen.add(at)
    const parent = node.parent ?? null
    if (parent === null || !byId.has(parent) || index >= (node.fork_at ?? 0)) return at
    at = parent
  }
}

/**
 * The alternatives at message `index` of conversation `currentId`, or null when there is only
 * the one it shows (or the tree does not hold `currentId`).
 *
 * `branches` is the tree in creation order (`GET /branches`: the root first). A conversation
 * shares messages `[0, index)` with the current one when its message `index - 1` has the same
 * owner (every conversation shares the empty prefix); its message `index` is then an
 * alternative, named by that message's owner.
 */
export function siblingsAt(branches: readonly BranchNode[], currentId: string, index: number): Siblings | null {
  if (index < 0 || !Number.isInteger(index)) return null
  const byId = new Map(branches.map((b) => [b.app_id, b]))
  if (!byId.has(currentId)) return null
  const prefix = index === 0 ? null : ownerOf(byId, currentId, index - 1)
  const owners = new Set<string>()
  for (const branch of branches) {
    if (prefix !== null && ownerOf(byId, branch.app_id, index - 1) !== prefix) continue
    owners.add(ownerOf(byId, branch.app_id, index))
  }
  const order = new Map(branches.map((b, i) => [b.app_id, i]))
  const ids = [...owners].sort((a, b) => (order.get(a) ?? 0) - (order.get(b) ?? 0))
  if (ids.length < 2) return null
  return { ids, position: ids.indexOf(ownerOf(byId, currentId, index)) }
}

/** One entry of the conversation list: a root, with the branches of its tree under it. */
export interface ConversationGroup<T extends BranchNode> {
  conversation: T
  branches: T[]
}

/**
 * The conversation list grouped by tree: each root (in the list's order) with the branches whose
 * `root` is it, in the list's order. A branch whose root is not in the list is shown on its own.
 */
export function groupByRoot<T extends BranchNode & { root?: string | null | undefined }>(list: readonly T[]): ConversationGroup<T>[] {
  const ids = new Set(list.map((c) => c.app_id))
  const under = new Map<string, T[]>()
  for (const c of list) {
    const root = c.root ?? null
    if (root !== null && root !== c.app_id && ids.has(root)) {
      const group = under.get(root)
      if (group) group.push(c)
      else under.set(root, [c])
    }
  }
  const groups: ConversationGroup<T>[] = []
  for (const c of list) {
    const root = c.root ?? null
    if (root !== null && root !== c.app_id && ids.has(root)) continue
    groups.push({ conversation: c, branches: under.get(c.app_id) ?? [] })
  }
  return groups
}
