import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { sql } from 'kysely';
import { migrationStatus } from '../db/index.js';

const HealthReply = Type.Object({ status: Type.Literal('ok') });
const ReadyReply = Type.Object({
  status: Type.Union([Type.Literal('ready'), Type.Literal('not_ready')]),
  database: Type.String(),
  pendingMigrations: Type.Array(Type.String()),
});

export async function healthRoutes(app: FastifyInstance): Promise<void> {
  app.get('/health', { schema: { response: { 200: HealthReply } } }, async () => ({ status: 'ok' as const }));

  app.get('/ready', { schema: { response: { 200: ReadyReply, 503: ReadyReply } } }, async (_request, reply) => {
    try {
      await sql`select 1`.execute(app.db);
      const { pending } = await migrationStatus(app.db);
      const ready = pending.length === 0;
      return reply
        .code(ready ? 200 : 503)
        .send({ status: ready ? 'ready' : 'not_ready', database: app.dbKind, pendingMigrations: pending });
    } catch (err) {
      app.log.warn({ err }, 'readiness check failed');
      return reply.code(503).send({ status: 'not_ready', database: 'unreachable', pendingMigrations: [] });
    }
  });
}
