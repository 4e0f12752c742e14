import { startTransition, StrictMode } from 'react'
import { createRoot } from 'react-dom/client'
import { loadHastJsx } from './lib/jsxHere'

// React (react-dom and this file, a chunk of its own): evaluated in a task of its own, after the
// page's first script (main.tsx) and before the app's (./App, a chunk of its own too); index.html
// preloads all three, so they are fetched and compiled while the first ones run. The first render
// is a transition: React renders it in slices of a few milliseconds, yielding to the browser
// between them. hastJsx is evaluated in a task of its own after the app.

const root = document.getElementById('root')
if (!root) throw new Error('No #root element in index.html')
// (The root is made with the app, in its task: this one is React's evaluation alone.)
import('./App').then(
  ({ App }) => {
    const reactRoot = createRoot(root)
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
