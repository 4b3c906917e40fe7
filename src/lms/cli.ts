import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import type { CliContext } from '../common/cli-context.js';
import type { Db } from '../db/index.js';
import { addCredential, CredentialError, listCredentials, revokeCredential } from './lrs.js';
import { topCounts } from './rules.js';
import {
  importLmsFile,
  importMappingFile,
  MappingError,
  mapLmsUser,
  type RecomputeReport,
  recomputeLmsTotals,
  summariseUnmatched,
  unmapLmsUser,
} from './service.js';

const USAGE = `Usage: npm run cli -- lms <subcommand>

  import <file…> [--format tracking-log|xapi] [--issuer <LMS URL>] [--course <course key>]…
         [--max-errors <n>] [--no-recompute] [--list] [--csv <file>]
      Import Open edX tracking logs (raw JSON lines, or behind a logging prefix such as Tutor's or
      syslog's, or wrapped by Docker's json-file driver) or xAPI statements (one per line, a JSON array,
      a pretty-printed document or an LRS StatementResult); .gz accepted; streamed. Only the events of the
      courses the tool knows (launched at least once, of --issuer when given) and of each --course are
      stored; the others are counted by course. Importing a file again changes nothing. Malformed lines
      are counted and the first ones listed with their line numbers. Then recomputes the estimates.
  map <lms-username> <learner>
      Credit this LMS user's events to a learner (learner id, LTI sub or e-mail), then recompute.
  map --file <mapping.csv>
      The same for every "lms_username,learner" line of a CSV file.
  unmap <lms-username>
      Remove an explicit mapping, then recompute.
  recompute [--list] [--csv <file>]
      Rebuild every learner × course estimate (lms-sessions-v1) and summarise the LMS users still
      unmatched (the 20 with most events); --list prints them all, --csv writes them all to a file.
  lrs-credentials add --issuer <LMS URL> [--label <text>]
      Create a credential for the xAPI endpoint (/xapi/statements) for one registered LMS. The secret
      is shown once; only its scrypt hash is kept.
  lrs-credentials list
  lrs-credentials revoke <key>
`;

export interface LmsCliIo {
  out(text: string): void;
  err(text: string): void;
}

const processIo: LmsCliIo = {
  out: (t) => process.stdout.write(t),
  err: (t) => process.stderr.write(t),
};

/** `npm run cli -- lms …`. Returns the exit code. */
export async function runLmsCommand(args: string[], cli: CliContext): Promise<number> {
  const [sub] = args;
  if (!sub || !['import', 'map', 'unmap', 'recompute', 'lrs-credentials'].includes(sub)) {
    cli.out(USAGE);
    return sub && sub !== 'help' ? 2 : 0;
  }
  return lmsCommand(await cli.db(), args, cli);
}

