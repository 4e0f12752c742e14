import { afterEach, describe, expect, it, vi } from 'vitest'
import { createTextBatcher, nextFrame, type Schedule } from './frameBatcher'

/** A scheduler the test runs by hand. */
function manual() {
  const pending: (() => void)[] = []
  const schedule: Schedule = (callback) => {
    pending.push(callback)
    return () => {
      const index = pending.indexOf(callback)
      if (index !== -1) pending.splice(index, 1)
    }
  }
  return {
    schedule,
    get count() {
      return pending.length
    },
    run() {
      for (const callback of pending.splice(0)) callback()
    },
  }
}

describe('createTextBatcher', () => {
  it('hands on the pieces of one frame joined, once', () => {
    const frames = manual()
    const flushed: string[] = []
    const batcher = createTextBatcher((text) => flushed.push(text), frames.schedule)
    for (const piece of ['Hel', 'lo', ', ', 'world']) batcher.push(piece)
    expect(flushed).toEqual([])
    expect(frames.count).toBe(1) // one frame asked for, not one per piece
    frames.run()
    expect(flushed).toEqual(['Hello, world'])
    batcher.push('!')
    frames.run()
    expect(flushed).toEqual(['Hello, world', '!'])
  })

  it('flush() hands on at once and cancels the frame; cancel() drops what waits', () => {
    const frames = manual()
    const flushed: string[] = []
    const batcher = createTextBatcher((text) => flushed.push(text), frames.schedule)
    batcher.push('a')
    batcher.push('b')
    batcher.flush()
    expect(flushed).toEqual(['ab'])
    expect(frames.count).toBe(0)
    batcher.flush() // nothing waiting: nothing handed on
    batcher.push('c')
    batcher.cancel()
    frames.run()
    expect(flushed).toEqual(['ab'])
    batcher.push('') // empty pieces ask for no frame
    expect(frames.count).toBe(0)
  })
})

describe('nextFrame', () => {
  afterEach(() => {
    vi.unstubAllGlobals()
    vi.useRealTimers()
  })

  it('runs on the next animation frame, once, even when its fallback timer fires too', () => {
    vi.useFakeTimers()
    let frame: FrameRequestCallback | null = null
    vi.stubGlobal('requestAnimationFrame', (callback: FrameRequestCallback) => {
      frame = callback
      return 1
    })
    vi.stubGlobal('cancelAnimationFrame', () => {
      frame = null
    })
    const callback = vi.fn()
    nextFrame(callback)
    expect(callback).not.toHaveBeenCalled()
    const pending = frame as FrameRequestCallback | null
    pending?.(0)
    expect(callback).toHaveBeenCalledTimes(1)
    vi.advanceTimersByTime(1000)
    expect(callback).toHaveBeenCalledTimes(1)
  })

  it('falls back to a timer when no frame comes (a hidden tab), and can be cancelled', () => {
    vi.useFakeTimers()
    vi.stubGlobal('requestAnimationFrame', () => 1)
    vi.stubGlobal('cancelAnimationFrame', () => undefined)
    const ran = vi.fn()
    nextFrame(ran)
    vi.advanceTimersByTime(150)
    expect(ran).toHaveBeenCalledTimes(1)
    const cancelled = vi.fn()
    nextFrame(cancelled)()
    vi.advanceTimersByTime(150)
    expect(cancelled).not.toHaveBeenCalled()
  })
})
