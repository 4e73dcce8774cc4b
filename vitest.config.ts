import { defineConfig } from 'vitest/config'

// One suite, two backends: `unit` runs everything on the embedded twins; `services` runs the
// seam and server suites again against real PostgreSQL, Redis and Kafka (NATTER_TEST_SERVICES=1).
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['tests/unit/**/*.test.ts', 'tests/seams/**/*.test.ts', 'tests/server/**/*.test.ts', 'tests/fuzz/**/*.test.ts', 'tests/adversarial/**/*.test.ts', 'tests/deploy/**/*.test.ts'],
          globalSetup: ['tests/support/build.ts'],
          testTimeout: 30_000,
          hookTimeout: 60_000
        }
      },
      {
        test: {
          name: 'services',
          include: ['tests/unit/**/*.test.ts', 'tests/seams/**/*.test.ts', 'tests/server/**/*.test.ts', 'tests/fuzz/**/*.test.ts', 'tests/adversarial/**/*.test.ts', 'tests/services/**/*.test.ts'],
          globalSetup: ['tests/support/build.ts'],
          env: { NATTER_TEST_SERVICES: '1' },
          testTimeout: 60_000,
          hookTimeout: 90_000,
          // Real services are shared state: one file at a time keeps Kafka groups and tables apart.
          fileParallelism: false
        }
      },
      {
        test: {
          // Breaks the real services on purpose (kills Kafka, stops PostgreSQL): never with the others.
          name: 'faults',
          include: ['tests/faults/**/*.test.ts'],
          globalSetup: ['tests/support/build.ts'],
          env: { NATTER_TEST_SERVICES: '1' },
          testTimeout: 180_000,
          hookTimeout: 120_000,
          fileParallelism: false
        }
      }
    ]
  }
})
