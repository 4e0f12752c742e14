/// <reference types="vitest/config" />
import { defineConfig } from 'vite'
import react from '@vitejs/plugin-react'
import tailwindcss from '@tailwindcss/vite'
import { fileURLToPath } from 'node:url'
import type { Plugin } from 'vite'

// The markdown parser decodes character references with decode-named-character-reference, whose
// "browser" build uses `document`, which a worker lacks. The worker gets its plain build (the one
// Node resolves to), with the table of entities.
const entitiesWithoutDom = fileURLToPath(import.meta.resolve('decode-named-character-reference'))

// React (src/boot.tsx) and the app (src/App.tsx) are chunks of their own that the page's first
// script imports dynamically (main.tsx, then boot.tsx), so the browser evaluates each in a task
// of its own. index.html preloads them (and the chunks they import) with the first script, so
// they are fetched and compiled while it runs, not one after the other.
const PRELOADED = ['/src/boot.tsx', '/src/App.tsx']

function preloadChunks(): Plugin {
  return {
    name: 'preload-chunks',
    apply: 'build',
    transformIndexHtml: {
      order: 'post',
      handler(html, { bundle }) {
        const chunks = Object.values(bundle ?? {}).flatMap((chunk) => (chunk.type === 'chunk' ? [chunk] : []))
        const files = new Set<string>()
        for (const module of PRELOADED) {
          const chunk = chunks.find((c) => c.isDynamicEntry && c.facadeModuleId?.endsWith(module))
          if (!chunk) throw new Error(`preload-chunks: no chunk for ${module}`)
          for (const file of [chunk.fileName, ...chunk.imports]) if (!html.includes(`./${file}"`)) files.add(file)
        }
        return [...files].map((file) => ({ tag: 'link', attrs: { rel: 'modulepreload', crossorigin: true, href: `./${file}` }, injectTo: 'head' as const }))
      },
    },
  }
}

// The built page is served by the Python package at /demos/streaming-chatbot/ (possibly under a
// sub-path prefix), so every asset URL is relative.
export default defineConfig({
  base: './',
  plugins: [react(), tailwindcss(), preloadChunks()],
  build: {
    outDir: '../src/burr_streaming_chatbot/ui',
    emptyOutDir: true,
    target: 'es2022',
  },
  // The render worker (markdown parsing, highlighting) is an ES module, its own chunk.
  worker: {
    format: 'es',
    plugins: () => [
      {
        name: 'entities-without-dom',
        enforce: 'pre',
        resolveId: (id: string) => (id === 'decode-named-character-reference' ? entitiesWithoutDom : null),
      },
    ],
  },
  server: {
    proxy: {
      '/api': 'http://127.0.0.1:7241',
    },
  },
  test: {
    environment: 'jsdom',
    globals: true,
    setupFiles: ['./src/test/setup.ts'],
    css: false,
  },
})
