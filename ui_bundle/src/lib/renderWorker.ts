// The render worker's entry: small, so it starts at once. Dates are formatted on the page (the
// conversation list, the notes) with the browser's Intl, whose first use loads the locale's data:
// tens of milliseconds, paid once per browser process. It is paid here first, off the page's
// thread: the page's first date comes a few hundred milliseconds after it starts, and the warm-up
// has to be done by then. The parser and highlighter (a chunk of their own, most of the worker's
// start-up) are loaded with the first request; requests that come meanwhile wait for them.
import type { RenderRequest, RenderResponse } from './renderProtocol'

type Handler = (event: MessageEvent<RenderRequest>) => void

const scope = self as unknown as { onmessage: Handler | null; postMessage: (message: RenderResponse) => void }

new Date(0).toLocaleString(undefined, { dateStyle: 'short', timeStyle: 'short' })

const early: MessageEvent<RenderRequest>[] = []

/** Loads the parser and highlighter (with the first request, not at once: the page evaluates
 * its own scripts meanwhile, and on a machine with few cores the worker's start competes). */
function loadMain(): void {
  void import('./renderWorkerMain').then(
    ({ answer }) => {
      scope.onmessage = answer
      for (const event of early.splice(0)) answer(event)
    },
    (error: unknown) => {
      // The page then does the work on its own thread.
      const failed: Handler = ({ data }) =>
        scope.postMessage({ id: data.id, ok: false, error: `The render worker could not load: ${String(error)}` })
      scope.onmessage = failed
      for (const event of early.splice(0)) failed(event)
    },
  )
}

let loading = false
scope.onmessage = (event) => {
  early.push(event)
  if (!loading) loadMain()
  loading = true
}
