import { act, renderHook, waitFor } from '@testing-library/react'
import { describe, expect, it, vi } from 'vitest'
import { useResource } from './useResource'

describe('useResource', () => {
  it('asks for its resource in a task of its own, not in the effects of the render that mounts it', async () => {
    const load = vi.fn((signal: AbortSignal) => {
      void signal
      return Promise.resolve('the data')
    })
    const { result } = renderHook(() => useResource(load))
    // renderHook flushes the render's effects: nothing asked yet.
    expect(load).not.toHaveBeenCalled()
    expect(result.current.loading).toBe(true)
    await waitFor(() => expect(result.current.data).toBe('the data'))
    expect(load).toHaveBeenCalledTimes(1)
    expect(result.current.loading).toBe(false)
  })

  it('asks nothing when unmounted before its task runs', async () => {
    const load = vi.fn(() => Promise.resolve('the data'))
    const { unmount } = renderHook(() => useResource(load))
    unmount()
    await act(() => new Promise((resolve) => setTimeout(resolve, 10)))
    expect(load).not.toHaveBeenCalled()
  })
})
