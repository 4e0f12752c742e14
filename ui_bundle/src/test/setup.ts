import '@testing-library/jest-dom/vitest'
import { cleanup } from '@testing-library/react'
import { afterEach, beforeAll } from 'vitest'
import { loadHastJsx } from '../lib/jsxHere'
import { loadParser } from '../lib/markdownHere'

afterEach(() => {
  cleanup()
})

// The page loads its markdown parser and hastJsx as it starts; a test's page has them from the
// start (loaded after the test file's own mocks are in place).
beforeAll(async () => {
  await Promise.all([loadParser(), loadHastJsx()])
})
