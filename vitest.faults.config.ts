import { defineConfig } from 'vitest/config'

/**
 * The fault suite (`npm run test:faults`, issue 13): kills, restarts, refusals, slow and failing
 * dependencies, load and bad input. Not part of `npm test`; scripts/test-faults.mjs runs it and prints
 * one table of scenario × trials × outcome from what the tests record (test/faults/support/table.ts).
 */
export default defineConfig({
  test: {
    include: ['test/faults/**/*.test.ts'],
    testTimeout: 300_000,
    hookTimeout: 120_000,
    disableConsoleIntercept: true,
    globalSetup: ['test/support/global-setup.ts'],
    pool: 'forks',
    maxWorkers: 2,
  },
})
