import { defineConfig } from 'vitest/config';

// Two projects: `unit` needs nothing running; `integration` (*.int.test.ts) talks to real
// HAPI FHIR servers and Redis, started by the global setup when they are not already up.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/**/*.test.ts'],
          globalSetup: ['test/setup/build-ui.ts'],
          exclude: ['test/**/*.int.test.ts'],
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/**/*.int.test.ts'],
          globalSetup: ['test/setup/build-ui.ts', 'test/servers/global-setup.ts'],
          testTimeout: 120_000,
          hookTimeout: 600_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
