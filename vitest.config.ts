import {defineConfig} from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // toThrowAirlockError('CODE'): error class and code both checked.
    setupFiles: ['test/matchers.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Integration tests start real processes and git; two workers match the 2-core machines.
    maxWorkers: 2,
  },
})
