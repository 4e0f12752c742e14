import { render, screen } from '@testing-library/react'
import userEvent from '@testing-library/user-event'
import { describe, expect, it, vi } from 'vitest'
import { Composer } from './Composer'

function setup(props: Partial<Parameters<typeof Composer>[0]> = {}) {
  const onSend = vi.fn((_text: string) => true)
  const onStop = vi.fn()
  render(<Composer onSend={onSend} onStop={onStop} streaming={false} {...props} />)
  return { onSend, onStop, box: screen.getByRole('textbox', { name: 'Message' }), user: userEvent.setup() }
}

describe('Composer', () => {
  it('sends on Enter and clears the box', async () => {
    const { onSend, box, user } = setup()
    await user.type(box, 'Hello there{Enter}')
    expect(onSend).toHaveBeenCalledTimes(1)
    expect(onSend).toHaveBeenCalledWith('Hello there')
    expect(box).toHaveValue('')
  })

  it('adds a new line on Shift+Enter without sending', async () => {
    const { onSend, box, user } = setup()
    await user.type(box, 'line one{Shift>}{Enter}{/Shift}line two')
    expect(onSend).not.toHaveBeenCalled()
    expect(box).toHaveValue('line one\nline two')
    await user.click(screen.getByRole('button', { name: 'Send' }))
    expect(onSend).toHaveBeenCalledWith('line one\nline two')
  })

  it('does not send blank text', async () => {
    const { onSend, box, user } = setup()
    await user.type(box, '   {Enter}')
    expect(onSend).not.toHaveBeenCalled()
    expect(screen.getByRole('button', { name: 'Send' })).toBeDisabled()
  })

  it('while streaming: Stop, and a prompt can still be sent (it interrupts the answer)', async () => {
    const { onSend, onStop, box, user } = setup({ streaming: true })
    expect(screen.queryByRole('button', { name: 'Send' })).toBeNull() // nothing to send yet
    expect(box).toBeEnabled()
    await user.type(box, 'next question')
    expect(screen.getByRole('button', { name: 'Send' })).toBeEnabled()
    expect(screen.getByRole('button', { name: 'Stop' })).toBeInTheDocument()
    await user.type(box, '{Enter}')
    expect(onSend).toHaveBeenCalledWith('next question')
    expect(box).toHaveValue('')
    await user.click(screen.getByRole('button', { name: 'Stop' }))
    expect(onStop).toHaveBeenCalledTimes(1)
  })

  it('keeps the text when the send was refused', async () => {
    const { onSend, box, user } = setup()
    onSend.mockReturnValueOnce(false)
    await user.type(box, 'keep me{Enter}')
    expect(box).toHaveValue('keep me')
  })
})
