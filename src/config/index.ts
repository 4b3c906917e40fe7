import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { PolicyError, type RetentionPolicy, retentionPolicyFromEnv } from './retention.js';

/** The service configuration: read once from the environment, validated, frozen. */
export interface Config {
  readonly nodeEnv: 'development' | 'production' | 'test';
  readonly port: number;
  readonly host: string;
  /** Externally visible base URL, without a trailing slash. */
  readonly publicUrl: string;
  /** PostgreSQL URL; undefined → embedded PGlite. */
  readonly databaseUrl: string | undefined;
  readonly dataDir: string;
  readonly logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** Master secret; sub-keys are derived from it (see ./secrets.ts). */
  readonly appSecret: string;
  readonly migrateOnStart: boolean;
  readonly bodyLimitBytes: number;
  readonly trustProxy: boolean;
  /** Runs the background work (score delivery, membership sync, certificate sweep, daily digest, LMS estimates) here. */
  readonly scheduledTasks: boolean;
  readonly ltiRegistrationsFile: string;
  /** The training provider's details printed on certificates (see lti-config/README.md). */
  readonly providerFile: string;
  readonly contentDir: string;
  readonly videoPlaceholderUrl: string;
  /** Bearer token that opens `/metrics`; undefined → `/metrics` answers 404. */
  readonly metricsToken: string | undefined;
  /** The built-in demo LMS at `/demo` (development only). */
  readonly demo: boolean;
  /**
   * Outgoing mail (the funds' weekly digest): an smtp:// or smtps:// URL, or undefined — then, outside
   * production, mails are written as .eml files under `mailDir`; in production none is sent.
   */
  readonly smtpUrl: string | undefined;
  /** The sender of outgoing mail, `Name <address>` or an address. */
  readonly mailFrom: string;
  /** Where mails go without SMTP_URL (development and tests): DATA_DIR/mail. */
  readonly mailDir: string;
  /** The personal data retention policy and contact (`PRIVACY_*`, see ./retention.ts). */
  readonly retention: Readonly<RetentionPolicy>;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration: ${problems.join('; ')}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
const NODE_ENVS = ['development', 'production', 'test'] as const;
const MIN_SECRET_LENGTH = 32;

/**
 * Reads and validates the configuration. Every problem is collected so that one start attempt names
 * every bad variable; the message stays on one line for process managers.
 * `appSecret` may be generated and persisted under DATA_DIR outside production (`persistSecret`).
 */
export function loadConfig(env: Env = process.env, options: { persistSecret?: boolean } = {}): Config {
  const problems: string[] = [];
  const str = (name: string): string | undefined => {
    const v = env[name];
    return v === undefined || v.trim() === '' ? undefined : v.trim();
  };

  const nodeEnv = oneOf(str('NODE_ENV') ?? 'development', NODE_ENVS, 'NODE_ENV', problems);
  const production = nodeEnv === 'production';
  const port = integer(str('PORT') ?? '3000', 'PORT', 0, 65535, problems);
  const host = str('HOST') ?? (production ? '0.0.0.0' : '127.0.0.1');
  const logLevel = oneOf(
    str('LOG_LEVEL') ?? (nodeEnv === 'test' ? 'silent' : 'info'),
    LOG_LEVELS,
    'LOG_LEVEL',
    problems,
  );
  const dataDir = resolve(str('DATA_DIR') ?? './data');
  const bodyLimitBytes = integer(
    str('BODY_LIMIT_BYTES') ?? String(1024 * 1024),
    'BODY_LIMIT_BYTES',
    1024,
    64 * 1024 * 1024,
    problems,
  );
  const migrateOnStart = bool(str('MIGRATE_ON_START') ?? 'true', 'MIGRATE_ON_START', problems);
  const trustProxy = bool(str('TRUST_PROXY') ?? 'false', 'TRUST_PROXY', problems);
  // Off in tests by default: they call the tasks themselves when they need them.
  const scheduledTasks = bool(
    str('SCHEDULED_TASKS') ?? (nodeEnv === 'test' ? 'false' : 'true'),
    'SCHEDULED_TASKS',
    problems,
  );

  let publicUrl = str('PUBLIC_URL');
  if (publicUrl === undefined) {
    if (production) problems.push('PUBLIC_URL is required in production');
    publicUrl = `http://localhost:${port}`;
  } else {
    publicUrl = url(publicUrl, 'PUBLIC_URL', problems, production);
  }

  const databaseUrl = str('DATABASE_URL');
  if (databaseUrl !== undefined && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    problems.push('DATABASE_URL must be a postgres:// or postgresql:// URL');
  }

  let appSecret = str('APP_SECRET');
  if (appSecret === undefined) {
    if (production) problems.push('APP_SECRET is required in production');
    else if (options.persistSecret) appSecret = readOrCreateDevSecret(dataDir);
    else appSecret = 'test-secret-not-for-production-0123456789abcdef';
  } else if (appSecret.length < MIN_SECRET_LENGTH) {
    problems.push(`APP_SECRET must be at least ${MIN_SECRET_LENGTH} characters`);
  }

  const ltiRegistrationsFile = resolve(str('LTI_REGISTRATIONS_FILE') ?? 'lti-config/registrations.json');
  const providerFile = resolve(str('PROVIDER_FILE') ?? 'lti-config/provider.json');
  const contentDir = resolve(str('CONTENT_DIR') ?? 'content');
  const videoPlaceholderUrl = url(
    str('VIDEO_PLACEHOLDER_URL') ?? `${publicUrl}/assets/video-placeholder.html`,
    'VIDEO_PLACEHOLDER_URL',
    problems,
    false,
  );

  const metricsToken = str('METRICS_TOKEN');
  if (metricsToken !== undefined && metricsToken.length < 16) {
    problems.push('METRICS_TOKEN must be at least 16 characters');
  }
  // The demo LMS signs launches with a key anyone can use: never in production, off in tests unless asked.
  const demo = bool(str('DEMO_LMS') ?? (nodeEnv === 'development' ? 'true' : 'false'), 'DEMO_LMS', problems);
  if (demo && production) problems.push('DEMO_LMS cannot be on in production');
  const smtpUrl = str('SMTP_URL');
  if (smtpUrl !== undefined) {
    let parsed: URL | undefined;
    try {
      parsed = new URL(smtpUrl);
    } catch {
      problems.push('SMTP_URL must be an smtp:// or smtps:// URL');
    }
    if (parsed && parsed.protocol !== 'smtp:' && parsed.protocol !== 'smtps:') {
      problems.push('SMTP_URL must be an smtp:// or smtps:// URL');
    }
  }
  const mailFrom = str('MAIL_FROM') ?? `Émargement <no-reply@${hostOf(publicUrl)}>`;
  if (!MAIL_FROM.test(mailFrom)) {
    problems.push(`MAIL_FROM must be an e-mail address or "Name <address>" (got "${mailFrom}")`);
  }

  let retention: Readonly<RetentionPolicy> | undefined;
  try {
    retention = retentionPolicyFromEnv(env);
  } catch (err) {
    if (!(err instanceof PolicyError)) throw err;
    problems.push(err.message);
  }

  if (problems.length > 0) throw new ConfigError(problems);
  return Object.freeze({
    nodeEnv,
    port,
    host,
    publicUrl,
    databaseUrl,
    dataDir,
    logLevel,
    appSecret: appSecret as string,
    migrateOnStart,
    bodyLimitBytes,
    trustProxy,
    scheduledTasks,
    ltiRegistrationsFile,
    providerFile,
    contentDir,
    videoPlaceholderUrl,
    metricsToken,
    demo,
    smtpUrl,
    mailFrom,
    mailDir: resolve(dataDir, 'mail'),
    retention: retention as Readonly<RetentionPolicy>,
  });
}

const ADDRESS = '[^\\s<>@",;]+@[^\\s<>@",;]+';
const MAIL_FROM = new RegExp(`^(${ADDRESS}|[^<>"\\r\\n]+ <${ADDRESS}>)$`);

function hostOf(publicUrl: string): string {
  try {
    return new URL(publicUrl).hostname || 'localhost';
  } catch {
    return 'localhost';
  }
}

function oneOf<T extends string>(value: string, allowed: readonly T[], name: string, problems: string[]): T {
  if ((allowed as readonly string[]).includes(value)) return value as T;
  problems.push(`${name} must be one of ${allowed.join(', ')} (got "${value}")`);
  return allowed[0] as T;
}

function integer(value: string, name: string, min: number, max: number, problems: string[]): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < min || n > max) {
    problems.push(`${name} must be an integer from ${min} to ${max} (got "${value}")`);
    return min;
  }
  return n;
}

function bool(value: string, name: string, problems: string[]): boolean {
  if (/^(true|1|yes)$/i.test(value)) return true;
  if (/^(false|0|no)$/i.test(value)) return false;
  problems.push(`${name} must be true or false (got "${value}")`);
  return false;
}

function url(value: string, name: string, problems: string[], requireHttps: boolean): string {
  let parsed: URL;
  try {
    parsed = new URL(value);
  } catch {
    problems.push(`${name} must be an absolute URL (got "${value}")`);
    return value;
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    problems.push(`${name} must be an http(s) URL (got "${value}")`);
  } else if (requireHttps && parsed.protocol !== 'https:') {
    problems.push(`${name} must use https in production (got "${value}")`);
  }
  return value.replace(/\/+$/, '');
}

/** Development only: a random secret kept in DATA_DIR so restarts keep decrypting stored keys. */
function readOrCreateDevSecret(dataDir: string): string {
  const file = resolve(dataDir, 'app-secret');
  try {
    return readFileSync(file, 'utf8').trim();
  } catch {
    mkdirSync(dataDir, { recursive: true });
    const secret = randomBytes(32).toString('base64url');
    writeFileSync(file, `${secret}\n`, { mode: 0o600, flag: 'wx' });
    return secret;
  }
}
