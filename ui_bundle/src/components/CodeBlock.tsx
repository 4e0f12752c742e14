import { memo, useEffect, useMemo, useRef, useState } from 'react'
import { Fragment, jsx, jsxs } from 'react/jsx-runtime'
import type { ElementContent } from 'hast'
import { inBlocks, LINES_PER_BLOCK, type HighlightedBlocks } from '../lib/codeLines'
import { whenIdle } from '../lib/idle'
import { hastJsx, loadHastJsx } from '../lib/jsxHere'
import { highlightAsync } from '../lib/renderClient'

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
    let ok: boolean
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
 * The plain text of each block of LINES_PER_BLOCK lines, each line but the code's last ending in
 * "\n", and how many lines the code has.
 */
function plainBlocks(code: string): { blocks: string[]; lineCount: number } {
  const lines = code.split('\n')
  const blocks = inBlocks(lines).map((block, index, all) => block.join('\n') + (index < all.length - 1 ? '\n' : ''))
  return { blocks, lineCount: lines.length }
}

/** The highlighted lines of one block (a JSON string from the highlighter) as React elements. */
function highlightedBlock(json: string, lastBlock: boolean) {
  const lines = JSON.parse(json) as ElementContent[][]
  const children: ElementContent[] = []
  lines.forEach((line, index) => {
    children.push(...line)
    if (!lastBlock || index < lines.length - 1) children.push({ type: 'text', value: '\n' })
  })
  return hastJsx().toJsxRuntime({ type: 'root', children }, { Fragment, jsx, jsxs, passKeys: true })
}

/**
 * One block of lines: its own block box, so a change to it (growing while streamed, turning
 * highlighted) makes the browser lay out and restyle this block only. The element stays the same
 * when its content turns highlighted, so its siblings are not restyled either.
 */
const LinesBlock = memo(function LinesBlock({
  text,
  json,
  last,
  lines,
}: {
  text: string
  json: string | null
  last: boolean
  lines: number
}) {
  const highlighted = useMemo(() => (json === null ? null : highlightedBlock(json, last)), [json, last])
  // Off screen, a block is neither styled, laid out nor painted (content-visibility), so
  // highlighting a long block far above the answer being written costs little. Its height is
  // known while skipped (lines of 1.625em, the code's line height); it is as wide as its longest
  // line, so paint containment does not clip a line scrolled into view sideways.
  return (
    <span className="block w-max min-w-full [content-visibility:auto]" style={{ containIntrinsicBlockSize: `auto ${lines * 1.625}em` }}>
      {highlighted ?? text}
    </span>
  )
})

interface Highlighted {
  code: string
  language: string | undefined
  blocks: HighlightedBlocks
}

/**
 * A fenced code block with a copy button. While its code is still being streamed (`open`) it is
 * plain text. Once complete it is highlighted off the main thread (the render worker), and the
 * highlighted blocks of lines replace the plain ones one per step, in idle time, so no step is a
 * long task however long the code.
 */
export const CodeBlock = memo(function CodeBlock({
  code,
  language,
  open = false,
}: {
  code: string
  language: string | undefined
  open?: boolean
}) {
  const [highlighted, setHighlighted] = useState<Highlighted | null>(null)
  /** How many blocks are shown highlighted. */
  const [shown, setShown] = useState(0)
  const [copied, setCopied] = useState<'idle' | 'copied' | 'failed'>('idle')
  const timer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined)

  useEffect(() => {
    if (open) return
    let cancelled = false
    let cancelIdle = () => {}
    // (Shown once hastJsx has loaded, which turns the highlighted lines into elements.)
    Promise.all([highlightAsync(code, language), loadHastJsx()])
      .then(([blocks]) => {
        if (cancelled || !blocks) return
        // Shown in an idle moment, one code block per moment: when many land at once (a long
        // conversation opened), they are rendered one by one, not in one long task.
        cancelIdle = whenIdle(() => {
          setHighlighted({ code, language, blocks })
          setShown(1)
        })
      })
      .catch(() => undefined)
    return () => {
      cancelled = true
      cancelIdle()
    }
  }, [code, language, open])

  const current = highlighted && highlighted.code === code && highlighted.language === language ? highlighted.blocks : null
  const total = current?.length ?? 0
  useEffect(() => {
    if (!current || shown >= total) return
    return whenIdle(() => setShown((n) => Math.min(n + 1, total)))
  }, [current, shown, total])

  useEffect(() => () => clearTimeout(timer.current), [])

  const onCopy = async () => {
    const ok = await copyText(code)
    setCopied(ok ? 'copied' : 'failed')
    clearTimeout(timer.current)
    timer.current = setTimeout(() => setCopied('idle'), 2000)
  }

  const { blocks: plain, lineCount } = useMemo(() => plainBlocks(code), [code])
  const done = current !== null && shown >= total

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
      <pre className="overflow-x-auto p-3 text-[13px] leading-relaxed" data-highlighted={done ? 'true' : undefined}>
        <code className={language ? `hljs block language-${language}` : 'hljs block'}>
          {plain.map((text, index) => (
            <LinesBlock
              key={index}
              text={text}
              lines={index === plain.length - 1 ? lineCount - index * LINES_PER_BLOCK : LINES_PER_BLOCK}
              json={current && index < shown ? (current[index] ?? null) : null}
              last={index === plain.length - 1}
            />
          ))}
        </code>
      </pre>
    </div>
  )
})
