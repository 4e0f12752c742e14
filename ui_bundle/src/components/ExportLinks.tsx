/** Links that download the conversation shown (`GET /export`), as Markdown or JSON. */
export function ExportLinks({ markdownUrl, jsonUrl }: { markdownUrl: string; jsonUrl: string }) {
  const link =
    'rounded px-1.5 py-0.5 font-medium text-dwlightblue-deep underline-offset-2 hover:underline focus-visible:outline-2 focus-visible:outline-offset-2 focus-visible:outline-dwlightblue dark:text-dwlightblue'
  return (
    <nav aria-label="Export" data-testid="export-links" className="flex items-center justify-end gap-1 border-b border-gray-200 bg-white px-3 py-1 text-xs text-gray-600 dark:border-gray-700 dark:bg-gray-900 dark:text-gray-300">
      <span>Download:</span>
      <a href={markdownUrl} download className={link}>
        Markdown
      </a>
      <a href={jsonUrl} download className={link}>
        JSON
      </a>
    </nav>
  )
}
