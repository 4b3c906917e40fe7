import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/helpers/global-setup.ts'],
    pool: 'forks',
    // Patience, not deadlines: on a 2-core CI shared with other work a test that takes 2 s alone can take
    // 40 s (password hashing at production cost, PGlite clones, Chromium). A test that hangs still fails.
    testTimeout: 180_000,
    hookTimeout: 300_000,
    // Each file gets its own database (a PGlite clone or a PostgreSQL database from a template),
    // so files run in parallel; tests inside a file run in order.
    fileParallelism: true,
  },
});
