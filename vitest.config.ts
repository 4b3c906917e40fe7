import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/helpers/global-setup.ts'],
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Each file gets its own database (a PGlite clone or a PostgreSQL database from a template),
    // so files run in parallel; tests inside a file run in order.
    fileParallelism: true,
  },
});
