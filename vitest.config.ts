import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/helpers/global-setup.ts'],
    pool: 'forks',
    // Tests wait on events and readiness, never on a clock: these limits only stop a test that hangs. They
    // are set for a loaded 2-core machine (the suite next to a CPU-heavy process), where starting an app on
    // a cloned database or a browser can take a minute; a test file sets no shorter limit of its own.
    testTimeout: 300_000,
    hookTimeout: 300_000,
    // expect.poll waits for a condition; its limit, like the ones above, only ends a wait that would hang.
    expect: { poll: { timeout: 120_000 } },
    // Each file gets its own database (a PGlite clone or a PostgreSQL database from a template),
    // so files run in parallel; tests inside a file run in order.
    fileParallelism: true,
    // At least two files at a time, even on a 2-core machine (vitest's default there is one): a good part of
    // the suite waits (a real browser running in real time, PostgreSQL, child processes), and a second file
    // fills that wait. Every file has its own database and its own slice of test ports, so they never collide.
    maxWorkers: Math.max(2, availableParallelism() - 1),
  },
});
