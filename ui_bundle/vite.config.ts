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

// The app (src/App.tsx) is a chunk of its own that main.tsx imports dynamically, so the browser
// evaluates it in a task of its own after React's. index.html preloads it (and the chunks it
// imports) with the first script, so it is fetched and compiled while that runs, not after.
function preloadApp(): Plugin {
  return {
    name: 'preload-app',
    apply: 'build',
    transformIndexHtml: {
      order: 'post',
      handler(html, { bundle }) {
        const chunks = Object.values(bundle ?? {}).flatMap((chunk) => (chunk.type === 'chunk' ? [chunk] : []))
        const app = chunks.find((chunk) => chunk.isDynamicEntry && chunk.facadeModuleId?.endsWith('/src/App.tsx'))
        if (!app) throw new Error('preload-app: no chunk for src/App.tsx')
        const files = [app.fileName, ...app.imports].filter((file) => !html.includes(`./${file}"`))
        return files.map((file) => ({ tag: 'link', attrs: { rel: 'modulepreload', crossorigin: true, href: `./${file}` }, injectTo: 'head' as const }))
      },
    },
  }
}

// The built page is served by the Python package at /demos/streaming-chatbot/ (possibly under a
// sub-path prefix), so every asset URL is relative.
export default defineConfig({
  base: './',
  plugins: [react(), tailwindcss(), preloadApp()],
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
