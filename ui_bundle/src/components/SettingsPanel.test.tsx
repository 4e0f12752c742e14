import { render, screen, waitFor } from '@testing-library/react'
import userEvent from '@testing-library/user-event'
import { describe, expect, it } from 'vitest'
import { ApiClient } from '../lib/api'
import { fakeFetch, jsonResponse } from '../test/sse'
import { SettingsPanel } from './SettingsPanel'

const models = { models: ['model-a', 'model-b'], default: 'answer-model', source: 'server' }

describe('SettingsPanel', () => {
  it("shows the conversation's settings and saves a change with PATCH", async () => {
    const { fetch, calls } = fakeFetch({
      'GET /models': () => jsonResponse(models),
      'GET /settings/p/c1': () => jsonResponse({ model: 'model-a', system_prompt: 'Be brief.', temperature: null }),
      'PATCH /settings/p/c1': (init) => jsonResponse(JSON.parse(String(init?.body))),
    })
    let saved = 0
    render(
      <SettingsPanel client={new ApiClient({ apiBase: '/api/v0/streaming_chatbot', fetchImpl: fetch })} project="p" appId="c1" editable onSaved={() => saved++} />,
    )
    const user = userEvent.setup()
    await user.click(screen.getByText('Conversation settings', { selector: 'summary' }))
    const model = await screen.findByRole('combobox', { name: 'Model' })
    expect(model).toHaveValue('model-a')
    expect(screen.getByRole('option', { name: 'Default (answer-model)' })).toBeInTheDocument()
    expect(screen.getByRole('textbox', { name: 'System prompt' })).toHaveValue('Be brief.')

    await user.selectOptions(model, 'model-b')
    await user.type(screen.getByRole('spinbutton', { name: 'Temperature (0 to 2)' }), '0.5')
    await user.click(screen.getByRole('button', { name: 'Save settings' }))
    expect(await screen.findByRole('status')).toHaveTextContent('Saved')
    const patch = calls.find((c) => c.method === 'PATCH')
    expect(patch?.body).toEqual({ model: 'model-b', system_prompt: 'Be brief.', temperature: 0.5 })
    expect(saved).toBe(1)
  })

  it("says why the server refused a change, and is read-only while an answer streams", async () => {
    const { fetch } = fakeFetch({
      'GET /models': () => jsonResponse(models),
      'GET /settings/p/c2': () => jsonResponse({ model: null, system_prompt: null, temperature: null }),
      'PATCH /settings/p/c2': () => jsonResponse({ detail: 'The system prompt has 9000 characters; the limit is 8000.' }, 422),
    })
    const client = new ApiClient({ apiBase: '/api/v0/streaming_chatbot', fetchImpl: fetch })
    const { rerender } = render(<SettingsPanel client={client} project="p" appId="c2" editable />)
    const user = userEvent.setup()
    await user.click(screen.getByText('Conversation settings', { selector: 'summary' }))
    await user.type(await screen.findByRole('textbox', { name: 'System prompt' }), 'Long.')
    await user.click(screen.getByRole('button', { name: 'Save settings' }))
    expect(await screen.findByRole('alert')).toHaveTextContent('the limit is 8000')

    rerender(<SettingsPanel client={client} project="p" appId="c2" editable={false} />)
    await waitFor(() => expect(screen.getByRole('button', { name: 'Save settings' })).toBeDisabled())
  })
})
