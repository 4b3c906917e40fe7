import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { loadProviderConfig } from '../certificates/index.js';
import type { CliContext } from '../common/cli-context.js';
import type { Db } from '../db/index.js';
import { auditEvent } from '../portal/index.js';
import { learnerDataExport } from './data-export.js';
import * as repo from './repository.js';
import { frenchDay, type RetentionPolicy } from './rules.js';
import { verifySeals } from './seals.js';
import {
  CLI_ACTOR,
  eraseLearner,
  markEuCofunded,
  type PrivacyDeps,
  type PurgeReport,
  purge,
  resolveLearner,
} from './service.js';
import { type Controller, summaryPage } from './views.js';

const USAGE = `Usage: npm run cli -- privacy <action> …

  policy                                   the retention policy in force (environment, docs/privacy.md)
  purge --dry-run | --apply [--json]       delete what is past its date (a dry run only counts), with a report
  export <learner> --out <file.json|file.html>
                                           everything kept about one learner (access request, art. 15/20)
  erase <learner>                          pseudonymise the person (art. 17); lists what is still kept and until when
  session <course> --eu-cofunded yes|no    mark a course session EU co-funded (longer retention)
  sessions                                 every course session: its end and its co-funding mark
  verify                                   recheck the signed seals of purged chains and the digest reseals

  <learner>: learner id, LTI sub, e-mail or LMS username.  <course>: course id or LTI context id.
`;

export interface PrivacyCliIo {
  out(text: string): void;
  err(text: string): void;
}

/**
 * `npm run cli -- privacy …`: one action on the configured database of the CLI context, under the
 * configuration's retention policy (a bad `PRIVACY_*` variable is refused with the rest of the configuration).
 */
export async function runPrivacyCommand(args: string[], cli: CliContext): Promise<number> {
  const config = cli.config();
  const policy: RetentionPolicy = config.retention;
  let controller: Controller | null = null;
  try {
    const p = loadProviderConfig(config.providerFile, { production: config.nodeEnv === 'production' }).data;
    controller = { name: p.name, address: [...p.address.lines, `${p.address.postalCode} ${p.address.city}`] };
  } catch {
    controller = null;
  }
  return privacyCommand({ db: await cli.db(), appSecret: config.appSecret, policy }, args, cli, controller);
}

/** The command on an open database (tests call it directly). */
export async function privacyCommand(
  deps: PrivacyDeps,
  args: string[],
  io: PrivacyCliIo,
  controller: Controller | null = null,
): Promise<number> {
  const [action, ...rest] = args;
  try {
    switch (action) {
      case 'policy':
        io.out(policyText(deps.policy));
        return 0;
      case 'purge':
        return await purgeCommand(deps, rest, io);
      case 'export':
        return await exportCommand(deps, rest, io, controller);
      case 'erase':
        return await eraseCommand(deps, rest, io);
      case 'session':
        return await sessionCommand(deps.db, rest, io);
      case 'sessions':
        return await sessionsCommand(deps.db, io);
      case 'verify': {
        const problems = await verifySeals(deps.db);
        if (problems.length === 0) io.out('Every sealed chain and digest reseal verifies.\n');
        for (const p of problems) io.err(`${p}\n`);
        return problems.length === 0 ? 0 : 1;
      }
      default:
        io.err(USAGE);
        return 2;
    }
  } catch (err) {
    const detail = (err as { detail?: string }).detail;
    io.err(`${detail ?? (err as Error).message}\n`);
    return 1;
  }
}

function policyText(p: RetentionPolicy): string {
  return `Retention policy
  raw evidence and LMS events   ${p.rawYears} years after the end of the course session  (PRIVACY_RAW_YEARS)
  certificates and their chain  ${p.certificateYears} years after issue  (PRIVACY_CERTIFICATE_YEARS)
  EU co-funded sessions         ${p.euCofundedYears} years for both  (PRIVACY_EU_COFUNDED_YEARS)
  portal audit log              ${p.auditLogDays} days  (PRIVACY_AUDIT_LOG_DAYS)
  failed sign-ins               ${p.loginFailureDays} days  (PRIVACY_LOGIN_FAILURE_DAYS)
  unfinished onboarding         ${p.onboardingDays} days without activity  (PRIVACY_ONBOARDING_DAYS)
  full user agents              ${p.userAgentDays} days, then a device class  (PRIVACY_USER_AGENT_DAYS)
  purge batch                   ${p.batchSize} rows  (PRIVACY_PURGE_BATCH)
  contact on « Vos données »    ${p.contact ?? '(the provider’s postal address)'}  (PRIVACY_CONTACT)
`;
}

async function purgeCommand(deps: PrivacyDeps, args: string[], io: PrivacyCliIo): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { 'dry-run': { type: 'boolean' }, apply: { type: 'boolean' }, json: { type: 'boolean' } },
    allowPositionals: false,
  });
  if (Boolean(values['dry-run']) === Boolean(values.apply)) {
    io.err('privacy purge needs exactly one of --dry-run or --apply\n');
    return 2;
  }
  const report = await purge(deps, { apply: Boolean(values.apply), trigger: 'cli' });
  io.out(values.json ? `${JSON.stringify(report, null, 2)}\n` : purgeText(report));
  return report.problems.length > 0 ? 1 : 0;
}

