import { act } from '@testing-library/react'

/**
 * Waits until `check` passes, letting timers and idle callbacks run inside act() (so the state
 * updates they make are applied as React would, without warnings).
 */
export async function waitInAct(check: () => void, timeout = 2000): Promise<void> {
  const deadline = Date.now() + timeout
  for (;;) {
    await act(async () => {
      await new Promise((resolve) => setTimeout(resolve, 10))
    })
    try {
      check()
      return
    } catch (error) {
      if (Date.now() > deadline) throw error
    }
  }
}
