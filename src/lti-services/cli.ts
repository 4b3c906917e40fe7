import { parseArgs } from 'node:util';
import { loadConfig } from '../config/index.js';
import { createDatabase, type Db, migrateToLatest, pgliteDirFor } from '../db/index.js';
import { countOutbox, listOutbox, requeueScores } from './repository.js';
import type { OutboxStatus } from './tables.js';

/**
 * `npm run cli -- outbox list|retry`: what the score outbox holds, and resending what the platform
 * refused once the cause is fixed. `runOutbox` works on an open database so tests drive it directly.
 */
export interface OutboxCliContext {
  db: Db;
  out(text: string): void;
  err(text: string): void;
}

const USAGE = `Usage: npm run cli -- outbox <action>

  list [--status pending|failed|sent|superseded|all] [--limit N] [--json]
        scores waiting, refused (failed) or sent; default: failed and pending
  retry <id> [<id> …]
  retry --failed
        send again now: the given scores, or every failed one
`;

const STATUSES: OutboxStatus[] = ['pending', 'failed', 'sent', 'superseded'];

export async function runOutbox(ctx: OutboxCliContext, args: string[]): Promise<number> {
  const [action, ...rest] = args;
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(rest);
  } catch (error) {
    ctx.err(`${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;

  if (action === 'list') {
    const status = values.status ?? 'failed,pending';
    const statuses = status === 'all' ? STATUSES : (status.split(',') as OutboxStatus[]);
    if (statuses.some((s) => !STATUSES.includes(s))) {
      ctx.err(`Unknown status "${status}".\n${USAGE}`);
      return 2;
    }
    const limit = values.limit === undefined ? 50 : Number(values.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) {
      ctx.err('--limit must be an integer from 1 to 10000\n');
      return 2;
    }
    const rows = await listOutbox(ctx.db, { statuses, limit });
    if (values.json) {
      // No learner identifier beyond our own ids: the platform's user id stays in the database.
      const shown = rows.map(({ user_id: _userId, ...r }) => r);
      ctx.out(`${JSON.stringify(shown, null, 2)}\n`);
      return 0;
    }
    const counts = await countOutbox(ctx.db);
    ctx.out(
      `Outbox: ${counts.pending} pending, ${counts.failed} failed, ${counts.sent} sent, ${counts.superseded} superseded.\n`,
    );
    for (const r of rows) {
      const when =
        r.status === 'pending'
          ? `next attempt ${r.next_attempt_at.toISOString()}`
          : `updated ${r.updated_at.toISOString()}`;
      ctx.out(
        `${r.id}  ${r.status.padEnd(10)} attempts ${String(r.attempts).padStart(3)}  ${when}\n` +
          `  module ${r.module_id ?? '-'}  line item ${r.lineitem_url}\n` +
          (r.last_error ? `  last error: ${r.last_error}\n` : ''),
      );
    }
    return 0;
  }

  if (action === 'retry') {
    if (values.failed && positionals.length > 0) {
      ctx.err(`Give ids or --failed, not both.\n${USAGE}`);
      return 2;
    }
    if (!values.failed && positionals.length === 0) {
      ctx.err(USAGE);
      return 2;
    }
    const bad = positionals.filter((id) => !/^[0-9a-f-]{36}$/i.test(id));
    if (bad.length > 0) {
      ctx.err(`Not an outbox id: ${bad.join(', ')}\n`);
      return 2;
    }
    const n = values.failed
      ? await requeueScores(ctx.db, { allFailed: true })
      : await requeueScores(ctx.db, { ids: positionals });
    ctx.out(`${n} score(s) will be sent again by the next outbox pass.\n`);
    return n === 0 && positionals.length > 0 ? 1 : 0;
  }

  ctx.err(USAGE);
  return action === undefined || action === 'help' ? 0 : 2;
}

function parse(args: string[]) {
  return parseArgs({
    args,
    options: {
      status: { type: 'string' },
      limit: { type: 'string' },
      json: { type: 'boolean' },
      failed: { type: 'boolean' },
    },
    allowPositionals: true,
    strict: true,
  });
}

export async function outboxCommand(args: string[]): Promise<number> {
  const config = loadConfig(process.env, { persistSecret: true });
  const handle = await createDatabase({ databaseUrl: config.databaseUrl, pgliteDataDir: pgliteDirFor(config.dataDir) });
  try {
    if (config.migrateOnStart) await migrateToLatest(handle.db);
    return await runOutbox(
      { db: handle.db, out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t) },
      args,
    );
  } finally {
    await handle.close();
  }
}
