import { defineConfig } from 'vitest/config';

// Two projects: fast unit tests beside the code, and integration tests against the real
// Docker engine, registry and PostgreSQL started by scripts/services.sh. Both run in CI.
export default defineConfig({
  test: {
    // A private TMPDIR for the run, and a failed run if temp dirs, containers or volumes remain.
    globalSetup: ['test/support/leak-check.ts'],
    projects: [
      {
        test: {
          name: 'unit',
          include: ['src/**/*.test.ts', 'test/**/*.test.ts', 'bench/**/*.test.ts'],
          exclude: ['**/*.int.test.ts', 'node_modules/**'],
          setupFiles: ['test/support/cleanup.ts'],
          testTimeout: 20_000,
        },
      },
      {
        test: {
          name: 'integration',
          include: ['src/**/*.int.test.ts', 'test/**/*.int.test.ts'],
          setupFiles: ['test/support/cleanup.ts'],
          testTimeout: 240_000,
          hookTimeout: 240_000,
          // The engine and registry are shared: keep files from starving each other on 2 cores.
          fileParallelism: false,
        },
      },
    ],
  },
});
