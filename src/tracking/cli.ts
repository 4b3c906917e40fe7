import { parseArgs } from 'node:util';
import type { CliContext } from '../common/cli-context.js';
import type { Db } from '../db/index.js';
import { ALGORITHM, ALGORITHMS, type Algorithm, addDays, parisDay } from './rules.js';
import { dailyDigest, diffVersions, recomputeTotals, sealStale, verifyEvidence } from './service/maintenance.js';

const USAGE = `Usage: npm run cli -- time <subcommand>

  recompute [--learner <id>] [--course <id>] [--check] [--algorithm beats-v2|beats-v1]
      Rebuild totals from evidence (runs, tabs, focus marks, rejected items) under beats-v2. --check only
      compares and exits 1 when a stored total differs from the evidence. --algorithm beats-v1 computes the
      former version from the same evidence, to compare only (with --check). Issued certificates never change.
  diff-versions [--learner <id>] [--course <id>]
      List the learners whose beats-v1 and beats-v2 totals differ (seconds, difference, stop beats v1
      refused) and whether a certificate was issued on beats-v1. Reads only.
  seal
      Seal every run that can no longer grow: its final state enters the learner's chain.
  digest [--day YYYY-MM-DD]
      Seal, then keep the digest of every chain head at the end of that Europe/Paris day (default:
      yesterday). Run it daily; running it again checks the kept digest.
  verify [--learner <id>]
      Walk every chain, compare sealed runs with their records, recheck kept digests, and (without
      --learner) list the journal rows set aside unread (acknowledged items never credited).
`;

/** What `diff-versions` asks the certificates about a learner × course: numbers and algorithms issued. */
export type IssuedCertificatesLookup = (
  db: Db,
  learnerId: string,
  courseId: string,
) => Promise<Array<{ number: string; algorithm: string; state: string }>>;

/** `npm run cli -- time …`: the connection-time maintenance commands. Returns the exit code. */
export async function runTimeCommand(
  args: string[],
  cli: CliContext,
  deps: { issuedCertificates?: IssuedCertificatesLookup } = {},
): Promise<number> {
  const [sub, ...rest] = args;
  const { values } = parseArgs({
    args: rest,
    options: {
      learner: { type: 'string' },
      course: { type: 'string' },
      check: { type: 'boolean', default: false },
      day: { type: 'string' },
      algorithm: { type: 'string' },
    },
    strict: true,
  });
  if (!sub || !['recompute', 'seal', 'digest', 'verify', 'diff-versions'].includes(sub)) {
    process.stdout.write(USAGE);
    return sub ? 2 : 0;
  }
  return run(await cli.db(), sub, values, deps);
}

async function run(
  db: Db,
  sub: string,
  values: {
    learner?: string | undefined;
    course?: string | undefined;
    check?: boolean | undefined;
    day?: string | undefined;
    algorithm?: string | undefined;
  },
  deps: { issuedCertificates?: IssuedCertificatesLookup },
): Promise<number> {
  const out = (line: string) => process.stdout.write(`${line}\n`);
  const filter = {
    ...(values.learner ? { learnerId: values.learner } : {}),
    ...(values.course ? { courseId: values.course } : {}),
  };
  switch (sub) {
    case 'recompute': {
      const algorithm = (values.algorithm ?? ALGORITHM) as Algorithm;
      if (!ALGORITHMS.includes(algorithm)) {
        process.stderr.write(`--algorithm must be one of ${ALGORITHMS.join(', ')}\n`);
        return 2;
      }
      if (algorithm !== ALGORITHM && !values.check) {
        process.stderr.write(
          `Totals are kept under ${ALGORITHM}. ${algorithm} can be computed from the same evidence and compared ` +
            `with --check, or listed with "time diff-versions"; it is never written.\n`,
        );
        return 2;
      }
      const report = await recomputeTotals(db, filter, { write: !values.check, algorithm });
      out(`${report.pairs} learner × course pairs read from evidence (algorithm ${algorithm}).`);
      if (report.differing.length === 0) out('Every stored total equals the evidence, to the millisecond.');
      for (const d of report.differing) {
        out(`${values.check ? 'differs' : 'rewritten'}: learner ${d.learnerId}, course ${d.courseId}`);
      }
      return values.check && report.differing.length > 0 ? 1 : 0;
    }
    case 'diff-versions': {
      const diffs = await diffVersions(db, filter);
      if (diffs.length === 0) {
        out('beats-v1 and beats-v2 credit every learner the same, to the second.');
        return 0;
      }
      out('learner\tcourse\tbeats-v1 (s)\tbeats-v2 (s)\tdifference (s)\tstops refused by v1\tcertificates on beats-v1');
      for (const d of diffs) {
        const issued = deps.issuedCertificates ? await deps.issuedCertificates(db, d.learnerId, d.courseId) : null;
        const onV1 =
          issued === null
            ? 'unknown'
            : issued
                .filter((c) => c.algorithm === 'beats-v1')
                .map((c) => `${c.number} (${c.state})`)
                .join(', ') || 'none';
        out(
          [d.learnerId, d.courseId, d.v1Seconds, d.v2Seconds, d.differenceSeconds, d.stopsRefusedByV1, onV1].join('\t'),
        );
      }
      out(`${diffs.length} learner × course pairs differ. Issued certificates keep their figures.`);
      return 0;
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
