/** Where the page finds its API and Burr's UI. The server injects `window.__BURR_DEMO__` into
 * index.html before the page's scripts; `vite dev` has no injection, so defaults apply. */
export interface DemoConfig {
  /** The chatbot API, including any sub-path prefix, without a trailing slash. */
  apiBase: string
  /** Burr's UI root, including any sub-path prefix, without a trailing slash ("" at the root). */
  burrBase: string
  name: string
}

declare global {
  interface Window {
    __BURR_DEMO__?: Partial<DemoConfig>
  }
}

export const DEFAULT_CONFIG: DemoConfig = {
  apiBase: '/api/v0/streaming_chatbot',
  burrBase: '',
  name: 'streaming-chatbot',
}

function trimSlash(value: string): string {
  return value.replace(/\/+$/, '')
}

export function readConfig(injected: unknown = typeof window === 'undefined' ? undefined : window.__BURR_DEMO__): DemoConfig {
  const raw = (injected && typeof injected === 'object' ? injected : {}) as Record<string, unknown>
  const pick = (key: keyof DemoConfig): string => {
    const value = raw[key]
    return typeof value === 'string' ? value : DEFAULT_CONFIG[key]
  }
  return {
    apiBase: trimSlash(pick('apiBase')) || DEFAULT_CONFIG.apiBase,
    burrBase: trimSlash(pick('burrBase')),
    name: pick('name'),
  }
}

export const config: DemoConfig = readConfig()
