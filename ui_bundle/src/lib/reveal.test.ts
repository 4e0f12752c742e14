import { describe, expect, it } from 'vitest'
import { AT_ONCE, FIRST_SLICE, revealFor, revealMore, SLICE, type Reveal } from './reveal'

const none: Reveal = { count: 0, start: 0 }

describe('revealFor', () => {
  it('shows a few messages at once', () => {
    expect(revealFor(none, AT_ONCE)).toEqual({ count: AT_ONCE, start: 0 })
  })

  it('shows none of many messages arriving at once, then the newest first', () => {
    const arrived = revealFor(none, 100)
    expect(arrived).toEqual({ count: 100, start: 100 })
    expect(revealMore(arrived)).toEqual({ count: 100, start: 100 - FIRST_SLICE })
  })

  it('keeps what is shown when a turn is added, revealed or not', () => {
    expect(revealFor({ count: 100, start: 0 }, 102)).toEqual({ count: 102, start: 0 })
    expect(revealFor({ count: 100, start: 40 }, 101)).toEqual({ count: 101, start: 40 })
  })

  it('starts again for another conversation', () => {
    const cleared = revealFor({ count: 100, start: 0 }, 0)
    expect(cleared).toEqual({ count: 0, start: 0 })
    expect(revealFor(cleared, 60)).toEqual({ count: 60, start: 60 })
  })

  it('never starts past the end when messages go away', () => {
    expect(revealFor({ count: 100, start: 90 }, 50)).toEqual({ count: 50, start: 50 })
  })

  it('returns the same object when nothing changed', () => {
    const shown = { count: 10, start: 2 }
    expect(revealFor(shown, 10)).toBe(shown)
  })
})

describe('revealMore', () => {
  it('adds a slice of older messages until all are shown', () => {
    let shown = revealFor(none, 100)
    const starts = [shown.start]
    while (shown.start > 0) {
      shown = revealMore(shown)
      starts.push(shown.start)
    }
    expect(starts.slice(0, 3)).toEqual([100, 100 - FIRST_SLICE, 100 - FIRST_SLICE - SLICE])
    expect(starts.at(-1)).toBe(0)
    expect(starts.length).toBe(2 + Math.ceil((100 - FIRST_SLICE) / SLICE))
  })

  it('does nothing once everything is shown', () => {
    const all = { count: 5, start: 0 }
    expect(revealMore(all)).toBe(all)
  })
})
