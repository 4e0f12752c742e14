// Loads hastJsx.ts (turning parsed markdown and highlighted code into React elements) as a chunk
// of its own. The page starts loading it once its app has loaded; nothing parsed or highlighted
// is shown before it has loaded (a block shows its plain text meanwhile), so it is needed only
// when the first parse or highlight lands.
import { lazyModule } from './lazyModule'

type HastJsx = typeof import('./hastJsx')

const converter = lazyModule<HastJsx>(() => import('./hastJsx'))

/** Loads the converter (once; again after a failed load). */
export const loadHastJsx = converter.load

/** The converter; null while it is not loaded yet. */
export const hastJsxNow = converter.now

/** The converter, for code that runs only once it has loaded (see loadHastJsx). */
export function hastJsx(): HastJsx {
  const module = converter.now()
  if (!module) throw new Error('hastJsx() before loadHastJsx() resolved')
  return module
}
