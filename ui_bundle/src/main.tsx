import { StrictMode } from 'react'
import { createRoot } from 'react-dom/client'
import { App } from './App'
import './index.css'
import { loadParser } from './lib/markdownHere'
import { hasRenderWorker, warmUpRenderer } from './lib/renderClient'

// The render worker starts now, off the page's thread, and warms its parser up: it parses the
// conversation when it arrives, and has loaded the browser's date formatting data by then. Without
// a worker, the page's own parser (a chunk of its own) loads now. (A parser that fails to load is
// loaded again when needed.)
if (hasRenderWorker()) warmUpRenderer()
else void loadParser().catch(() => undefined)

const root = document.getElementById('root')
if (!root) throw new Error('No #root element in index.html')
createRoot(root).render(
  <StrictMode>
    <App />
  </StrictMode>,
)
