import './index.css'
import { loadParser } from './lib/markdownHere'
import { hasRenderWorker } from './lib/renderClient'

// The page's first script is small: it starts the render worker, then loads React (./boot) and the
// app, each evaluated in a task of its own (no one evaluation holds up the page for long).

// The render worker starts now, off the page's thread. It warms up the browser's date formatting
// first (the page's first dates come a few hundred milliseconds later) and loads its parser with
// the first request (the app asks it to warm up once the page is idle; a conversation's history is
// parsed there when it arrives), so that its start competes little with the evaluation of the
// page's scripts. Without a worker, the page's own parser (a chunk of its own) loads now. (A
// parser that fails to load is loaded again when needed.)
if (!hasRenderWorker()) void loadParser().catch(() => undefined)

import('./boot').catch(() => {
  const root = document.getElementById('root')
  if (root) root.textContent = 'The page could not be loaded. Reload it to try again.'
})
