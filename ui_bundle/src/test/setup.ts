import '@testing-library/jest-dom/vitest'
import { cleanup } from '@testing-library/react'
import { afterEach, beforeAll } from 'vitest'
import { loadParser } from '../lib/markdownHere'

afterEach(() => {
  cleanup()
})

// The page loads its markdown parser as it starts; a test's page has it from the start (loaded
// after the test file's own mocks are in place).
beforeAll(async () => {
  await loadParser()
})
