import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

/**
 * docker-compose.yml, deploy/Caddyfile and deploy/prometheus.yml. Where Docker is installed, `docker compose
 * config` validates the file as Compose reads it; without Docker (the development machines) that part is
 * skipped with a message, and the structure the runbooks rely on is still checked from the YAML.
 */
const docker = spawnSync('docker', ['compose', 'version'], { encoding: 'utf8' });
const hasDocker = docker.status === 0;
if (!hasDocker) {
  process.stderr.write('test/operations/compose.test.ts: no Docker here, `docker compose config` is skipped.\n');
}

const env = {
  ...process.env,
  APP_SECRET: 'a'.repeat(48),
  METRICS_TOKEN: 'b'.repeat(32),
  SITE_ADDRESS: 'emargement.example.fr',
  PUBLIC_URL: 'https://emargement.example.fr',
};

describe('docker compose', () => {
  it.skipIf(!hasDocker)('`docker compose config` accepts the file, with and without the monitoring profile', () => {
    for (const args of [
      ['config', '-q'],
      ['--profile', 'monitoring', 'config', '-q'],
    ]) {
      const res = spawnSync('docker', ['compose', ...args], { env, encoding: 'utf8' });
      expect(res.stderr).toBe('');
      expect(res.status).toBe(0);
    }
    const missing = spawnSync('docker', ['compose', 'config', '-q'], {
      env: { PATH: process.env.PATH ?? '' },
      encoding: 'utf8',
    });
    expect(missing.status).not.toBe(0);
    expect(missing.stderr).toContain('APP_SECRET');
  });

  it('runs PostgreSQL, two replicas with health checks, Caddy in front, and Prometheus as a profile', () => {
    const compose = parse(readFileSync('docker-compose.yml', 'utf8'), { merge: true }) as {
      services: Record<string, Record<string, unknown>>;
    };
    const { services } = compose;
    expect(Object.keys(services).sort()).toEqual(['app1', 'app2', 'caddy', 'db', 'prometheus']);
    for (const name of ['app1', 'app2']) {
      const app = services[name] as Record<string, unknown> & { environment: Record<string, string> };
      expect(app.healthcheck, name).toBeDefined();
      expect(JSON.stringify(app.healthcheck)).toContain('/ready');
      expect(app.environment.DATABASE_URL).toContain('@db:5432/');
      expect(app.environment.TRUST_PROXY).toBe('true');
      expect(app.environment.METRICS_TOKEN).toContain('METRICS_TOKEN:?');
      expect(app.ports, `${name} is reached only through Caddy`).toBeUndefined();
      expect(app.depends_on).toEqual({ db: { condition: 'service_healthy' } });
    }
    expect(services.caddy?.depends_on).toEqual({
      app1: { condition: 'service_healthy' },
      app2: { condition: 'service_healthy' },
    });
    expect(services.caddy?.ports).toEqual(expect.arrayContaining(['80:80', '443:443']));
    expect(services.prometheus?.profiles).toEqual(['monitoring']);
    expect(services.db?.healthcheck).toBeDefined();

    const caddyfile = readFileSync('deploy/Caddyfile', 'utf8');
    expect(caddyfile).toMatch(/reverse_proxy app1:3000 app2:3000/);
    expect(caddyfile).toMatch(/health_uri \/ready/);
    expect(caddyfile).toMatch(/\{\$SITE_ADDRESS:localhost\}/);

    const prometheus = parse(readFileSync('deploy/prometheus.yml', 'utf8')) as {
      scrape_configs: { authorization: { credentials_file: string }; static_configs: { targets: string[] }[] }[];
    };
    const job = prometheus.scrape_configs[0];
    expect(job?.static_configs[0]?.targets).toEqual(['app1:3000', 'app2:3000']);
    expect(job?.authorization.credentials_file).toBe('/run/secrets/metrics_token');
  });
});
