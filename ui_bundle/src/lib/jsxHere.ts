// Loads hastJsx.ts (turning parsed markdown and highlighted code into React elements) as a chunk
// of its own. The page starts loading it once its app has loaded; nothing parsed or highlighted
// is shown before it has loaded (a block shows its plain text meanwhile), so it is needed only
// when the first parse or highlight lands.
type HastJsx = typeof import('./hastJsx')

let module: HastJsx | null = null
let loading: Promise<HastJsx> | null = null

/** Loads the converter (once; again after a failed load). */
export function loadHastJsx(): Promise<HastJsx> {
  loading ??= import('./hastJsx').then(
    (loaded) => (module = loaded),
    (error: unknown) => {
      loading = null
      throw error
    },
  )
  return loading
}

/** The converter; null while it is not loaded yet. */
export function hastJsxNow(): HastJsx | null {
  return module
}

/** The converter, for code that runs only once it has loaded (see loadHastJsx). */
export function hastJsx(): HastJsx {
  if (!module) throw new Error('hastJsx() before loadHastJsx() resolved')
  return module
}
