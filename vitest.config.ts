import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The fault suite runs on its own (npm run test:faults).
    exclude: ['test/faults/**', '**/node_modules/**'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    disableConsoleIntercept: true,
    globalSetup: ['test/support/global-setup.ts'],
    // Two cores: files run in parallel processes, two at a time.
    pool: 'forks',
    maxWorkers: 2,
  },
})
