import { startTransition, StrictMode } from 'react'
import { createRoot } from 'react-dom/client'
import './index.css'
import { loadHastJsx } from './lib/jsxHere'
import { loadParser } from './lib/markdownHere'
import { hasRenderWorker, warmUpRenderer } from './lib/renderClient'

// The page's first script is React and this file: the app (./App, a chunk of its own that
// index.html preloads) is evaluated in a task of its own, and so is hastJsx after it, so no one
// evaluation holds up the page for long. The first render is a transition: React renders it in
// slices of a few milliseconds, yielding to the browser between them.

// The render worker starts now, off the page's thread, and warms its parser up: it parses the
// conversation when it arrives, and has loaded the browser's date formatting data by then. Without
// a worker, the page's own parser (a chunk of its own) loads now. (A parser that fails to load is
// loaded again when needed.)
if (hasRenderWorker()) warmUpRenderer()
else void loadParser().catch(() => undefined)

const root = document.getElementById('root')
if (!root) throw new Error('No #root element in index.html')
const reactRoot = createRoot(root)
import('./App').then(
  ({ App }) => {
    startTransition(() =>
      reactRoot.render(
        <StrictMode>
          <App />
        </StrictMode>,
      ),
    )
    void loadHastJsx().catch(() => undefined)
  },
  () => {
    root.textContent = 'The page could not be loaded. Reload it to try again.'
  },
)
