import { StrictMode } from 'react'
import { createRoot } from 'react-dom/client'
import { App } from './App'
import './index.css'
import { hasRenderWorker } from './lib/renderClient'

// The render worker starts now, off the page's thread: its parser, highlighter and the browser's
// date formatting data are ready when the conversation arrives.
hasRenderWorker()

const root = document.getElementById('root')
if (!root) throw new Error('No #root element in index.html')
createRoot(root).render(
  <StrictMode>
    <App />
  </StrictMode>,
)
