import { parseArgs } from 'node:util';
import { loadConfig } from '../config/index.js';
import { createDatabase, type Db, pgliteDirFor } from '../db/index.js';
import { addDays, parisDay } from './rules.js';
import { dailyDigest, recomputeTotals, sealStale, verifyEvidence } from './service.js';

const USAGE = `Usage: npm run cli -- time <subcommand>

  recompute [--learner <id>] [--course <id>] [--check]
      Rebuild totals from evidence (runs, tabs, focus marks, rejected items). --check only compares
      and exits 1 when a stored total differs from the evidence.
  seal
      Seal every run that can no longer grow: its final state enters the learner's chain.
  digest [--day YYYY-MM-DD]
      Seal, then keep the digest of every chain head at the end of that Europe/Paris day (default:
      yesterday). Run it daily; running it again checks the kept digest.
  verify [--learner <id>]
      Walk every chain, compare sealed runs with their records, recheck kept digests, and (without
      --learner) list the journal rows set aside unread (acknowledged items never credited).
`;

/** `npm run cli -- time …`: the connection-time maintenance commands. Returns the exit code. */
export async function runTimeCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  const { values } = parseArgs({
    args: rest,
    options: {
      learner: { type: 'string' },
      course: { type: 'string' },
      check: { type: 'boolean', default: false },
      day: { type: 'string' },
    },
    strict: true,
  });
  if (!sub || !['recompute', 'seal', 'digest', 'verify'].includes(sub)) {
    process.stdout.write(USAGE);
    return sub ? 2 : 0;
  }
  const config = loadConfig(process.env, { persistSecret: true });
  const handle = await createDatabase({ databaseUrl: config.databaseUrl, pgliteDataDir: pgliteDirFor(config.dataDir) });
  try {
    return await run(handle.db, sub, values);
  } finally {
    await handle.close();
  }
}

async function run(
  db: Db,
  sub: string,
  values: {
    learner?: string | undefined;
    course?: string | undefined;
    check?: boolean | undefined;
    day?: string | undefined;
  },
): Promise<number> {
  const out = (line: string) => process.stdout.write(`${line}\n`);
  switch (sub) {
    case 'recompute': {
      const report = await recomputeTotals(
        db,
        {
          ...(values.learner ? { learnerId: values.learner } : {}),
          ...(values.course ? { courseId: values.course } : {}),
        },
        { write: !values.check },
      );
      out(`${report.pairs} learner × course pairs read from evidence (algorithm beats-v1).`);
      if (report.differing.length === 0) out('Every stored total equals the evidence, to the millisecond.');
      for (const d of report.differing) {
        out(`${values.check ? 'differs' : 'rewritten'}: learner ${d.learnerId}, course ${d.courseId}`);
      }
      return values.check && report.differing.length > 0 ? 1 : 0;
    }
    case 'seal':
      out(`${await sealStale(db)} runs sealed.`);
      return 0;
    case 'digest': {
      const day = values.day ?? addDays(parisDay(Date.now()), -1);
      if (!/^\d{4}-\d{2}-\d{2}$/.test(day)) {
        process.stderr.write('--day must be YYYY-MM-DD\n');
        return 2;
      }
      const sealed = await sealStale(db);
      const d = await dailyDigest(db, day);
      out(
        `${sealed} runs sealed. Digest of ${d.day}: ${d.digest} (${d.learnerCount} chains, ${d.eventCount} records) — ${d.status}.`,
      );
      return d.status === 'mismatch' ? 1 : 0;
    }
    default: {
      const problems = await verifyEvidence(db, values.learner ? { learnerId: values.learner } : {});
      if (problems.length === 0)
        out('Every chain links, every sealed run matches its record, every kept digest holds.');
      for (const p of problems) out(`${p.learnerId ?? p.day}: ${p.problem}`);
      return problems.length > 0 ? 1 : 0;
    }
  }
}
