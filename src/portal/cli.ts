import { parseArgs } from 'node:util';
import type { CliContext } from '../common/cli-context.js';
import type { Db } from '../db/index.js';
import { DomainError } from '../http/errors.js';
import * as repo from './repository.js';
import { normaliseUsername } from './rules.js';
import {
  auditEvent,
  CLI_ACTOR,
  createToken,
  createUser,
  requireUser,
  resetPassword,
  setUserDisabled,
} from './service.js';

const USAGE = `Usage: npm run cli -- users <action> …

  add <username> --role fund_staff --fund <slug> [--name "Prénom Nom"] [--password-stdin]
  add <username> --role operator [--name "Prénom Nom"] [--password-stdin]
        creates an account; without --password-stdin a provisional password is printed once
        and must be changed at the first sign-in
  list                                   every account, its role, fund and state
  disable <username> | enable <username> suspends (signs out, tokens stop working) or restores
  reset-password <username>              prints a new provisional password once; signs the account out
  tokens create <username> --name <n> [--days <n>]   prints a personal API token once
  tokens list <username>
  tokens revoke <username> <token-id>
  audit [--limit <n>]                    latest downloads and account events
`;

export interface CliIo {
  out(text: string): void;
  err(text: string): void;
  readStdin(): Promise<string>;
}

const processIo: CliIo = {
  out: (t) => process.stdout.write(t),
  err: (t) => process.stderr.write(t),
  readStdin: async () => {
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  },
};

/** `npm run cli -- users …`: one action on the configured database of the CLI context. */
export async function usersCommand(args: string[], cli: CliContext): Promise<number> {
  return runUsersCommand(await cli.db(), args, { ...processIo, out: cli.out, err: cli.err });
}

/** The command on an open database (tests call it directly). */
export async function runUsersCommand(db: Db, args: string[], io: CliIo): Promise<number> {
  const [action, ...rest] = args;
  try {
    switch (action) {
      case 'add':
        return await add(db, rest, io);
      case 'list':
        return await list(db, io);
      case 'disable':
      case 'enable':
        return await toggle(db, rest, io, action === 'disable');
      case 'reset-password':
        return await reset(db, rest, io);
      case 'tokens':
        return await tokens(db, rest, io);
      case 'audit':
        return await audit(db, rest, io);
      default:
        io.err(USAGE);
        return 2;
    }
  } catch (error) {
    if (error instanceof DomainError) {
      io.err(`${error.publicMessage}\n`);
      return 1;
    }
    if (error instanceof TypeError && 'code' in error && String(error.code).startsWith('ERR_PARSE_ARGS')) {
      io.err(`${error.message}\n${USAGE}`);
      return 2;
    }
    throw error;
  }
}

function one(positionals: string[], what: string, io: CliIo): string | undefined {
  if (positionals.length !== 1) {
    io.err(`Expected exactly one ${what}.\n${USAGE}`);
    return undefined;
  }
  return positionals[0];
}

async function add(db: Db, args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      role: { type: 'string' },
      fund: { type: 'string' },
      name: { type: 'string' },
      'password-stdin': { type: 'boolean' },
    },
  });
  const username = one(positionals, 'username', io);
  if (!username) return 2;
  if (values.role !== 'fund_staff' && values.role !== 'operator') {
    io.err(`--role must be fund_staff or operator.\n${USAGE}`);
    return 2;
  }
  const password = values['password-stdin'] ? (await io.readStdin()).replace(/\r?\n$/, '') : undefined;
  const { user, generatedPassword } = await createUser(db, {
    username,
    displayName: values.name ?? username,
    role: values.role,
    fundSlug: values.fund ?? null,
    ...(password !== undefined ? { password } : {}),
  });
  await auditEvent(db, CLI_ACTOR, 'account.created', {
    username: user.username,
    role: user.role,
    fund: user.fund_slug,
  });
  io.out(`Created ${user.role} ${user.username}${user.fund_slug ? ` (fund ${user.fund_slug})` : ''}.\n`);
  if (generatedPassword) {
    io.out(`Provisional password (shown once, to be changed at first sign-in): ${generatedPassword}\n`);
  }
  return 0;
}

