import { render, screen } from '@testing-library/react'
import { describe, expect, it } from 'vitest'
import { OfflineBanner } from './OfflineBanner'
import type { ModelInfo } from '../lib/types'

const base: ModelInfo = {
  offline: true,
  router_model: 'offline-router',
  answer_model: 'offline-demo',
  base_url: null,
  project_id: 'demo_streaming_chatbot',
  help: 'Set OPENAI_API_KEY to use a real model.',
}

describe('OfflineBanner', () => {
  it('shows the server help when the offline model answers', () => {
    render(<OfflineBanner model={base} />)
    const banner = screen.getByTestId('offline-banner')
    expect(banner).toHaveTextContent(/offline/i)
    expect(banner).toHaveTextContent('Set OPENAI_API_KEY to use a real model.')
  })

  it('shows nothing with a real model or before /model answers', () => {
    const { rerender } = render(<OfflineBanner model={{ ...base, offline: false, help: null }} />)
    expect(screen.queryByTestId('offline-banner')).toBeNull()
    rerender(<OfflineBanner model={null} />)
    expect(screen.queryByTestId('offline-banner')).toBeNull()
  })
})
