// A module loaded as a chunk of its own, once, when first asked for: what the page's parser
// (markdownHere.ts) and hast-to-React (jsxHere.ts) share.

export interface LazyModule<T> {
  /** Loads the module (once; again after a failed load). */
  load: () => Promise<T>
  /** The module; null while it is not loaded yet. */
  now: () => T | null
}

/** `importer` is the dynamic `import()` of the module (Vite makes the chunk from it). */
export function lazyModule<T>(importer: () => Promise<T>): LazyModule<T> {
  let module: T | null = null
  let loading: Promise<T> | null = null
  return {
    load: () => {
      loading ??= importer().then(
        (loaded) => (module = loaded),
        (error: unknown) => {
          loading = null
          throw error
        },
      )
      return loading
    },
    now: () => module,
  }
}
