import type { Logger } from 'pino';
import type { Config } from '../config/index.js';
import type { Db } from '../db/index.js';

/**
 * What every `npm run cli -- <command>` receives from the one bootstrap (src/cli/context.ts): the
 * configuration, the database and a logger, each made on first use (a command that needs no database
 * opens none), and the two output streams. The bootstrap closes what was opened and turns a thrown error
 * into a message and exit code 1, so a command only returns its exit code (0 done, 1 problem, 2 usage).
 */
export interface CliContext {
  /** The configuration from the environment (outside production a generated secret is kept under DATA_DIR). */
  config(): Config;
  /**
   * The configured database, opened once, migrated first when MIGRATE_ON_START is on (the default) as the
   * server does; `{ migrate: false }` on the first call leaves the migrations to the caller.
   */
  db(options?: { migrate?: boolean }): Promise<Db>;
  /** pino on stderr: warnings and errors only, unless LOG_LEVEL asks for more. */
  log(): Logger;
  out(text: string): void;
  err(text: string): void;
}
