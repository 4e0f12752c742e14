/** Runs a callback when the main thread is idle (or after `timeout` ms); returns a canceller. */
export function whenIdle(callback: () => void, timeout = 100): () => void {
  if (typeof requestIdleCallback === 'function') {
    const handle = requestIdleCallback(() => callback(), { timeout })
    return () => cancelIdleCallback(handle)
  }
  const handle = setTimeout(callback, 0)
  return () => clearTimeout(handle)
}
