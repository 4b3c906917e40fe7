import { parseArgs } from 'node:util';
import type { CliContext } from '../common/cli-context.js';
import type { Config } from '../config/index.js';
import type { Db } from '../db/index.js';
import { ensureCurrentKey, keyEncryptionKey, rotateKey } from './keys.js';
import {
  findActiveRegistration,
  listKeys,
  listRegistrations,
  markRegistrationRemoved,
  upsertRegistration,
} from './repository.js';
import {
  isKeyPublished,
  openEdxRegistration,
  parseRegistration,
  RETIRED_KEY_GRACE_MS,
  RegistrationError,
  toolUrls,
} from './rules.js';

/**
 * `npm run cli -- platforms|keys|openedx-config`. Each command has a `run…(ctx, args)` form that works on an
 * open database and writes through `out`, so tests drive it without a process.
 */
export interface LtiCliContext {
  db: Db;
  config: Config;
  out(text: string): void;
  err(text: string): void;
}

type Register = (name: string, summary: string, run: (args: string[], cli: CliContext) => Promise<number>) => void;

/** Called once from src/cli/index.ts with its `registerCommand`. */
export function registerLtiCommands(register: Register): void {
  register('platforms', 'LTI platform registrations: list | add | remove', async (args, cli) =>
    runPlatforms(await withDatabase(cli), args),
  );
  register('keys', 'LTI tool signing keys: list | rotate', async (args, cli) => runKeys(await withDatabase(cli), args));
  register('openedx-config', 'print the values a course team pastes into Open edX Studio', async (args, cli) =>
    runOpenEdxConfig(cli.config(), args, cli.out),
  );
}

async function withDatabase(cli: CliContext): Promise<LtiCliContext> {
  return { db: await cli.db(), config: cli.config(), out: cli.out, err: cli.err };
}

const PLATFORMS_USAGE = `Usage: npm run cli -- platforms <action>

  list [--json]
  add --lms <LMS root URL> --client-id <uuid> --name <name> [--lti-store <slug>]
        an Open edX component: issuer, deployment "1" and the three URLs are derived from the LMS root;
        --lti-store: the course's one reusable configuration (openedx-ltistore) and its shared client ID
  add --name <name> --issuer <iss> --client-id <id> --auth-login-url <url> --access-token-url <url>
      --jwks-url <url> [--deployment-id <id> …]
        any LTI 1.3 platform
  remove --issuer <iss> --client-id <id>
        launches from it are refused from then on (past launches stay recorded)

Registrations from the registrations file (LTI_REGISTRATIONS_FILE) are managed by editing that file.
`;

export async function runPlatforms(ctx: LtiCliContext, args: string[]): Promise<number> {
  const [action, ...rest] = args;
  const { values } = parseArgs({
    args: rest,
    options: {
      json: { type: 'boolean' },
      lms: { type: 'string' },
      name: { type: 'string' },
      issuer: { type: 'string' },
      'client-id': { type: 'string' },
      'auth-login-url': { type: 'string' },
      'access-token-url': { type: 'string' },
      'jwks-url': { type: 'string' },
      'deployment-id': { type: 'string', multiple: true },
      'lti-store': { type: 'string' },
    },
    strict: true,
  });

  if (action === 'list') {
    const regs = await listRegistrations(ctx.db);
    if (values.json) {
      ctx.out(`${JSON.stringify(regs, null, 2)}\n`);
      return 0;
    }
    if (regs.length === 0) {
      ctx.out('No platform registration.\n');
      return 0;
    }
    for (const r of regs) {
      const state = r.removedAt ? `removed ${r.removedAt.toISOString()}` : 'active';
      ctx.out(
        `${r.name}\n  issuer      ${r.issuer}\n  client id   ${r.clientId}\n  deployments ${r.deploymentIds.join(', ')}\n` +
          `  login URL   ${r.authLoginUrl}\n  token URL   ${r.accessTokenUrl}\n  JWKS URL    ${r.jwksUrl}\n` +
          `  source      ${r.source} (${state})\n`,
      );
    }
    return 0;
  }

  if (action === 'add') {
    let input: unknown;
    if (values.lms !== undefined) {
      if (!values['client-id'] || !values.name) {
        ctx.err('platforms add --lms needs --client-id and --name\n');
        return 2;
      }
      const slug = values['lti-store'];
      if (slug !== undefined && !/^[a-z0-9][a-z0-9_-]{0,79}$/.test(slug)) {
        ctx.err(`--lti-store "${slug}" is not a configuration slug (lower-case letters, digits, "-" and "_")\n`);
        return 2;
      }
      input = openEdxRegistration(values.lms, values['client-id'], values.name, slug);
    } else {
      input = {
        name: values.name,
        issuer: values.issuer,
        clientId: values['client-id'],
        deploymentIds: values['deployment-id'] ?? ['1'],
        authLoginUrl: values['auth-login-url'],
        accessTokenUrl: values['access-token-url'],
        jwksUrl: values['jwks-url'],
      };
    }
    let reg: ReturnType<typeof parseRegistration>;
    try {
      reg = parseRegistration(input, 'registration', { requireHttps: ctx.config.nodeEnv === 'production' });
    } catch (error) {
      if (error instanceof RegistrationError) {
        ctx.err(`${error.message}\n`);
        return 2;
      }
      throw error;
    }
    const existing = await findActiveRegistration(ctx.db, reg.issuer, reg.clientId);
    if (existing?.source === 'file') {
      ctx.err(`${reg.issuer} / ${reg.clientId} comes from the registrations file: change it there.\n`);
      return 1;
    }
    const saved = await upsertRegistration(ctx.db, reg, 'cli');
    ctx.out(`${existing ? 'Updated' : 'Added'} "${saved.name}" (${saved.issuer}, client id ${saved.clientId}).\n`);
    return 0;
  }

  if (action === 'remove') {
    if (!values.issuer || !values['client-id']) {
      ctx.err('platforms remove needs --issuer and --client-id\n');
      return 2;
    }
    const existing = await findActiveRegistration(ctx.db, values.issuer, values['client-id']);
    if (!existing) {
      ctx.err(`No active registration for ${values.issuer} / ${values['client-id']}.\n`);
      return 1;
    }
    if (existing.source === 'file') {
      // It would come back at the next start.
      ctx.err(`"${existing.name}" comes from the registrations file: remove it there, then restart.\n`);
      return 1;
    }
    await markRegistrationRemoved(ctx.db, existing.id);
    ctx.out(`Removed "${existing.name}": its launches are refused from now on.\n`);
    return 0;
  }

  ctx.err(PLATFORMS_USAGE);
  return 2;
}

