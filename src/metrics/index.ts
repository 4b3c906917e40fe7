import { timingSafeEqual } from 'node:crypto';
import { Type } from '@sinclair/typebox';
import type { FastifyError, FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { Registry } from 'prom-client';
import { type PoolStats, registerDatabaseGauges } from './database.js';
import { beatsRejected, enableProcessMetrics, httpRequestDuration, sharedRegistry } from './registry.js';

/**
 * Prometheus metrics (text exposition format 0.0.4) at `GET /metrics`, behind a bearer token
 * (`METRICS_TOKEN`); without the token configured the route does not exist (404). The only file other
 * capabilities import from src/metrics/: they count into the shared counters re-exported here, e.g.
 * `lrsStatements.inc({ outcome: 'stored' })`. See src/metrics/README.md for every series.
 */
export {
  beatsCredited,
  beatsReceived,
  certificatesIssued,
  exportDuration,
  lrsStatements,
  ltiLaunches,
  scoreDeliveries,
  timed,
} from './registry.js';

/** Where the beats come in: its refused requests are counted by error code. */
const BEATS_ROUTE = '/api/tracking/beats';

function sameToken(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

async function metrics(app: FastifyInstance, options: { poolStats?: () => PoolStats }): Promise<void> {
  // Timing every answer: one histogram observation in onResponse (Fastify has measured elapsedTime already).
  app.addHook('onResponse', (request, reply, done) => {
    const route = request.routeOptions.url ?? 'unmatched';
    const status = reply.statusCode;
    httpRequestDuration.observe(
      { method: request.method, route, status: status < 400 ? `${Math.floor(status / 100)}xx` : String(status) },
      reply.elapsedTime / 1000,
    );
    done();
  });
  app.addHook('onError', (request, _reply, error: FastifyError & { code?: string }, done) => {
    if (request.routeOptions.url === BEATS_ROUTE) beatsRejected.inc({ reason: error.code ?? 'error' });
    done();
  });

  const token = app.config.metricsToken;
  if (token === undefined) return;
  enableProcessMetrics();
  const local = new Registry();
  registerDatabaseGauges(local, app.db, options.poolStats);
  const expected = `Bearer ${token}`;

  app.get(
    '/metrics',
    {
      logLevel: 'warn',
      schema: {
        hide: true,
        headers: Type.Object({ authorization: Type.Optional(Type.String()) }),
        response: { 200: Type.String(), 401: Type.Object({ error: Type.String() }) },
      },
    },
    async (request, reply) => {
      const given = request.headers.authorization ?? '';
      if (!sameToken(given, expected)) {
        return reply
          .code(401)
          .header('www-authenticate', 'Bearer realm="metrics"')
          .send({ error: 'a valid bearer token is required' });
      }
      const merged = Registry.merge([sharedRegistry, local]);
      const body = await merged.metrics();
      return reply.header('cache-control', 'no-store').type(merged.contentType).send(body);
    },
  );
}

export const metricsPlugin = fp(metrics, { name: 'metrics', fastify: '5.x' });
