import type { ModelInfo } from '../lib/types'

/** Says so when the offline demo model answers, with the server's help on configuring one. */
export function OfflineBanner({ model }: { model: ModelInfo | null }) {
  if (!model?.offline) return null
  return (
    <section
      aria-label="Offline mode"
      data-testid="offline-banner"
      className="border-b border-amber-300 bg-amber-50 px-4 py-2 text-sm text-amber-900 dark:border-amber-700 dark:bg-amber-950/50 dark:text-amber-100"
    >
      <p className="font-semibold">Offline demo model: answers are canned, no LLM is called.</p>
      {model.help && <p className="mt-1 whitespace-pre-wrap">{model.help}</p>}
    </section>
  )
}