export async function runKeys(ctx: LtiCliContext, args: string[]): Promise<number> {
  const [action] = args;
  const kek = keyEncryptionKey(ctx.config.appSecret);
  if (action === 'list') {
    await ensureCurrentKey(ctx.db, kek);
    const now = new Date();
    for (const k of await listKeys(ctx.db)) {
      const published = isKeyPublished(k, now);
      const until =
        k.status === 'retired' && k.retiredAt
          ? published
            ? `, published until ${new Date(k.retiredAt.getTime() + RETIRED_KEY_GRACE_MS).toISOString()}`
            : ', no longer published'
          : '';
      ctx.out(`${k.kid}  ${k.alg}  ${k.status}  created ${k.createdAt.toISOString()}${until}\n`);
    }
    return 0;
  }
  if (action === 'rotate') {
    const { kid, retiredKid } = await rotateKey(ctx.db, kek);
    const days = RETIRED_KEY_GRACE_MS / (24 * 3600_000);
    ctx.out(
      `New current key ${kid}.` +
        (retiredKid ? ` Key ${retiredKid} is retired and stays in the JWKS for ${days} days.` : '') +
        '\nRunning instances sign with the new key within a minute.\n',
    );
    return 0;
  }
  ctx.err('Usage: npm run cli -- keys list | rotate\n');
  return 2;
}

export function runOpenEdxConfig(config: Pick<Config, 'publicUrl'>, args: string[], out: (t: string) => void): number {
  const urls = toolUrls(config.publicUrl);
  const at = args.indexOf('--lti-store');
  const slug = at >= 0 && args[at + 1] && !args[at + 1]?.startsWith('--') ? (args[at + 1] as string) : 'emargement';
  if (args.includes('--json')) {
    out(
      `${JSON.stringify(
        {
          ...urls,
          ltiStore: {
            name: 'Émargement',
            slug,
            version: 'lti_1p3',
            lti_1p3_launch_url: urls.launchUrl,
            lti_1p3_oidc_url: urls.loginUrl,
            lti_1p3_tool_keyset_url: urls.keysetUrl,
            lti_1p3_redirect_uris: urls.redirectUris,
            lti_advantage_deep_linking_launch_url: urls.deepLinkingUrl,
            blockFields: { config_type: 'external', external_config: `lti_store:${slug}` },
          },
        },
        null,
        2,
      )}\n`,
    );
    return 0;
  }
  out(`Recommended: ONE reusable configuration for the whole course (openedx-ltistore plugin)
  LMS Django admin → LTI Store → External LTI configurations → Add:

  Name                            Émargement
  Slug                            ${slug}
  Version                         LTI 1.3
  LTI 1.3 Launch URL              ${urls.launchUrl}
  LTI 1.3 OIDC URL                ${urls.loginUrl}
  LTI 1.3 Tool Keyset URL         ${urls.keysetUrl}
  LTI 1.3 Redirect URIs           ${JSON.stringify(urls.redirectUris)}
  Deep Linking launch URL         ${urls.deepLinkingUrl}

  Every component then says: Configuration type "Reusable configuration" (config_type = external),
  configuration "lti_store:${slug}" (external_config). The generated course does it for you:
    npm run cli -- openedx olx --course-key <course-v1:…> --out course.tar.gz --lti-store ${slug}
  Give the operators the configuration's Client ID (one for the whole course); they run once:
    npm run cli -- platforms add --lms <LMS root URL> --client-id <Client ID> --lti-store ${slug} --name "<course>"

Or, per component: Open edX Studio → LTI Consumer component → LTI version "LTI 1.3":

  Tool Launch URL                 ${urls.launchUrl}
  Tool Initiate Login URL         ${urls.loginUrl}
  Registered Redirect URIs        ${JSON.stringify(urls.redirectUris)}
  Tool Public Key Mode            Keyset URL
  Tool Keyset URL                 ${urls.keysetUrl}
  Deep Linking Launch URL         ${urls.deepLinkingUrl}   (only with Deep Linking enabled)

Then give the operators the Client ID Studio shows for the component, and they run:
  npm run cli -- platforms add --lms <LMS root URL> --client-id <Client ID> --name "<course and component>"
(or add the entry to the registrations file; see lti-config/README.md).
`);
  return 0;
}
