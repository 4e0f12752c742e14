// The markdown parser on the page's own thread, in a chunk of its own: the page starts loading it
// as it starts (loadParser), but does not wait for it, so the first script the browser runs is
// smaller. Until it has loaded, a block is parsed in the render worker (or once it loads).
import { lazyModule } from './lazyModule'
import type { Piece } from './markdownPipeline'

const parser = lazyModule<typeof import('./markdownPipeline')>(() => import('./markdownPipeline'))

/** Loads the parser (once; again after a failed load). */
export const loadParser = parser.load

/** Parses on this thread now; null while the parser is not loaded yet. */
export function parseNow(text: string): Piece[] | null {
  return parser.now()?.parsePieces(text) ?? null
}

/** Parses on this thread, loading the parser first if needed. */
export async function parseHere(text: string): Promise<Piece[]> {
  return (await loadParser()).parsePieces(text)
}