async function list(db: Db, io: CliIo): Promise<number> {
  const users = await repo.listUsers(db);
  if (users.length === 0) {
    io.out('No accounts yet.\n');
    return 0;
  }
  const rows = users.map((u) => [
    u.username,
    u.role,
    u.fund_slug ?? '*',
    u.disabled_at ? 'disabled' : u.must_change_password ? 'provisional-password' : 'active',
    u.display_name,
  ]);
  io.out(table(['username', 'role', 'fund', 'state', 'name'], rows));
  return 0;
}

async function toggle(db: Db, args: string[], io: CliIo, disable: boolean): Promise<number> {
  const username = one(args, 'username', io);
  if (!username) return 2;
  await setUserDisabled(db, username, disable);
  await auditEvent(db, CLI_ACTOR, disable ? 'account.disabled' : 'account.enabled', {
    username: normaliseUsername(username),
  });
  io.out(disable ? `Disabled ${username}: signed out, tokens refused.\n` : `Enabled ${username}.\n`);
  return 0;
}

async function reset(db: Db, args: string[], io: CliIo): Promise<number> {
  const username = one(args, 'username', io);
  if (!username) return 2;
  const { password } = await resetPassword(db, username);
  await auditEvent(db, CLI_ACTOR, 'account.password_reset', { username: normaliseUsername(username) });
  io.out(`New provisional password for ${username} (shown once, to be changed at sign-in): ${password}\n`);
  return 0;
}

async function tokens(db: Db, args: string[], io: CliIo): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === 'create') {
    const { values, positionals } = parseArgs({
      args: rest,
      allowPositionals: true,
      options: { name: { type: 'string' }, days: { type: 'string' } },
    });
    const username = one(positionals, 'username', io);
    if (!username) return 2;
    if (values.days !== undefined && !/^\d+$/.test(values.days)) {
      io.err('--days must be a whole number of days.\n');
      return 2;
    }
    const user = await requireUser(db, username);
    const created = await createToken(db, user.id, values.name ?? '', values.days ? Number(values.days) : null);
    await auditEvent(db, CLI_ACTOR, 'token.created', { username: user.username, tokenId: created.id });
    io.out(`Token ${created.id} for ${user.username} (shown once, keep it secret):\n${created.token}\n`);
    return 0;
  }
  if (sub === 'list') {
    const username = one(rest, 'username', io);
    if (!username) return 2;
    const user = await requireUser(db, username);
    const rows = (await repo.listTokens(db, user.id)).map((t) => [
      t.id,
      `${t.prefix}…`,
      t.name,
      t.created_at.toISOString(),
      t.last_used_at?.toISOString() ?? '-',
      t.revoked_at ? 'revoked' : t.expires_at && t.expires_at.getTime() <= Date.now() ? 'expired' : 'active',
    ]);
    io.out(rows.length ? table(['id', 'prefix', 'name', 'created', 'last used', 'state'], rows) : 'No tokens.\n');
    return 0;
  }
  if (sub === 'revoke') {
    if (rest.length !== 2) {
      io.err(USAGE);
      return 2;
    }
    const user = await requireUser(db, rest[0] as string);
    const tokenId = rest[1] as string;
    if (!/^[0-9a-f-]{36}$/i.test(tokenId) || !(await repo.revokeToken(db, user.id, tokenId))) {
      io.err(`No active token ${tokenId} for ${user.username}.\n`);
      return 1;
    }
    await auditEvent(db, CLI_ACTOR, 'token.revoked', { username: user.username, tokenId });
    io.out(`Revoked token ${tokenId}.\n`);
    return 0;
  }
  io.err(USAGE);
  return 2;
}

async function audit(db: Db, args: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({ args, options: { limit: { type: 'string' } } });
  const limit = Math.min(Math.max(Number(values.limit ?? 50) || 50, 1), 1000);
  const rows = (await repo.listAudit(db, { limit })).map((e) => [
    e.at.toISOString(),
    `${e.actor_username}${e.actor_fund_slug ? `@${e.actor_fund_slug}` : ''}`,
    e.via,
    e.action,
    JSON.stringify(e.details),
    e.row_count === null ? '-' : String(e.row_count),
    e.status,
  ]);
  io.out(
    rows.length ? table(['at', 'who', 'via', 'action', 'details', 'rows', 'status'], rows) : 'Audit log is empty.\n',
  );
  return 0;
}

function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    `${cells
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd()}\n`;
  return line(headers) + rows.map(line).join('');
}
