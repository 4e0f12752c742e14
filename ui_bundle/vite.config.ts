/// <reference types="vitest/config" />
import { defineConfig } from 'vite'
import react from '@vitejs/plugin-react'
import tailwindcss from '@tailwindcss/vite'
import { fileURLToPath } from 'node:url'

// The markdown parser decodes character references with decode-named-character-reference, whose
// "browser" build uses `document`, which a worker lacks. The worker gets its plain build (the one
// Node resolves to), with the table of entities.
const entitiesWithoutDom = fileURLToPath(import.meta.resolve('decode-named-character-reference'))

// The built page is served by the Python package at /demos/streaming-chatbot/ (possibly under a
// sub-path prefix), so every asset URL is relative.
export default defineConfig({
  base: './',
  plugins: [react(), tailwindcss()],
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
