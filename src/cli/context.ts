import pino, { type Logger } from 'pino';
import type { CliContext } from '../common/cli-context.js';
import { type Config, ConfigError, loadConfig } from '../config/index.js';
import { createDatabase, type DatabaseHandle, migrateToLatest, pgliteDirFor } from '../db/index.js';
import { DomainError } from '../http/errors.js';
import { REDACT_PATHS } from '../http/logger.js';

export type { CliContext } from '../common/cli-context.js';

export interface CliOptions {
  /** Default: process.env. */
  env?: Record<string, string | undefined>;
  /** Default: process.stdout / process.stderr. */
  out?: (text: string) => void;
  err?: (text: string) => void;
  /** Opens the database of a configuration (default: createDatabase on DATABASE_URL, or PGlite under DATA_DIR). */
  openDatabase?: (config: Config) => Promise<DatabaseHandle>;
}

const openConfigured = (config: Config) =>
  createDatabase({ databaseUrl: config.databaseUrl, pgliteDataDir: pgliteDirFor(config.dataDir) });

/**
 * The one start-up and tear-down of every CLI command: builds the context (configuration, database and
 * logger made on first use), runs the command, closes the database whatever happened, and applies the one
 * error policy (`exitCodeOf`). Resolves to the exit code; never rejects.
 */
export async function runWithContext(
  run: (ctx: CliContext) => Promise<number>,
  options: CliOptions = {},
): Promise<number> {
  const env = options.env ?? process.env;
  const out = options.out ?? ((t: string) => void process.stdout.write(t));
  const err = options.err ?? ((t: string) => void process.stderr.write(t));
  const open = options.openDatabase ?? openConfigured;
  let config: Config | undefined;
  let logger: Logger | undefined;
  let handle: Promise<DatabaseHandle> | undefined;

  const ctx: CliContext = {
    config: () => {
      config ??= loadConfig(env, { persistSecret: true });
      return config;
    },
    log: () => {
      logger ??= pino(
        {
          // Results go to stdout; the log only speaks up for problems, unless LOG_LEVEL asks for more.
          level: env.LOG_LEVEL || ctx.config().nodeEnv === 'test' ? ctx.config().logLevel : 'warn',
          redact: { paths: REDACT_PATHS, censor: '[redacted]' },
        },
        pino.destination({ fd: 2, sync: true }),
      );
      return logger;
    },
    db: async ({ migrate = true } = {}) => {
      handle ??= (async () => {
        const c = ctx.config();
        const opened = await open(c);
        if (migrate && c.migrateOnStart) {
          try {
            await migrateToLatest(opened.db);
          } catch (error) {
            await opened.close();
            throw error;
          }
        }
        return opened;
      })();
      return (await handle).db;
    },
    out,
    err,
  };

  let code: number;
  try {
    code = await run(ctx);
  } catch (error) {
    code = exitCodeOf(error, err);
    if (logger) logger.debug({ err: error }, 'command failed');
  }
  if (handle) {
    try {
      await (await handle).close();
    } catch (error) {
      // Opening failed (already reported above), or closing did: either way the command did not end cleanly.
      if (code === 0) code = exitCodeOf(error, err);
    }
  }
  return code;
}

/**
 * The one error policy: whatever a command throws is reported on stderr as one line and exits 1. A
 * configuration error names every bad variable; a domain error shows its public message and its detail.
 */
export function exitCodeOf(error: unknown, err: (text: string) => void): number {
  if (error instanceof ConfigError) err(`${error.message}\n`);
  else if (error instanceof DomainError) err(`${error.publicMessage}${error.detail ? ` (${error.detail})` : ''}\n`);
  else if (error instanceof Error) err(`${error.message}\n`);
  else err(`${String(error)}\n`);
  return 1;
}
