import { afterEach, describe, expect, it, vi } from 'vitest'
import type { paths } from './api-types'
import { readConfig } from './config'

// What the page does with what the server injects into index.html (`window.__BURR_DEMO__`), and
// how the result ends up in the URLs it requests. The expected values are written out, not read
// from DEFAULT_CONFIG: a test comparing the module with itself could not fail.

const API = '/api/v0/streaming_chatbot'

describe('readConfig', () => {
  it.each([
    ['nothing injected (vite dev)', undefined],
    ['null', null],
    ['a string', '/burr'],
    ['a number', 7],
    ['an empty object', {}],
  ])('without usable values (%s), the page talks to the API at the root', (_, injected) => {
    expect(readConfig(injected)).toEqual({ apiBase: API, burrBase: '', name: 'streaming-chatbot' })
  })

  it('keeps a sub-path prefix and drops trailing slashes, however many', () => {
    expect(readConfig({ apiBase: '/burr/api/v0/streaming_chatbot//', burrBase: '/burr///', name: 'bot' })).toEqual({
      apiBase: '/burr/api/v0/streaming_chatbot',
      burrBase: '/burr',
      name: 'bot',
    })
  })

  it('keeps an absolute URL (another origin) as given, without its trailing slash', () => {
    expect(readConfig({ apiBase: 'https://chat.example.com/api/v0/streaming_chatbot/' }).apiBase).toBe(
      'https://chat.example.com/api/v0/streaming_chatbot',
    )
  })

  it('fills in what a partial injection leaves out, keeping what it gives', () => {
    expect(readConfig({ burrBase: '/burr/' })).toEqual({ apiBase: API, burrBase: '/burr', name: 'streaming-chatbot' })
    expect(readConfig({ apiBase: '/x/api/' })).toEqual({ apiBase: '/x/api', burrBase: '', name: 'streaming-chatbot' })
  })

  it('turns a burrBase of "/" into the root (""), so links do not start with "//"', () => {
    // "//projects" would be a protocol-relative URL to a host called "projects".
    expect(readConfig({ burrBase: '/' }).burrBase).toBe('')
    expect(readConfig({ burrBase: '' }).burrBase).toBe('')
  })

  it('never leaves the API base empty: "" or "/" fall back to the default API path', () => {
    expect(readConfig({ apiBase: '' }).apiBase).toBe(API)
    expect(readConfig({ apiBase: '///' }).apiBase).toBe(API)
  })

  it('ignores a value of the wrong type, key by key, keeping the valid ones', () => {
    expect(readConfig({ apiBase: 42, burrBase: '/burr', name: ['x'] })).toEqual({
      apiBase: API,
      burrBase: '/burr',
      name: 'streaming-chatbot',
    })
    expect(readConfig({ apiBase: '/p/api', burrBase: null, name: { toString: () => 'x' } })).toEqual({
      apiBase: '/p/api',
      burrBase: '',
      name: 'streaming-chatbot',
    })
  })

  it('reads window.__BURR_DEMO__ when called without an argument', () => {
    window.__BURR_DEMO__ = { apiBase: '/from-window/api/', burrBase: '/from-window/' }
    try {
      expect(readConfig()).toEqual({ apiBase: '/from-window/api', burrBase: '/from-window', name: 'streaming-chatbot' })
    } finally {
      delete window.__BURR_DEMO__
    }
  })
})

describe('the URLs the page requests', () => {
  afterEach(() => {
    delete window.__BURR_DEMO__
    vi.resetModules()
  })

  /** The API and stream modules as the page loads them, after the server injected `injected`. */
  async function loadPageWith(injected: unknown) {
    ;(window as { __BURR_DEMO__?: unknown }).__BURR_DEMO__ = injected
    vi.resetModules()
    const { api } = await import('./api')
    const { resumeChat } = await import('./stream')
    return { api, resumeChat }
  }

  function recordingFetch(body: unknown = {}) {
    const urls: string[] = []
    const fetchImpl = vi.fn(async (input: RequestInfo | URL) => {
      urls.push(String(input))
      return new Response(JSON.stringify(body), { status: 200, headers: { 'Content-Type': 'application/json' } })
    })
    return { urls, fetchImpl: fetchImpl as unknown as typeof fetch }
  }

  it('puts the injected prefix in front of every API path, with no doubled slash', async () => {
    const { api } = await loadPageWith({ apiBase: '/burr/api/v0/streaming_chatbot/' })
    const { urls, fetchImpl } = recordingFetch([])
    await api.model({ fetchImpl })
    await api.conversations('demo', { fetchImpl })
    expect(urls).toEqual(['/burr/api/v0/streaming_chatbot/model', '/burr/api/v0/streaming_chatbot/conversations/demo'])
  })

  it('requests a path the server serves when nothing is injected (vite dev, proxied)', async () => {
    // Typed against the server's OpenAPI paths: `npm run lint` fails if the server moves it.
    const served: keyof paths = '/api/v0/streaming_chatbot/graph'
    const { api } = await loadPageWith(undefined)
    const { urls, fetchImpl } = recordingFetch()
    await api.graph({ fetchImpl })
    expect(urls).toEqual([served])
  })

  it('escapes the project and conversation ids as path segments under the prefix', async () => {
    const { api } = await loadPageWith({ apiBase: '/p/api/' })
    const { urls, fetchImpl } = recordingFetch([])
    await api.history('my project', 'a/b?c#d', { fetchImpl })
    expect(urls).toEqual(['/p/api/history/my%20project/a%2Fb%3Fc%23d'])
  })

  it('lets an explicit apiBase (App passes its config) win over the injected one', async () => {
    const { api } = await loadPageWith({ apiBase: '/injected/api' })
    const { urls, fetchImpl } = recordingFetch()
    await api.model({ apiBase: '/explicit/api', fetchImpl })
    expect(urls).toEqual(['/explicit/api/model'])
  })

  it('reattaches to a streaming answer under the injected prefix too', async () => {
    const { resumeChat } = await loadPageWith({ apiBase: '/burr/api/v0/streaming_chatbot/' })
    const urls: string[] = []
    const fetchImpl = vi.fn(async (input: RequestInfo | URL) => {
      urls.push(String(input))
      return new Response('', { status: 200, headers: { 'Content-Type': 'text/event-stream' } })
    })
    await resumeChat({ project: 'demo', appId: 'c1', onEvent: () => {}, fetchImpl: fetchImpl as unknown as typeof fetch })
    expect(urls).toEqual(['/burr/api/v0/streaming_chatbot/stream/demo/c1'])
  })
})
