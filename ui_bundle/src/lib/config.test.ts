import { describe, expect, it } from 'vitest'
import { DEFAULT_CONFIG, readConfig } from './config'

describe('readConfig', () => {
  it('falls back to the defaults when nothing is injected (vite dev)', () => {
    expect(readConfig(undefined)).toEqual(DEFAULT_CONFIG)
    expect(DEFAULT_CONFIG.apiBase).toBe('/api/v0/streaming_chatbot')
    expect(DEFAULT_CONFIG.burrBase).toBe('')
  })

  it('uses the injected values, prefix included, without trailing slashes', () => {
    expect(readConfig({ apiBase: '/burr/api/v0/streaming_chatbot/', burrBase: '/burr/', name: 'streaming-chatbot' })).toEqual({
      apiBase: '/burr/api/v0/streaming_chatbot',
      burrBase: '/burr',
      name: 'streaming-chatbot',
    })
  })

  it('ignores values of the wrong type', () => {
    expect(readConfig({ apiBase: 42, burrBase: null })).toEqual(DEFAULT_CONFIG)
  })
})
