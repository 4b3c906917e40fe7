import { runContentCommand } from '../catalog/index.js';
import { issuedCertificatesOf, runCertificatesCli } from '../certificates/index.js';
import { runLmsCommand } from '../lms/index.js';
import { registerLtiCommands } from '../lti/index.js';
import { registerLtiServicesCommands } from '../lti-services/index.js';
import { runOpenEdxCommand } from '../openedx/index.js';
import { registerPortalCommands } from '../portal/index.js';
import { runPrivacyCommand } from '../privacy/index.js';
import { runTimeCommand } from '../tracking/index.js';
import { type CliContext, runWithContext } from './context.js';
import { migrateCommand } from './migrate.js';

/**
 * `npm run cli -- <command> …`. Each capability contributes its commands here; a command receives the
 * remaining arguments and the context of the one bootstrap (./context.ts: configuration, database, logger,
 * output), and returns the process exit code.
 */
export type Command = (args: string[], ctx: CliContext) => Promise<number>;

const commands: Record<string, { summary: string; run: Command }> = {
  migrate: {
    summary: 'apply pending database migrations',
    run: migrateCommand,
  },
};

export function registerCommand(name: string, summary: string, run: Command): void {
  commands[name] = { summary, run };
}
registerLtiCommands(registerCommand);
registerLtiServicesCommands(registerCommand);
registerPortalCommands(registerCommand);
registerCommand('content', 'check or import funds, themes and module packages (content/)', runContentCommand);
registerCommand('certificates', 'issue, correct, revoke certificates; rotate the key', runCertificatesCli);
registerCommand(
  'time',
  'connection time: recompute totals, compare algorithm versions, seal runs, daily digest, verify evidence',
  (args, ctx) => runTimeCommand(args, ctx, { issuedCertificates: issuedCertificatesOf }),
);
registerCommand('privacy', 'personal data: retention purge, access export, erasure, EU co-funding', runPrivacyCommand);
registerCommand('openedx', 'Open edX course export (OLX) with every LTI component preset', (args, ctx) =>
  runOpenEdxCommand(args, ctx, ctx.config()),
);
registerCommand('lms', 'Open edX logs: import tracking logs / xAPI, map LMS users, recompute estimates', runLmsCommand);

function usage(): string {
  const lines = Object.entries(commands).map(([name, c]) => `  ${name.padEnd(16)} ${c.summary}`);
  return `Usage: npm run cli -- <command> [arguments]\n\nCommands:\n${lines.join('\n')}\n`;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...args] = argv;
  if (!name || name === 'help' || name === '--help') {
    process.stdout.write(usage());
    return name ? 0 : 2;
  }
  const command = commands[name];
  if (!command) {
    process.stderr.write(`Unknown command "${name}".\n${usage()}`);
    return 2;
  }
  return runWithContext((ctx) => command.run(args, ctx));
}

// runWithContext never rejects: it has closed what it opened and reported any error when the code arrives.
main(process.argv.slice(2)).then((code) => process.exit(code));
