import { parseArgs } from 'node:util';
import { loadConfig } from '../config/index.js';
import { createDatabase, type Db, pgliteDirFor } from '../db/index.js';
import {
  importLmsFile,
  importMappingFile,
  MappingError,
  mapLmsUser,
  type RecomputeReport,
  recomputeLmsTotals,
  unmapLmsUser,
} from './service.js';

const USAGE = `Usage: npm run cli -- lms <subcommand>

  import <file…> [--format tracking-log|xapi] [--issuer <LMS URL>] [--max-errors <n>] [--no-recompute]
      Import Open edX tracking logs or xAPI statements (one JSON per line, .gz accepted), streamed.
      Without --format each line says what it is. Importing a file again changes nothing. Malformed
      lines are counted and the first ones listed with their line numbers. Then recomputes the estimates.
  map <lms-username> <learner>
      Credit this LMS user's events to a learner (learner id, LTI sub or e-mail), then recompute.
  map --file <mapping.csv>
      The same for every "lms_username,learner" line of a CSV file.
  unmap <lms-username>
      Remove an explicit mapping, then recompute.
  recompute
      Rebuild every learner × course estimate (lms-sessions-v1) and list the LMS users still unmatched.
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
export async function runLmsCommand(args: string[]): Promise<number> {
  const [sub] = args;
  if (!sub || !['import', 'map', 'unmap', 'recompute'].includes(sub)) {
    process.stdout.write(USAGE);
    return sub && sub !== 'help' ? 2 : 0;
  }
  const config = loadConfig(process.env, { persistSecret: true });
  const handle = await createDatabase({ databaseUrl: config.databaseUrl, pgliteDataDir: pgliteDirFor(config.dataDir) });
  try {
    return await lmsCommand(handle.db, args, processIo);
  } finally {
    await handle.close();
  }
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
          r = await importLmsFile(db, file, { format, issuer: values.issuer ?? null, maxErrors });
        } catch (error) {
          io.err(`${file}: ${(error as Error).message}\n`);
          code = 1;
          continue;
        }
        io.out(
          `${file}: ${r.lines} lines, ${r.events} events, ${r.inserted} new, ${r.duplicates} already imported, ` +
            `${r.malformed} malformed, skipped ${r.skipped.anonymous} anonymous and ${r.skipped.noCourse} without course\n`,
        );
        for (const e of r.errors) io.out(`  line ${e.line}: ${e.reason}\n`);
        if (r.malformed > r.errors.length) io.out(`  … and ${r.malformed - r.errors.length} more malformed lines\n`);
      }
      if (!values['no-recompute']) printRecompute(io, await recomputeLmsTotals(db));
      return code;
    }
    case 'map': {
      try {
        if (values.file) {
          const r = await importMappingFile(db, values.file);
          io.out(`${r.mapped} mappings recorded from ${values.file}\n`);
          for (const e of r.errors) io.out(`  line ${e.line}: ${e.reason}\n`);
          printRecompute(io, await recomputeLmsTotals(db));
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
      printRecompute(io, await recomputeLmsTotals(db));
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
      printRecompute(io, await recomputeLmsTotals(db));
      return 0;
    }
    default: {
      printRecompute(io, await recomputeLmsTotals(db));
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
    },
    allowPositionals: true,
    strict: true,
  });
}

function printRecompute(io: LmsCliIo, r: RecomputeReport): void {
  io.out(
    `Estimates (lms-sessions-v1): ${r.totals} learner × course totals, ${r.estimatedSeconds} s in all, ` +
      `${r.matchedUsers} LMS users matched, ${r.unmatched.length} unmatched\n`,
  );
  for (const u of r.unmatched) {
    io.out(`  unmatched: ${u.lmsUsername} in ${u.courseContextId} (${u.events} events, ${u.reason})\n`);
  }
}
