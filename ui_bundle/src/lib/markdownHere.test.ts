import { describe, expect, it, vi } from 'vitest'

describe('markdownHere', () => {
  it('parses nothing before the parser has loaded, and the same as the pipeline after', async () => {
    vi.resetModules() // a fresh copy, not loaded by the test setup
    const here = await import('./markdownHere')
    const { parsePieces } = await import('./markdownPipeline')
    expect(here.parseNow('Some **bold**')).toBeNull()
    expect(await here.parseHere('Some **bold**')).toEqual(parsePieces('Some **bold**'))
    expect(here.parseNow('- a\n- b')).toEqual(parsePieces('- a\n- b'))
  })
})
