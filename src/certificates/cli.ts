import { parseArgs } from 'node:util';
import pino from 'pino';
import { type Config, loadConfig } from '../config/index.js';
import { createDatabase, type Db, pgliteDirFor } from '../db/index.js';
import { DomainError } from '../http/errors.js';
import { loadProviderConfig } from './provider.js';
import { CertificateService, type FactsSource } from './service.js';
import { rotateSigningKey } from './signing.js';

const USAGE = `Usage: npm run cli -- certificates <action> …

  provider                                  validates the provider file and prints what certificates will show
  issue --learner <uuid> --course <uuid> --reason "…"
                                            operator issuance (any time; the reason is kept)
  correct <number> --reason "…"             new version from today's data, superseding <number>
  revoke <number> --reason "…"              revokes (the record and its PDF are kept)
  rotate-key                                new Ed25519 signing key; earlier ones stay published
`;

export interface CertificatesCliContext {
  db: Db;
  config: Config;
  facts: FactsSource;
  out(text: string): void;
  err(text: string): void;
}

/** `npm run cli -- certificates …` on an open database (tests call it directly). */
export async function runCertificatesCommand(ctx: CertificatesCliContext, args: string[]): Promise<number> {
  const [action, ...rest] = args;
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: { learner: { type: 'string' }, course: { type: 'string' }, reason: { type: 'string' } },
  });
  const provider = loadProviderConfig(ctx.config.providerFile, {
    production: ctx.config.nodeEnv === 'production',
  });
  const service = new CertificateService({
    db: ctx.db,
    config: ctx.config,
    provider,
    log: pino({ level: 'silent' }),
    facts: ctx.facts,
  });
  try {
    switch (action) {
      case 'provider':
        ctx.out(
          `${JSON.stringify({ file: provider.file, fictitious: provider.fictitious, ...provider.data }, null, 2)}\n`,
        );
        return 0;
      case 'issue': {
        if (!values.learner || !values.course) break;
        const issued = await service.issue({
          learnerId: values.learner,
          courseId: values.course,
          kind: 'operator',
          by: null,
          reason: values.reason ?? null,
        });
        ctx.out(`${issued.number} (version ${issued.version})\n`);
        return 0;
      }
      case 'correct': {
        if (!positionals[0]) break;
        const issued = await service.correct(positionals[0], {
          kind: 'operator',
          by: null,
          reason: values.reason ?? null,
        });
        ctx.out(`${issued.number} (version ${issued.version}) supersedes ${positionals[0]}\n`);
        return 0;
      }
      case 'revoke':
        if (!positionals[0]) break;
        await service.revoke(positionals[0], { by: null, reason: values.reason ?? null });
        ctx.out(`${positionals[0]} revoked\n`);
        return 0;
      case 'rotate-key':
        ctx.out(`new signing key ${await rotateSigningKey(ctx.db, ctx.config.appSecret)}\n`);
        return 0;
    }
  } catch (error) {
    if (error instanceof DomainError) {
      ctx.err(`${error.publicMessage}${error.detail ? ` (${error.detail})` : ''}\n`);
      return 1;
    }
    throw error;
  }
  ctx.err(USAGE);
  return 2;
}

/** Opens the configured database, runs one action, closes it. */
export async function certificatesCommand(args: string[], facts: (db: Db) => FactsSource): Promise<number> {
  const config = loadConfig(process.env, { persistSecret: true });
  const handle = await createDatabase({ databaseUrl: config.databaseUrl, pgliteDataDir: pgliteDirFor(config.dataDir) });
  try {
    return await runCertificatesCommand(
      {
        db: handle.db,
        config,
        facts: facts(handle.db),
        out: (t) => process.stdout.write(t),
        err: (t) => process.stderr.write(t),
      },
      args,
    );
  } finally {
    await handle.close();
  }
}
