// Loaded on demand (dynamic import) so the grammars stay out of the initial bundle.
import { common, createLowlight } from 'lowlight'
import { toJsxRuntime } from 'hast-util-to-jsx-runtime'
import { Fragment, jsx, jsxs } from 'react/jsx-runtime'
import type { ReactNode } from 'react'

const lowlight = createLowlight(common)

/** Longest code that is auto-detected when the block names no language. */
const AUTO_LIMIT = 20_000

/** Highlights code into React elements (no HTML strings); null when it cannot. */
export function highlight(code: string, language: string | undefined): ReactNode | null {
  let tree
  if (language && lowlight.registered(language)) tree = lowlight.highlight(language, code)
  else if (!language && code.length <= AUTO_LIMIT) tree = lowlight.highlightAuto(code)
  else return null
  return toJsxRuntime(tree, { Fragment, jsx, jsxs })
}
