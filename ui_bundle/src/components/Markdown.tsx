import { cloneElement, createContext, isValidElement, memo, startTransition, useContext, useEffect, useMemo, useRef, useState } from 'react'
import type { Components } from 'react-markdown'
import { Fragment, jsx, jsxs } from 'react/jsx-runtime'
import type { Element, RootContent } from 'hast'
import { endsInOpenFence, fencedCode, splitBlocks } from '../lib/blocks'
import { codeOf } from '../lib/hastCode'
import { hastJsx, hastJsxNow, loadHastJsx } from '../lib/jsxHere'
import { parseNow } from '../lib/markdownHere'
import type { Piece } from '../lib/markdownPipeline'
import { hasRenderWorker, parseAsync } from '../lib/renderClient'
import { CodeBlock } from './CodeBlock'

/** The longest rest between two parses of a block being streamed. */
const MAX_REST_MS = 200

/** Whether the code of the block being rendered may still grow: shown plain, not highlighted. */
const CodeOpen = createContext(false)

function Pre({ node, children }: { node?: Element | undefined; children?: React.ReactNode }) {
  const open = useContext(CodeOpen)
  const code = node ? codeOf(node) : null
  if (!code) return <pre>{children}</pre>
  return <CodeBlock code={code.code} language={code.language} open={open} />
}

const components: Components = {
  a: ({ node: _node, href, children, ...rest }) => (
    <a {...rest} href={href} target="_blank" rel="noopener noreferrer">
      {children}
    </a>
  ),
  pre: Pre,
  // Images in model output are links, not loads: nothing is fetched without a click.
  img: ({ src, alt }) =>
    typeof src === 'string' && src ? (
      <a href={src} target="_blank" rel="noopener noreferrer">
        {alt ? `Image: ${alt}` : 'Image'}
      </a>
    ) : (
      <>{alt}</>
    ),
  table: ({ node: _node, ...props }) => (
    <div className="overflow-x-auto">
      <table {...props} />
    </div>
  ),
}

// (toJsxRuntime's options: hastJsx() is loaded before any block is shown parsed, see ParsedBlock.)
const toJsxOptions = {
  Fragment,
  jsx,
  jsxs,
  components: components as Parameters<typeof import('hast-util-to-jsx-runtime').toJsxRuntime>[1]['components'],
  ignoreInvalidStyle: true,
  passKeys: true,
  passNode: true,
}

/** One top-level node (or list item); memoized on its JSON, so an unchanged one costs nothing. */
const NodePiece = memo(function NodePiece({ json }: { json: string }) {
  return hastJsx().toJsxRuntime(JSON.parse(json) as RootContent, toJsxOptions)
})

/** A list: its element (from its JSON without children), with each item a NodePiece. */
const ListPiece = memo(function ListPiece({ shell, items }: { shell: string; items: string[] }) {
  const list = useMemo(() => hastJsx().toJsxRuntime(JSON.parse(shell) as Element, toJsxOptions), [shell])
  return isValidElement(list)
    ? cloneElement(
        list,
        undefined,
        items.map((item, index) => <NodePiece key={index} json={item} />),
      )
    : null
})

/** A parsed block. */
const Pieces = memo(function Pieces({ pieces }: { pieces: Piece[] }) {
  return pieces.map((piece, index) =>
    piece.kind === 'list' ? (
      <ListPiece key={index} shell={piece.shell} items={piece.items} />
    ) : (
      <NodePiece key={index} json={piece.json} />
    ),
  )
})

interface Parsed {
  text: string
  pieces: Piece[]
}

/**
 * Whether a block is parsed right away on the page's thread rather than in the worker: only
 * without a worker (tests, old browsers). With one, even a finished message shown for the first
 * time (a conversation opened) is parsed there: the parser is cold on the page's thread, and its
 * first parse alone is a long task. Until the worker answers, the block shows its plain text.
 */
function parsesHere(): boolean {
  return !hasRenderWorker()
}

