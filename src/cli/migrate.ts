import { loadConfig } from '../config/index.js';
import { createDatabase, migrateToLatest, pgliteDirFor } from '../db/index.js';

/** `npm run migrate`: applies pending migrations to the configured database and exits. */
export async function runMigrate(): Promise<void> {
  const config = loadConfig(process.env, { persistSecret: true });
  const handle = await createDatabase({ databaseUrl: config.databaseUrl, pgliteDataDir: pgliteDirFor(config.dataDir) });
  try {
    const applied = await migrateToLatest(handle.db);
    process.stdout.write(applied.length ? `Applied: ${applied.join(', ')}\n` : 'Nothing to apply: up to date.\n');
  } finally {
    await handle.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  runMigrate().catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  });
}
