/**
 * Émargement as the launch bench runs it: the production build (dist/, what `npm start` runs: `buildApp`
 * with every plugin the service registers, compiled by src/cli/build.mjs, on plain `node` with the start
 * script's flags) in its own process, listening on loopback. Forked by ./run.ts, which builds dist/ first
 * when a source is newer, with the service's ordinary environment variables (PORT, PUBLIC_URL, APP_SECRET,
 * DATABASE_URL, LTI_REGISTRATIONS_FILE, LOG_LEVEL…); without DATABASE_URL it runs on a fresh in-memory PGlite.
 *
 * With BENCH_SQL_COUNT=1 (run.ts --sql) it counts the SQL statements it sends, by text, between
 * `sql-count-start` and `sql-count-stop` messages, answered by `{ type: 'sql-count', statements }`.
 */
import { createRequire } from 'node:module';
import { PGlite } from '@electric-sql/pglite';
import { buildApp } from '../../dist/src/app.js';
import { loadConfig } from '../../dist/src/config/index.js';
import { createDatabase } from '../../dist/src/db/index.js';
import { answerProfilerMessages } from './profiler.mjs';

/** @type {Map<string, number>} */
const statements = new Map();
let counting = false;
const count = (/** @type {unknown} */ sql) => {
  if (!counting) return;
  const text = typeof sql === 'string' ? sql : String(sql?.text ?? '?');
  statements.set(text, (statements.get(text) ?? 0) + 1);
};
if (process.env.BENCH_SQL_COUNT === '1') {
  // The service's own pg (bench/node_modules holds another copy, for ltijs-sequelize).
  const pg = createRequire(new URL('../../package.json', import.meta.url))('pg');
  // Both drivers' entry points: Kysely's PostgresDriver calls Client#query, our PGlite dialect PGlite#query.
  for (const proto of [pg.Client.prototype, PGlite.prototype]) {
    const original = proto.query;
    proto.query = function (...a) {
      count(a[0]);
      return original.apply(this, a);
    };
  }
}
process.on('message', (/** @type {{ type?: string }} */ message) => {
  if (message.type === 'sql-count-start') {
    statements.clear();
    counting = true;
  } else if (message.type === 'sql-count-stop') {
    counting = false;
    process.send?.({ type: 'sql-count', statements: [...statements] });
  }
});

/** @returns {Promise<number>} */
async function start() {
  const config = loadConfig(process.env);
  // Without DATABASE_URL the service would persist PGlite under DATA_DIR; the bench wants a fresh one.
  const database = config.databaseUrl ? undefined : await createDatabase({});
  const app = await buildApp({ config, ...(database ? { database, closeDatabase: true } : {}) });
  await app.listen({ port: config.port, host: '127.0.0.1' });
  const address = app.server.address();
  return typeof address === 'object' && address ? address.port : config.port;
}

answerProfilerMessages();
start().then(
  (port) => process.send?.({ type: 'ready', port }),
  (error) => {
    process.send?.({ type: 'error', message: error instanceof Error ? error.stack : String(error) });
    process.exit(1);
  },
);
process.on('disconnect', () => process.exit(0));
