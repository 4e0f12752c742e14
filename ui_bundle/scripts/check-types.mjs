// Regenerates the API types from openapi.json into a temporary file and fails when they differ
// from the committed src/lib/api-types.ts (run `npm run gen:types` to update them).
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const dir = mkdtempSync(join(tmpdir(), 'api-types-'))
const fresh = join(dir, 'api-types.ts')
try {
  execFileSync(
    process.execPath,
    [join(root, 'node_modules', 'openapi-typescript', 'bin', 'cli.js'), join(root, 'openapi.json'), '-o', fresh],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  )
  const committed = readFileSync(join(root, 'src', 'lib', 'api-types.ts'), 'utf8')
  if (readFileSync(fresh, 'utf8') !== committed) {
    console.error('src/lib/api-types.ts is out of date with openapi.json: run `npm run gen:types`.')
    process.exit(1)
  }
  console.log('src/lib/api-types.ts matches openapi.json.')
} finally {
  rmSync(dir, { recursive: true, force: true })
}
