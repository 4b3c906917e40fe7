/**
 * Child process of bench/heartbeats/run.ts: the whole Émargement app (src/app.ts, PostgreSQL, durable
 * acknowledgement) and, on another port, a bare Fastify route answering 200 with the same logger and request
 * ids, so that the ratio compares the ingest with what the framework costs by itself on this machine.
 */
import Fastify from 'fastify';
import { buildApp } from '../../src/app.js';
import { loadConfig } from '../../src/config/index.js';
import { loggerOptions, requestIdOptions } from '../../src/http/logger.js';
import { configureIngest } from '../../src/tracking/index.js';

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
await bare.listen({ port: 0, host: '127.0.0.1' });

const portOf = (s: typeof bare | typeof app) => {
  const address = s.server.address();
  return typeof address === 'object' && address ? address.port : 0;
};
process.send?.({ ready: true, appPort: portOf(app), barePort: portOf(bare) });
process.on('message', (m) => {
  if (m === 'stop') {
    void Promise.all([app.close(), bare.close()]).then(() => process.exit(0));
  }
});
