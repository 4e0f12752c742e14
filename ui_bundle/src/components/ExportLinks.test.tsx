import { render, screen } from '@testing-library/react'
import { describe, expect, it } from 'vitest'
import { ApiClient } from '../lib/api'
import { ExportLinks } from './ExportLinks'

describe('ExportLinks', () => {
  it('links to GET /export of the conversation in each format, as downloads', () => {
    const client = new ApiClient({ apiBase: '/api/v0/streaming_chatbot' })
    render(<ExportLinks markdownUrl={client.exportUrl('proj', 'chat 1', 'markdown')} jsonUrl={client.exportUrl('proj', 'chat 1', 'json')} />)
    const markdown = screen.getByRole('link', { name: 'Markdown' })
    expect(markdown).toHaveAttribute('href', '/api/v0/streaming_chatbot/export/proj/chat%201?format=markdown')
    expect(markdown).toHaveAttribute('download')
    expect(screen.getByRole('link', { name: 'JSON' })).toHaveAttribute('href', '/api/v0/streaming_chatbot/export/proj/chat%201?format=json')
  })
})
