/** Runs a callback later; returns a function that cancels it. */
export type Schedule = (callback: () => void) => () => void

/** How long a hidden tab (no animation frames) waits at most for a flush. */
const HIDDEN_FALLBACK_MS = 100

/** The next animation frame, or a timer when the page gets no frames (a hidden tab, no DOM). */
export const nextFrame: Schedule = (callback) => {
  let done = false
  const run = () => {
    if (done) return
    done = true
    cancel()
    callback()
  }
  const timer = setTimeout(run, typeof requestAnimationFrame === 'function' ? HIDDEN_FALLBACK_MS : 16)
  const frame = typeof requestAnimationFrame === 'function' ? requestAnimationFrame(run) : null
  const cancel = () => {
    done = true
    clearTimeout(timer)
    if (frame !== null) cancelAnimationFrame(frame)
  }
  return cancel
}

export interface TextBatcher {
  /** Adds text; it is handed on at the next scheduled flush, joined with what came before. */
  push(text: string): void
  /** Hands on what is pending now (before an event that must follow it). */
  flush(): void
  /** Drops what is pending. */
  cancel(): void
}

/**
 * Joins pieces of text that arrive between two frames into one, so a stream of many small
 * deltas costs at most one state update (and one render) per frame.
 */
export function createTextBatcher(onFlush: (text: string) => void, schedule: Schedule = nextFrame): TextBatcher {
  let pending = ''
  let cancelScheduled: (() => void) | null = null

  const flush = () => {
    cancelScheduled?.()
    cancelScheduled = null
    if (!pending) return
    const text = pending
    pending = ''
    onFlush(text)
  }

  return {
    push(text) {
      if (!text) return
      pending += text
      cancelScheduled ??= schedule(flush)
    },
    flush,
    cancel() {
      cancelScheduled?.()
      cancelScheduled = null
      pending = ''
    },
  }
}
