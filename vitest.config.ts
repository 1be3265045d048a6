import {defineConfig} from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // toThrowAirlockError('CODE'): error class and code both checked.
    setupFiles: ['test/matchers.ts', 'test/setup-env.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Integration tests start real processes and git; two workers match the 2-core machines. The
    // suite keeps both cores busy (CPU-bound, not waiting on children): measured on six integration
    // files, 2 workers 137 s, 3 workers 145 s, 4 workers 149 s, each with more CPU time.
    maxWorkers: 2,
  },
})
