import { useState } from 'react'
import type { ModelInfo } from '../lib/types'

function wide(): boolean {
  return typeof window !== 'undefined' && typeof window.matchMedia === 'function'
    ? window.matchMedia('(min-width: 640px)').matches
    : true
}

/** Says so when the offline demo model answers, with the server's help on configuring one
 * (open on wide screens, one tap away on phones). */
export function OfflineBanner({ model }: { model: ModelInfo | null }) {
  const [open, setOpen] = useState(wide)
  if (!model?.offline) return null
  return (
    <section
      aria-label="Offline mode"
      data-testid="offline-banner"
      className="border-b border-amber-300 bg-amber-50 px-4 py-2 text-sm text-amber-900 dark:border-amber-700 dark:bg-amber-950/50 dark:text-amber-100"
    >
      <p className="font-semibold">Offline demo model: answers are canned, no LLM is called.</p>
      {model.help && (
        <details open={open} onToggle={(e) => setOpen(e.currentTarget.open)} className="mt-0.5 text-xs">
          <summary className="cursor-pointer rounded underline-offset-2 hover:underline focus-visible:outline-2 focus-visible:outline-offset-2 focus-visible:outline-amber-600">
            How to use a real model
          </summary>
          <p className="mt-1 whitespace-pre-wrap" data-testid="offline-help">
            {model.help}
          </p>
        </details>
      )}
    </section>
  )
}
