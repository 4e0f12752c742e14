import { memo, useMemo } from 'react'
import ReactMarkdown, { type Components } from 'react-markdown'
import remarkGfm from 'remark-gfm'
import type { Element, ElementContent } from 'hast'
import { splitBlocks } from '../lib/blocks'
import remarkHtmlAsText from '../lib/remarkHtmlAsText'
import { CodeBlock } from './CodeBlock'

function textOf(nodes: ElementContent[]): string {
  return nodes.map((n) => (n.type === 'text' ? n.value : n.type === 'element' ? textOf(n.children) : '')).join('')
}

function languageOf(code: Element): string | undefined {
  const className: unknown = code.properties.className
  const classes: unknown[] = Array.isArray(className) ? className : typeof className === 'string' ? className.split(' ') : []
  for (const c of classes) {
    if (typeof c === 'string' && c.startsWith('language-')) return c.slice('language-'.length)
  }
  return undefined
}

const components: Components = {
  a: ({ node: _node, href, children, ...rest }) => (
    <a {...rest} href={href} target="_blank" rel="noopener noreferrer">
      {children}
    </a>
  ),
  pre: ({ node, children }) => {
    const code = node?.children.find((c): c is Element => c.type === 'element' && c.tagName === 'code')
    if (!code) return <pre>{children}</pre>
    return <CodeBlock code={textOf(code.children).replace(/\n$/, '')} language={languageOf(code)} />
  },
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

const remarkPlugins = [remarkGfm, remarkHtmlAsText]

/** One top-level block; memoized so finished blocks are not parsed again as text streams in. */
const Block = memo(function Block({ text }: { text: string }) {
  return (
    <ReactMarkdown remarkPlugins={remarkPlugins} components={components}>
      {text}
    </ReactMarkdown>
  )
})

/** GitHub-flavoured markdown; raw HTML in it shows as text and never runs. */
export function Markdown({ text }: { text: string }) {
  const blocks = useMemo(() => splitBlocks(text), [text])
  return (
    <div className="prose prose-sm max-w-none break-words dark:prose-invert prose-pre:my-0 prose-code:before:content-none prose-code:after:content-none prose-code:rounded prose-code:bg-gray-100 prose-code:px-1 prose-code:font-normal dark:prose-code:bg-gray-800 prose-a:text-blue-700 dark:prose-a:text-sky-300">
      {blocks.map((block, index) => (
        <Block key={index} text={block} />
      ))}
    </div>
  )
}
