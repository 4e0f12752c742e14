import './index.css'
import { loadParser } from './lib/markdownHere'
import { hasRenderWorker, warmUpRenderer } from './lib/renderClient'

// The page's first script is small: it starts the render worker, then loads React (./boot) and the
// app, each evaluated in a task of its own (no one evaluation holds up the page for long).

// The render worker starts now, off the page's thread: it warms up the browser's date formatting
// first (the page's first dates come a few hundred milliseconds later), then its parser, which
// parses the conversation when it arrives. Without a worker, the page's own parser (a chunk of its
// own) loads now. (A parser that fails to load is loaded again when needed.)
if (hasRenderWorker()) warmUpRenderer()
else void loadParser().catch(() => undefined)

import('./boot').catch(() => {
  const root = document.getElementById('root')
  if (root) root.textContent = 'The page could not be loaded. Reload it to try again.'
})
