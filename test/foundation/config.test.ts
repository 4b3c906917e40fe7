import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/index.js';
import { decryptAtRest, deriveKey, encryptAtRest } from '../../src/config/secrets.js';

describe('loadConfig', () => {
  it('has development defaults and freezes the result', () => {
    const config = loadConfig({ DATA_DIR: mkdtempSync(join(tmpdir(), 'cfg-')) });
    expect(config.port).toBe(3000);
    expect(config.publicUrl).toBe('http://localhost:3000');
    expect(config.databaseUrl).toBeUndefined();
    expect(config.nodeEnv).toBe('development');
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('runs the scheduled tasks except in tests, unless SCHEDULED_TASKS says otherwise', () => {
    expect(loadConfig({}).scheduledTasks).toBe(true);
    expect(loadConfig({ NODE_ENV: 'test' }).scheduledTasks).toBe(false);
    expect(loadConfig({ SCHEDULED_TASKS: 'false' }).scheduledTasks).toBe(false);
    expect(loadConfig({ NODE_ENV: 'test', SCHEDULED_TASKS: 'true' }).scheduledTasks).toBe(true);
    expect(() => loadConfig({ SCHEDULED_TASKS: 'sometimes' })).toThrow(/SCHEDULED_TASKS/);
  });

  it('reads outgoing mail settings: SMTP_URL (smtp or smtps), MAIL_FROM, and DATA_DIR/mail without SMTP', () => {
    const dev = loadConfig({ DATA_DIR: '/tmp/emargement-cfg', PUBLIC_URL: 'https://emargement.example.fr' });
    expect(dev.smtpUrl).toBeUndefined();
    expect(dev.mailDir).toBe('/tmp/emargement-cfg/mail');
    expect(dev.mailFrom).toBe('Émargement <no-reply@emargement.example.fr>');
    const smtp = loadConfig({
      SMTP_URL: 'smtps://user:pass@mail.example.fr:465',
      MAIL_FROM: 'Fonds <fonds@example.fr>',
    });
    expect(smtp.smtpUrl).toBe('smtps://user:pass@mail.example.fr:465');
    expect(smtp.mailFrom).toBe('Fonds <fonds@example.fr>');
    expect(() => loadConfig({ SMTP_URL: 'https://mail.example.fr' })).toThrow(/SMTP_URL/);
    expect(() => loadConfig({ SMTP_URL: 'pas une url' })).toThrow(/SMTP_URL/);
    expect(() => loadConfig({ MAIL_FROM: 'Fonds' })).toThrow(/MAIL_FROM/);
    expect(() => loadConfig({ MAIL_FROM: 'a@b.fr\r\nBcc: x@y.fr' })).toThrow(/MAIL_FROM/);
  });

  it('derives the public URL from PORT and strips a trailing slash', () => {
    expect(loadConfig({ PORT: '4100' }).publicUrl).toBe('http://localhost:4100');
    expect(loadConfig({ PUBLIC_URL: 'https://emargement.example.fr/' }).publicUrl).toBe(
      'https://emargement.example.fr',
    );
  });

  it('names the variable of a bad value', () => {
    expect(() => loadConfig({ PORT: 'abc' })).toThrow(/PORT must be an integer/);
    expect(() => loadConfig({ LOG_LEVEL: 'loud' })).toThrow(/LOG_LEVEL must be one of/);
    expect(() => loadConfig({ DATABASE_URL: 'mysql://x' })).toThrow(/DATABASE_URL/);
    expect(() => loadConfig({ APP_SECRET: 'short' })).toThrow(/APP_SECRET must be at least 32/);
    expect(() => loadConfig({ PUBLIC_URL: 'not a url' })).toThrow(/PUBLIC_URL must be an absolute URL/);
  });

  it('refuses production without APP_SECRET and PUBLIC_URL, naming both on one line', () => {
    try {
      loadConfig({ NODE_ENV: 'production' });
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      const message = (error as Error).message;
      expect(message).toContain('APP_SECRET is required in production');
      expect(message).toContain('PUBLIC_URL is required in production');
      expect(message).not.toContain('\n');
    }
  });

  it('requires https for PUBLIC_URL in production', () => {
    expect(() =>
      loadConfig({ NODE_ENV: 'production', APP_SECRET: 'x'.repeat(40), PUBLIC_URL: 'http://tool.example.fr' }),
    ).toThrow(/must use https in production/);
  });

  it('generates a development secret once and keeps it in DATA_DIR', () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'cfg-'));
    const first = loadConfig({ DATA_DIR: dataDir }, { persistSecret: true });
    const second = loadConfig({ DATA_DIR: dataDir }, { persistSecret: true });
    expect(first.appSecret).toHaveLength(43);
    expect(second.appSecret).toBe(first.appSecret);
    expect(readFileSync(join(dataDir, 'app-secret'), 'utf8').trim()).toBe(first.appSecret);
    expect(statSync(join(dataDir, 'app-secret')).mode & 0o777).toBe(0o600);
  });
});

describe('secrets at rest', () => {
  it('round-trips with AES-256-GCM and detects tampering', () => {
    const key = deriveKey('x'.repeat(40), 'tool-keys');
    const sealed = encryptAtRest(key, 'private key material');
    expect(sealed).not.toContain('private');
    expect(decryptAtRest(key, sealed)).toBe('private key material');
    const parts = sealed.split('.');
    parts[3] = Buffer.from('tampered!').toString('base64url');
    expect(() => decryptAtRest(key, parts.join('.'))).toThrow();
    expect(() => decryptAtRest(deriveKey('y'.repeat(40), 'tool-keys'), sealed)).toThrow();
  });

  it('derives different keys for different purposes', () => {
    expect(deriveKey('x'.repeat(40), 'a').equals(deriveKey('x'.repeat(40), 'b'))).toBe(false);
  });
});
