import { parseArgs } from 'node:util';
import { sql } from 'kysely';
import type { Logger } from 'pino';
import pino from 'pino';
import type { CliContext } from '../common/cli-context.js';
import type { Config } from '../config/index.js';
import type { Db } from '../db/index.js';
import { DomainError } from '../http/errors.js';
import { loadProviderConfig } from './provider.js';
import { CertificateService, type FactsSource } from './service.js';
import { jwkThumbprint, rotateSigningKey, verifyText } from './signing.js';

const USAGE = `Usage: npm run cli -- certificates <action> …

  provider                                  validates the provider file and prints what certificates will show
  issue --learner <uuid> --course <uuid> --reason "…"
                                            operator issuance (any time; the reason is kept)
  correct <number> --reason "…"             new version from today's data, superseding <number>
  revoke <number> --reason "…"              revokes (the record and its PDF are kept)
  rotate-key                                new Ed25519 signing key; earlier ones stay published
  verify-all                                checks every stored version: data hash, PDF hash, and the
                                            Ed25519 signature against its published key (after a restore)
`;

export interface CertificatesCliContext {
  db: Db;
  config: Config;
  facts: FactsSource;
  /** Default: silent. */
  log?: Logger;
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
    log: ctx.log ?? pino({ level: 'silent' }),
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
      case 'verify-all':
        return verifyAll(ctx);
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

/** One action on the configured database of the CLI context. */
export async function certificatesCommand(
  args: string[],
  cli: CliContext,
  facts: (db: Db) => FactsSource,
): Promise<number> {
  const db = await cli.db();
  return runCertificatesCommand(
    { db, config: cli.config(), facts: facts(db), log: cli.log(), out: cli.out, err: cli.err },
    args,
  );
}

/**
 * Every stored certificate version, read in pages (the PDFs' hashes are computed by the database, so no PDF
 * crosses the wire): the signed text matches its SHA-256, the PDF matches its SHA-256, the signing key is
 * known and its kid is its thumbprint, and the Ed25519 signature verifies. Prints each problem; 0 when none.
 */
async function verifyAll(ctx: CertificatesCliContext): Promise<number> {
  const keys = new Map(
    (await ctx.db.selectFrom('certificate_signing_keys').select(['kid', 'public_jwk']).execute()).map((k) => [
      k.kid,
      k.public_jwk,
    ]),
  );
  const problems: string[] = [];
  for (const [kid, jwk] of keys) {
    if (jwkThumbprint(jwk) !== kid)
      problems.push(`signing key ${kid}: its kid is not the thumbprint of its public key`);
  }
  let checked = 0;
  let after: string | null = null;
  for (;;) {
    let query = ctx.db.selectFrom('certificates');
    if (after !== null) query = query.where('id', '>', after);
    const page = await query
      .select((eb) => [
        'id',
        'number',
        'version',
        'data_canonical',
        'data_sha256',
        'signature',
        'signing_kid',
        'pdf_sha256',
        sql<string>`encode(sha256(${eb.ref('pdf')}), 'hex')`.as('pdf_actual'),
        sql<string>`encode(sha256(convert_to(${eb.ref('data_canonical')}, 'UTF8')), 'hex')`.as('data_actual'),
      ])
      .orderBy('id')
      .limit(500)
      .execute();
    if (page.length === 0) break;
    for (const c of page) {
      const label = `${c.number} v${c.version}`;
      if (c.data_actual !== c.data_sha256) problems.push(`${label}: signed data does not match its SHA-256`);
      if (c.pdf_actual !== c.pdf_sha256) problems.push(`${label}: PDF does not match its SHA-256`);
      const jwk = keys.get(c.signing_kid);
      if (!jwk) problems.push(`${label}: signing key ${c.signing_kid} is missing`);
      else if (!verifyText(jwk, c.data_canonical, c.signature)) problems.push(`${label}: signature does not verify`);
      checked++;
    }
    after = page[page.length - 1]?.id as string;
  }
  for (const p of problems) ctx.err(`${p}\n`);
  ctx.out(
    `${checked} certificate version(s) checked with ${keys.size} signing key(s): ` +
      `${problems.length === 0 ? 'all verify' : `${problems.length} problem(s)`}.\n`,
  );
  return problems.length === 0 ? 0 : 1;
}
