import type { CliContext } from '../common/cli-context.js';
import { migrateToLatest } from '../db/index.js';

/** `npm run migrate`: applies pending migrations to the configured database. */
export async function migrateCommand(_args: string[], ctx: CliContext): Promise<number> {
  const db = await ctx.db({ migrate: false });
  const applied = await migrateToLatest(db);
  ctx.out(applied.length ? `Applied: ${applied.join(', ')}\n` : 'Nothing to apply: up to date.\n');
  return 0;
}
