import { useEffect, useRef, useState, type ReactNode } from 'react'

type Highlighter = typeof import('../lib/highlight')
let highlighter: Promise<Highlighter> | null = null
function loadHighlighter(): Promise<Highlighter> {
  highlighter ??= import('../lib/highlight')
  return highlighter
}

interface Highlighted {
  code: string
  node: ReactNode
}

async function copyText(text: string): Promise<boolean> {
  try {
    await navigator.clipboard.writeText(text)
    return true
  } catch {
    // No clipboard API (plain http): fall back to a hidden textarea.
    const area = document.createElement('textarea')
    area.value = text
    area.setAttribute('readonly', '')
    area.style.position = 'fixed'
    area.style.opacity = '0'
    document.body.appendChild(area)
    area.select()
    let ok = false
    try {
      ok = document.execCommand('copy')
    } catch {
      ok = false
    }
    area.remove()
    return ok
  }
}

/**
 * A fenced code block: highlighted once the highlighter has loaded. While code streams in, the
 * part already highlighted stays coloured and the newer tail shows as plain text.
 */
export function CodeBlock({ code, language }: { code: string; language: string | undefined }) {
  const [highlighted, setHighlighted] = useState<Highlighted | null>(null)
  const [copied, setCopied] = useState<'idle' | 'copied' | 'failed'>('idle')
  const timer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined)

  useEffect(() => {
    let cancelled = false
    const delay = highlighted ? 120 : 0
    const handle = setTimeout(() => {
      loadHighlighter()
        .then(({ highlight }) => {
          if (cancelled) return
          const node = highlight(code, language)
          setHighlighted(node === null ? null : { code, node })
        })
        .catch(() => undefined)
    }, delay)
    return () => {
      cancelled = true
      clearTimeout(handle)
    }
    // Re-highlight only when the code or language changes.
    // (`highlighted` is read for the delay only.)
  }, [code, language])

  useEffect(() => () => clearTimeout(timer.current), [])

  const onCopy = async () => {
    const ok = await copyText(code)
    setCopied(ok ? 'copied' : 'failed')
    clearTimeout(timer.current)
    timer.current = setTimeout(() => setCopied('idle'), 2000)
  }

  let body: ReactNode = code
  if (highlighted && code.startsWith(highlighted.code)) {
    body = (
      <>
        {highlighted.node}
        {code.slice(highlighted.code.length)}
      </>
    )
  }

  return (
    <div className="code-block not-prose group relative my-3 overflow-hidden rounded-md border border-gray-200 bg-gray-50 dark:border-gray-700 dark:bg-gray-900">
      <div className="flex items-center justify-between border-b border-gray-200 px-3 py-1 text-xs text-gray-500 dark:border-gray-700 dark:text-gray-400">
        <span>{language ?? 'code'}</span>
        <button
          type="button"
          onClick={onCopy}
          className="rounded px-2 py-0.5 font-medium text-gray-600 hover:bg-gray-200 hover:text-gray-900 focus-visible:outline-2 focus-visible:outline-offset-1 focus-visible:outline-dwlightblue dark:text-gray-300 dark:hover:bg-gray-700 dark:hover:text-white"
          aria-label={copied === 'copied' ? 'Copied' : 'Copy code'}
        >
          {copied === 'copied' ? 'Copied' : copied === 'failed' ? 'Copy failed' : 'Copy'}
        </button>
      </div>
      <pre className="overflow-x-auto p-3 text-[13px] leading-relaxed">
        <code className={language ? `hljs language-${language}` : 'hljs'}>{body}</code>
      </pre>
    </div>
  )
}
