import { StrictMode } from 'react'
import { createRoot } from 'react-dom/client'
import { App } from './App'
import './index.css'
import { loadParser } from './lib/markdownHere'
import { hasRenderWorker } from './lib/renderClient'

// The render worker starts now, off the page's thread, and the page's own markdown parser (its own
// chunk) loads: the parsers, the highlighter and the browser's date formatting data are ready
// when the conversation arrives. (A parser that fails to load is loaded again when needed.)
hasRenderWorker()
void loadParser().catch(() => undefined)

const root = document.getElementById('root')
if (!root) throw new Error('No #root element in index.html')
createRoot(root).render(
  <StrictMode>
    <App />
  </StrictMode>,
)
