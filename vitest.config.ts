import {fileURLToPath} from 'node:url'
import {defineConfig} from 'vitest/config'

// isomorphic-git's pure-JavaScript zlib (pako) is Node's zlib, as in the bundled CLI
// (scripts/bundle.js): modules vite loads get it from this alias, isomorphic-git as the
// repository layer requires it from test/pako-alias.ts.
const PAKO_SHIM = fileURLToPath(new URL('./control-plane/repo/pako-zlib.ts', import.meta.url))

export default defineConfig({
  resolve: {alias: [{find: /^pako$/, replacement: PAKO_SHIM}]},
  test: {
    // toThrowAirlockError('CODE'): error class and code both checked.
    setupFiles: ['test/pako-alias.ts', 'test/matchers.ts', 'test/setup-env.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Integration tests start real processes and git; two workers match the 2-core machines. The
    // suite keeps both cores busy (CPU-bound, not waiting on children): measured on six integration
    // files, 2 workers 137 s, 3 workers 145 s, 4 workers 149 s, each with more CPU time.
    maxWorkers: 2,
    // Unit tests share one module graph per worker (no fresh isolate per file): measured on 31 unit
    // files, 57.6 → 32.4 CPU seconds. Integration tests keep isolation (they start servers, set
    // process-wide state and spawn the CLI).
    // Each project names its files (a root `include` would be added to both and run every file twice).
    projects: [
      // engine-depth traps the Cedar WebAssembly instance on purpose (a trapped engine refuses
      // everything after): it runs isolated, so the files after it in a worker get a sound engine.
      {extends: true, test: {name: 'unit', include: ['test/unit/**/*.test.ts'], exclude: ['test/unit/policy/engine-depth.test.ts'], isolate: false}},
      {extends: true, test: {name: 'unit-isolated', include: ['test/unit/policy/engine-depth.test.ts']}},
      {extends: true, test: {name: 'integration', include: ['test/integration/**/*.test.ts']}},
    ],
  },
})
