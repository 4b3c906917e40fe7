import { parseArgs } from 'node:util';
import type { CliContext } from '../common/cli-context.js';
import type { Db } from '../db/index.js';
import { countOutbox, findRegistrationsByRef, listOutbox, requeueScores, retargetScores } from './repository.js';
import type { OutboxStatus } from './tables.js';

/**
 * `npm run cli -- outbox list|retry|retarget`: what the score outbox holds (claims and holds included),
 * resending what failed once the cause is fixed, and moving the pending scores of a replaced registration
 * to the one that replaced it. `runOutbox` works on an open database so tests drive it directly.
 * docs/score-outbox.md describes the states.
 */
export interface OutboxCliContext {
  db: Db;
  out(text: string): void;
  err(text: string): void;
}

const USAGE = `Usage: npm run cli -- outbox <action>

  list [--status pending|failed|sent|superseded|all] [--limit N] [--json]
        scores waiting (pending, held ones with their reason), given up (failed) or sent, with who holds
        a claim on them; default: failed and pending
  retry <id> [<id> …]
  retry --failed
        send again now, with a new 7-day retry window: the given scores, or every failed one
  retarget --from <client ID or registration id> --to <client ID or registration id> [--issuer <iss>]
        the pending scores of a replaced registration (same platform and deployment, new client ID) go
        to the registration that replaced it, and are sent by the next pass
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
      `Outbox: ${counts.pending} pending (${counts.held} held for an operator, ${counts.claimed} claimed), ` +
        `${counts.failed} failed, ${counts.sent} sent, ${counts.superseded} superseded.\n`,
    );
    const now = Date.now();
    for (const r of rows) {
      const when =
        r.status === 'pending'
          ? r.held_reason
            ? 'held'
            : `next attempt ${r.next_attempt_at.toISOString()}`
          : `updated ${r.updated_at.toISOString()}`;
      const registration = r.registration_client_id
        ? `client ID ${r.registration_client_id}${r.registration_removed_at ? ' (removed)' : ''}`
        : `${r.registration_id} (unknown)`;
      const claim =
        r.locked_by && r.locked_until
          ? r.locked_until.getTime() > now
            ? `  claimed by ${r.locked_by} until ${r.locked_until.toISOString()}\n`
            : `  claim of ${r.locked_by} expired ${r.locked_until.toISOString()}: any instance takes it over\n`
          : '';
      ctx.out(
        `${r.id}  ${r.status.padEnd(10)} attempts ${String(r.attempts).padStart(3)}  ${when}\n` +
          `  registration ${registration}  module ${r.module_id ?? '-'}\n` +
          `  line item ${r.lineitem_url}\n` +
          claim +
          (r.held_reason ? `  held: ${r.held_reason}\n` : '') +
          (r.waiting_for_platform && r.status === 'pending'
            ? '  waiting for the platform: sent as soon as its token endpoint answers again\n'
            : '') +
          (r.last_error && r.last_error !== r.held_reason ? `  last error: ${r.last_error}\n` : ''),
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

  if (action === 'retarget') return retarget(ctx, values, positionals);

  ctx.err(USAGE);
  return action === undefined || action === 'help' ? 0 : 2;
}

async function retarget(
  ctx: OutboxCliContext,
  values: ReturnType<typeof parse>['values'],
  positionals: string[],
): Promise<number> {
  if (positionals.length > 0 || !values.from || !values.to) {
    ctx.err(`outbox retarget needs --from and --to (and nothing else).\n${USAGE}`);
    return 2;
  }
  const resolve = async (ref: string, side: 'from' | 'to') => {
    const found = await findRegistrationsByRef(ctx.db, ref, values.issuer);
    if (found.length === 0) {
      ctx.err(
        `--${side} ${ref}: no registration has this client ID or id${values.issuer ? ` for ${values.issuer}` : ''}.\n`,
      );
      return null;
    }
    if (found.length > 1) {
      ctx.err(`--${side} ${ref}: several platforms use this client ID; name one with --issuer.\n`);
      return null;
    }
    return found[0] ?? null;
  };
  const from = await resolve(values.from, 'from');
  if (!from) return 1;
  const to = await resolve(values.to, 'to');
  if (!to) return 1;
  if (from.id === to.id) {
    ctx.err('--from and --to name the same registration.\n');
    return 2;
  }
  if (to.removed_at) {
    ctx.err(`The registration of client ID ${to.client_id} is removed: restore it, or re-target to an active one.\n`);
    return 1;
  }
  // The scores name learners by the platform's user ids and its line items by URL: they only make sense
  // on the same platform, and a replacement registration serves the same deployment.
  if (to.issuer !== from.issuer) {
    ctx.err(
      `Client ID ${from.client_id} belongs to ${from.issuer} and client ID ${to.client_id} to ${to.issuer}: ` +
        'scores only move between registrations of one platform.\n',
    );
    return 1;
  }
  if (!from.deployment_ids.some((d) => to.deployment_ids.includes(d))) {
    ctx.err(
      `Client ID ${to.client_id} serves deployment(s) ${to.deployment_ids.join(', ')}, not ` +
        `${from.deployment_ids.join(', ')}: it does not replace client ID ${from.client_id}.\n`,
    );
    return 1;
  }
  const { moved, busy } = await retargetScores(ctx.db, { fromRegistrationId: from.id, toRegistrationId: to.id });
  ctx.out(
    `${moved} pending score(s) of client ID ${from.client_id} now go to client ID ${to.client_id} ` +
      `(${to.name}); the next outbox pass sends them.\n` +
      (busy > 0 ? `${busy} score(s) are being tried right now: run the command again in a few minutes.\n` : ''),
  );
  return 0;
}

function parse(args: string[]) {
  return parseArgs({
    args,
    options: {
      status: { type: 'string' },
      limit: { type: 'string' },
      json: { type: 'boolean' },
      failed: { type: 'boolean' },
      from: { type: 'string' },
      to: { type: 'string' },
      issuer: { type: 'string' },
    },
    allowPositionals: true,
    strict: true,
  });
}

export async function outboxCommand(args: string[], cli: CliContext): Promise<number> {
  return runOutbox({ db: await cli.db(), out: cli.out, err: cli.err }, args);
}
