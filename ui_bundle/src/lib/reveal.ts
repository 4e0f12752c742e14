// Many messages arriving at once (a conversation opened) are put on the page newest first, a
// slice at a time, so no single render and commit of the whole history holds up the page.

/** Which messages of a list are on the page: those from `start` on, of `count`. */
export interface Reveal {
  count: number
  start: number
}

/** More messages than this arriving at once are revealed in slices (fewer are shown at once). */
export const AT_ONCE = 12

/** How many of the newest messages are shown first when many arrive at once. */
export const FIRST_SLICE = 4

/** How many older messages each later step adds. */
export const SLICE = 6

/**
 * The messages shown once the list has `count` messages (it had `previous.count`): when many
 * arrive at once, none of them yet (revealMore brings them in).
 */
export function revealFor(previous: Reveal, count: number): Reveal {
  if (count === previous.count) return previous
  if (count - previous.count > AT_ONCE) return { count, start: count }
  return { count, start: Math.min(previous.start, count) }
}

/** One step: the newest FIRST_SLICE messages first, then a SLICE of older ones per step. */
export function revealMore(previous: Reveal): Reveal {
  const { count, start } = previous
  if (start === 0) return previous
  return { count, start: Math.max(0, start === count ? count - FIRST_SLICE : start - SLICE) }
}