/** The command on an open database (tests call it directly). */
export async function lmsCommand(db: Db, args: string[], io: LmsCliIo = processIo): Promise<number> {
  const [sub, ...rest] = args;
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(rest);
  } catch (error) {
    io.err(`${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  switch (sub) {
    case 'import': {
      if (positionals.length === 0) {
        io.err(`Give at least one file.\n${USAGE}`);
        return 2;
      }
      const format = values.format ?? null;
      if (format !== null && format !== 'tracking-log' && format !== 'xapi') {
        io.err(`--format must be tracking-log or xapi, not "${format}".\n`);
        return 2;
      }
      const maxErrors = values['max-errors'] === undefined ? 20 : Number(values['max-errors']);
      if (!Number.isInteger(maxErrors) || maxErrors < 0) {
        io.err('--max-errors must be a whole number.\n');
        return 2;
      }
      let code = 0;
      for (const file of positionals) {
        let r: Awaited<ReturnType<typeof importLmsFile>>;
        try {
          r = await importLmsFile(db, file, {
            format,
            issuer: values.issuer ?? null,
            courses: values.course ?? [],
            maxErrors,
          });
        } catch (error) {
          io.err(`${file}: ${(error as Error).message}\n`);
          code = 1;
          continue;
        }
        io.out(
          `${file}: ${r.lines} lines, ${r.events} events, ${r.inserted} new, ${r.duplicates} already imported, ` +
            `${r.malformed} malformed, skipped ${r.skipped.anonymous} anonymous and ${r.skipped.noCourse} without course\n`,
        );
        if (r.otherCourses.size > 0) {
          const n = [...r.otherCourses.values()].reduce((a, b) => a + b, 0);
          const top = topCounts(r.otherCourses, 3)
            .map(([course, count]) => `${course} ${count}`)
            .join(', ');
          io.out(
            `  other courses, not stored: ${n} events in ${r.otherCourses.size} courses (most: ${top}` +
              `${r.otherCourses.size > 3 ? ', …' : ''})\n`,
          );
          if (r.events === 0) {
            io.out('  (kept: the courses launched in the tool at least once, and those named with --course)\n');
          }
        }
        for (const e of r.errors) io.out(`  line ${e.line}: ${e.reason}\n`);
        if (r.malformed > r.errors.length) io.out(`  … and ${r.malformed - r.errors.length} more malformed lines\n`);
      }
      if (!values['no-recompute']) await printRecompute(io, await recomputeLmsTotals(db), values);
      return code;
    }
    case 'map': {
      try {
        if (values.file) {
          const r = await importMappingFile(db, values.file);
          io.out(`${r.mapped} mappings recorded from ${values.file}\n`);
          for (const e of r.errors) io.out(`  line ${e.line}: ${e.reason}\n`);
          await printRecompute(io, await recomputeLmsTotals(db), values);
          return r.errors.length > 0 ? 1 : 0;
        }
        const [username, learner] = positionals;
        if (!username || !learner || positionals.length !== 2) {
          io.err(`Give an LMS username and a learner, or --file.\n${USAGE}`);
          return 2;
        }
        const learnerId = await mapLmsUser(db, username, learner);
        io.out(`${username} → learner ${learnerId}\n`);
      } catch (error) {
        if (!(error instanceof MappingError)) throw error;
        io.err(`${error.message}\n`);
        return 1;
      }
      await printRecompute(io, await recomputeLmsTotals(db), values);
      return 0;
    }
    case 'unmap': {
      const [username] = positionals;
      if (!username) {
        io.err(`Give an LMS username.\n${USAGE}`);
        return 2;
      }
      if (!(await unmapLmsUser(db, username))) {
        io.err(`No mapping for "${username}".\n`);
        return 1;
      }
      io.out(`${username}: mapping removed\n`);
      await printRecompute(io, await recomputeLmsTotals(db), values);
      return 0;
    }
    case 'lrs-credentials':
      return credentialsCommand(db, positionals, values, io);
    default: {
      await printRecompute(io, await recomputeLmsTotals(db), values);
      return 0;
    }
  }
}

function parse(args: string[]) {
  return parseArgs({
    args,
    options: {
      format: { type: 'string' },
      issuer: { type: 'string' },
      'max-errors': { type: 'string' },
      'no-recompute': { type: 'boolean', default: false },
      file: { type: 'string' },
      course: { type: 'string', multiple: true },
      list: { type: 'boolean', default: false },
      csv: { type: 'string' },
      label: { type: 'string' },
    },
    allowPositionals: true,
    strict: true,
  });
}

type Values = ReturnType<typeof parse>['values'];

async function credentialsCommand(db: Db, positionals: string[], values: Values, io: LmsCliIo): Promise<number> {
  const [action, key] = positionals;
  switch (action) {
    case 'add': {
      if (!values.issuer) {
        io.err(`Give the LMS: --issuer <LMS URL>.\n${USAGE}`);
        return 2;
      }
      try {
        const c = await addCredential(db, values.issuer, values.label ?? null);
        io.out(
          `Credential for ${c.issuer}${c.label ? ` (${c.label})` : ''}:\n` +
            `  key:    ${c.key}\n  secret: ${c.secret}\n` +
            "  (shown once: only its hash is kept; give both to the platform as its router's Basic username and password)\n",
        );
        return 0;
      } catch (error) {
        if (!(error instanceof CredentialError)) throw error;
        io.err(`${error.message}\n`);
        return 1;
      }
    }
    case 'list': {
      const all = await listCredentials(db);
      if (all.length === 0) io.out('No LRS credential.\n');
      for (const c of all) {
        io.out(
          `${c.key}\t${c.issuer}\t${c.label ?? ''}\tcreated ${c.createdAt.toISOString()}\t` +
            `${c.revokedAt ? `revoked ${c.revokedAt.toISOString()}` : 'active'}\n`,
        );
      }
      return 0;
    }
    case 'revoke': {
      if (!key) {
        io.err(`Give the key to revoke.\n${USAGE}`);
        return 2;
      }
      if (!(await revokeCredential(db, key))) {
        io.err(`No active credential "${key}".\n`);
        return 1;
      }
      io.out(`${key}: revoked (refused from now on)\n`);
      return 0;
    }
    default:
      io.err(`lrs-credentials add | list | revoke.\n${USAGE}`);
      return 2;
  }
}

function csvCell(value: string | number): string {
  const text = String(value);
  return /[",;\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

async function printRecompute(io: LmsCliIo, r: RecomputeReport, values: Values): Promise<void> {
  io.out(
    `Estimates (lms-sessions-v1): ${r.totals} learner × course totals, ${r.estimatedSeconds} s in all, ` +
      `${r.matchedUsers} LMS users matched, ${r.unmatched.length} unmatched\n`,
  );
  if (r.unmatched.length > 0) {
    const s = summariseUnmatched(r.unmatched, values.list ? r.unmatched.length : 20);
    const reasons = Object.entries(s.byReason)
      .filter(([, n]) => n > 0)
      .map(([reason, n]) => `${reason} ${n}`)
      .join(', ');
    io.out(
      `Unmatched: ${s.users} LMS users, ${s.events} events (${reasons}); never guessed, map them with "lms map"\n`,
    );
    for (const u of s.top) {
      io.out(`  unmatched: ${u.lmsUsername} in ${u.courseContextId} (${u.events} events, ${u.reason})\n`);
    }
    if (s.top.length < r.unmatched.length) {
      io.out(`  … and ${r.unmatched.length - s.top.length} more (--list prints them all, --csv <file> writes them)\n`);
    }
  }
  if (values.csv) {
    const lines = ['lms_username,course,events,reason'];
    for (const u of r.unmatched) {
      lines.push([u.lmsUsername, u.courseContextId, u.events, u.reason].map(csvCell).join(','));
    }
    await writeFile(values.csv, `${lines.join('\n')}\n`);
    io.out(`${r.unmatched.length} unmatched written to ${values.csv}\n`);
  }
}
