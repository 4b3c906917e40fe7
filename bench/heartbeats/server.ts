/**
 * Child process of bench/heartbeats/run.ts: the whole Émargement app (src/app.ts, PostgreSQL, durable
 * acknowledgement) and, on another port, a bare Fastify instance with the same logger and request ids serving
 * two baselines: `POST /bare` parses the JSON and answers 200 (what the framework costs by itself on this
 * machine), and `POST /floor` parses the JSON and answers after a group commit of the body into a table shaped
 * like the tracking journal (one INSERT of one row per batch, the same two indexes, at most 2 statements in
 * flight, `synchronous_commit` on) — durable acknowledgement with nothing else: no token, no ticket, no
 * validation, no limiter. The ratio beats / floor is what the ingest's own checks cost; floor / bare is what a
 * durable PostgreSQL write costs on this machine whatever the code around it.
 */
import Fastify from 'fastify';
import pg from 'pg';
import { buildApp } from '../../src/app.js';
import { loadConfig } from '../../src/config/index.js';
import { loggerOptions, requestIdOptions } from '../../src/http/logger.js';
import { configureIngest } from '../../src/tracking/plugin.js';

const config = loadConfig(process.env);
const app = await buildApp({ config });
await app.ready(); // starts the crediting loop, as in production
const maxConcurrent = Number(process.env.BENCH_INGEST_CONCURRENCY ?? '0');
const maxBatch = Number(process.env.BENCH_INGEST_BATCH ?? '0');
// Learners per crediting transaction (the consumer's slice), default as in production.
const groupSize = Number(process.env.BENCH_CONSUMER_GROUP ?? '0');
if (maxConcurrent > 0 || maxBatch > 0 || groupSize > 0) {
  await configureIngest(app, {
    ...(maxConcurrent > 0 ? { maxConcurrent } : {}),
    ...(maxBatch > 0 ? { maxBatch } : {}),
    ...(groupSize > 0 ? { consumer: { groupSize } } : {}),
  });
}
await app.listen({ port: 0, host: '127.0.0.1' });

const bare = Fastify({ logger: loggerOptions(config), ...requestIdOptions(), bodyLimit: config.bodyLimitBytes });
bare.post('/bare', async () => ({ ok: true }));

// The floor: a group commit of bodies into a journal-shaped table, answered after the commit.
const pool = new pg.Pool({ connectionString: config.databaseUrl, max: 2 });
await pool.query(`create table if not exists bench_floor (id bigint generated always as identity primary key,
  received_at timestamptz not null default clock_timestamp(), item_count integer not null, body text not null)`);
await pool.query('create index if not exists bench_floor_received_idx on bench_floor (received_at)');
const queue: Array<{ body: unknown; resolve: (at: Date) => void; reject: (e: unknown) => void }> = [];
let running = 0;
const floorConcurrency = Number(process.env.BENCH_INGEST_CONCURRENCY ?? '2');
const pump = (): void => {
  while (running < floorConcurrency && queue.length > 0) {
    const batch = queue.splice(0, 500);
    running++;
    pool
      .query('insert into bench_floor (item_count, body) values ($1, $2) returning received_at', [
        batch.length,
        JSON.stringify(batch.map((b) => b.body)),
      ])
      .then(
        (r) => {
          for (const b of batch) b.resolve(r.rows[0].received_at);
        },
        (e) => {
          for (const b of batch) b.reject(e);
        },
      )
      .finally(() => {
        running--;
        pump();
      });
  }
};
bare.post('/floor', async (request) => {
  const at = await new Promise<Date>((resolve, reject) => {
    queue.push({ body: request.body, resolve, reject });
    pump();
  });
  return { serverTime: at.toISOString(), results: [{ seq: 0, status: 'received' }] };
});
await bare.listen({ port: 0, host: '127.0.0.1' });

const portOf = (s: typeof bare | typeof app) => {
  const address = s.server.address();
  return typeof address === 'object' && address ? address.port : 0;
};
process.send?.({ ready: true, appPort: portOf(app), barePort: portOf(bare) });
process.on('message', (m) => {
  if (m === 'stop') {
    void Promise.all([app.close(), bare.close(), pool.end()]).then(() => process.exit(0));
  }
});