export function purgeText(r: PurgeReport): string {
  const apply = r.mode === 'apply';
  const row = (label: string, value: string | number) => `  ${label.padEnd(44)} ${value}`;
  const lines = [
    `Privacy purge (${r.mode}) at ${r.at}`,
    row(`portal audit log rows ${apply ? 'deleted' : 'to delete'}`, r.auditLog),
    row(`failed sign-ins ${apply ? 'deleted' : 'to delete'}`, r.loginFailures),
    row(`unreadable journal rows ${apply ? 'deleted' : 'to delete'}`, r.quarantinedJournalRows),
    row(`user agents ${apply ? 'reduced' : 'to reduce'} to a device class`, r.userAgentsReduced),
    row(`learners past every retention date${apply ? ', deleted' : ''}`, r.learners.purged),
    row(`LMS events ${apply ? 'deleted' : 'to delete'}`, r.lmsEvents.deleted),
    row('daily digests resealed', r.digestsResealed),
  ];
  for (const id of r.learners.ids) lines.push(`  learner ${id}`);
  for (const c of r.lmsEvents.courses) lines.push(`  LMS events of ${c}`);
  for (const k of r.learners.kept) lines.push(`  kept ${k.learnerId}: ${k.reason}`);
  for (const p of r.problems) lines.push(`  PROBLEM: ${p}`);
  return `${lines.join('\n')}\n`;
}

async function exportCommand(
  deps: PrivacyDeps,
  args: string[],
  io: PrivacyCliIo,
  controller: Controller | null,
): Promise<number> {
  const { values, positionals } = parseArgs({ args, options: { out: { type: 'string' } }, allowPositionals: true });
  const [ref] = positionals;
  const out = values.out;
  if (!ref || !out || !/\.(json|html)$/i.test(out)) {
    io.err('Usage: npm run cli -- privacy export <learner> --out <file.json|file.html>\n');
    return 2;
  }
  const learner = await resolveLearner(deps.db, ref);
  const data = await learnerDataExport(deps, learner.id, controller);
  writeFileSync(out, /\.json$/i.test(out) ? `${JSON.stringify(data, null, 2)}\n` : summaryPage(data));
  await auditEvent(deps.db, CLI_ACTOR, 'privacy.export', { learnerId: learner.id, file: out });
  io.out(`Wrote ${out}: the data of learner ${learner.id}.\n`);
  return 0;
}

async function eraseCommand(deps: PrivacyDeps, args: string[], io: PrivacyCliIo): Promise<number> {
  const [ref, ...extra] = args;
  if (!ref || extra.length > 0) {
    io.err('Usage: npm run cli -- privacy erase <learner>\n');
    return 2;
  }
  const learner = await resolveLearner(deps.db, ref);
  const r = await eraseLearner(deps, learner.id);
  const lines = [
    `Learner ${r.learnerId} erased: now "${r.pseudonym}".`,
    `  evidence records reduced (user agent, IP): ${r.evidenceRecordsRedacted}`,
    `  LMS events pseudonymised: ${r.lmsEventsPseudonymised}`,
  ];
  if (r.purgedNow) lines.push('  Nothing had to be kept: every record of this learner was deleted.');
  else {
    lines.push('  Still kept (legal holds), deleted by the daily purge after:');
    for (const h of r.holds)
      lines.push(`    ${h.kind} ${h.label}: ${frenchDay(h.releaseDay)} (${h.releaseDay}) — ${h.reason}`);
  }
  io.out(`${lines.join('\n')}\n`);
  return 0;
}

async function sessionCommand(db: Db, args: string[], io: PrivacyCliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: { 'eu-cofunded': { type: 'string' } },
    allowPositionals: true,
  });
  const [ref] = positionals;
  const flag = values['eu-cofunded'];
  if (!ref || (flag !== 'yes' && flag !== 'no')) {
    io.err('Usage: npm run cli -- privacy session <course> --eu-cofunded yes|no\n');
    return 2;
  }
  const course = await markEuCofunded(db, ref, flag === 'yes');
  await auditEvent(db, CLI_ACTOR, 'privacy.session', { courseId: course.id, euCofunded: flag === 'yes' });
  io.out(`Course session ${course.context_id} (${course.title ?? course.id}): EU co-funded ${flag}.\n`);
  return 0;
}

async function sessionsCommand(db: Db, io: PrivacyCliIo): Promise<number> {
  const rows = await repo.listCourseSessions(db);
  for (const r of rows) {
    io.out(
      `${r.id}  ${r.context_id}  ${r.title ?? ''}  end: ${r.session_end ?? '(not set)'}  EU co-funded: ${r.eu_cofunded ? 'yes' : 'no'}\n`,
    );
  }
  if (rows.length === 0) io.out('No course session yet.\n');
  return 0;
}
