// hast to React elements (hast-util-to-jsx-runtime and its HTML property tables), a chunk of its
// own: building those tables is a good part of what evaluating it costs, so it is evaluated in a
// task of its own after the page's first script (see jsxHere.ts).
export { toJsxRuntime } from 'hast-util-to-jsx-runtime'