function ParsedBlock({ text, live }: { text: string; live: boolean }) {
  /** The newest version parsed, from either thread. */
  const [parsed, setParsed] = useState<Parsed | null>(null)
  let shown = parsed
  if (shown?.text !== text && parsesHere()) {
    // (Null while the page's parser or hastJsx is still loading: then the block waits like any
    // other.)
    const pieces = hastJsxNow() ? parseNow(text) : null
    if (pieces) {
      shown = { text, pieces }
      setParsed(shown) // state from this render (React re-renders at once, before the children)
    }
  }
  const waiting = shown?.text !== text
  // A finished block shows all of its text: as plain text until its last version is parsed, not
  // the parse of an older version (the words that came last would be missing meanwhile).
  const stale = waiting && !live

  const latest = useRef(text)
  const liveRef = useRef(live)
  const inFlight = useRef(false)
  const mounted = useRef(true)
  useEffect(() => {
    latest.current = text
    liveRef.current = live
  }, [text, live])
  useEffect(() => {
    mounted.current = true
    return () => {
      mounted.current = false
    }
  }, [])
  /** When the worker may be asked again (see below). */
  const nextAsk = useRef(0)
  const [wake, setWake] = useState(0)
  useEffect(() => {
    // One parse in flight per block: when it lands, the newest text is asked for (the effect runs
    // again because `parsed` changed), so the worker never works through a backlog. And it rests
    // as long as it worked: a long block being streamed costs the worker half a core at most, and
    // the page a re-render per parse, not per frame.
    if (!waiting || inFlight.current) return
    const wait = live ? nextAsk.current - performance.now() : 0 // (a finished block: no rest)
    if (wait > 0) {
      const timer = setTimeout(() => setWake((n) => n + 1), wait)
      return () => clearTimeout(timer)
    }
    inFlight.current = true
    const asked = text
    const started = performance.now()
    // (A parse is shown once hastJsx has loaded, which turns it into elements.)
    Promise.all([parseAsync(asked), loadHastJsx()]).then(
      ([pieces]) => {
        inFlight.current = false
        const now = performance.now()
        nextAsk.current = now + Math.min(MAX_REST_MS, now - started)
        // Even an older version is newer than what is shown; a version parsed here since wins.
        const show = () => setParsed((previous) => (previous?.text === latest.current ? previous : { text: asked, pieces }))
        // A finished block (a conversation opened: hundreds land at once) is rendered as a
        // transition, which React splits into short tasks; the block being written at once.
        if (mounted.current) {
          if (liveRef.current) show()
          else startTransition(show)
        }
      },
      () => {
        inFlight.current = false // the last version shown stays
      },
    )
    // `parsed` and `wake` are read by no line here, but each is a reason to ask again: a parse
    // landed (the newest text may still be waiting), or the rest is over (or, with `live`,
    // no longer needed).
  }, [text, live, waiting, parsed, wake])

  if (!shown || stale) return <p className="whitespace-pre-wrap">{text}</p>
  const open = (live || waiting) && endsInOpenFence(shown.text)
  return (
    <CodeOpen.Provider value={open}>
      <Pieces pieces={shown.pieces} />
    </CodeOpen.Provider>
  )
}

/** One top-level block; memoized so finished blocks are not rendered again as text streams in. */
const Block = memo(function Block({ text, live }: { text: string; live: boolean }) {
  const fenced = useMemo(() => fencedCode(text), [text])
  if (fenced) return <CodeBlock code={fenced.code} language={fenced.language} open={live && !fenced.closed} />
  return <ParsedBlock text={text} live={live} />
})

/**
 * GitHub-flavoured markdown; raw HTML in it shows as text and never runs. While `streaming`, the
 * last block is the one being written: its code is plain text until its fence closes.
 */
export function Markdown({ text, streaming = false }: { text: string; streaming?: boolean }) {
  const blocks = useMemo(() => splitBlocks(text), [text])
  return (
    <div className="prose prose-sm max-w-none break-words dark:prose-invert prose-pre:my-0 prose-code:before:content-none prose-code:after:content-none prose-code:rounded prose-code:bg-gray-100 prose-code:px-1 prose-code:font-normal dark:prose-code:bg-gray-800 prose-a:text-blue-700 dark:prose-a:text-sky-300">
      {blocks.map((block, index) => (
        <Block key={index} text={block} live={streaming && index === blocks.length - 1} />
      ))}
    </div>
  )
}
