import { request } from 'node:http';
import { buildApp } from '../../src/app.js';
import { loadConfig } from '../../src/config/index.js';
import { createToken, createUser } from '../../src/portal/index.js';

/**
 * One export, measured in a fresh process: the whole service (auth, audit, cursor, writer, HTTP) on a
 * loopback port, downloaded by a client that discards the bytes. Prints one JSON line.
 * Usage: DATABASE_URL=… node --import tsx bench/exports/measure.ts <summary|connections> <csv|xlsx> [fund]
 */
const [kind = 'summary', format = 'csv', fund] = process.argv.slice(2);

const config = loadConfig({ ...process.env, NODE_ENV: 'development', LOG_LEVEL: 'warn', MIGRATE_ON_START: 'true' });
const app = await buildApp({ config });
await app.ready();
const username = fund ? `bench-${fund}@bench.test` : 'bench-ops@bench.test';
let user = await app.db.selectFrom('portal_users').select('id').where('username', '=', username).executeTakeFirst();
if (!user) {
  user = (
    await createUser(app.db, {
      username,
      displayName: 'Bench',
      role: fund ? 'fund_staff' : 'operator',
      fundSlug: fund ?? null,
      password: 'bench bench bench bench',
    })
  ).user;
}
const { token } = await createToken(app.db, user.id, 'bench', 1);
const address = await app.listen({ host: '127.0.0.1', port: 0 });
const url = new URL(`/api/v1/exports/${kind}?format=${format}`, address);

if (global.gc) global.gc();
const baselineRss = process.memoryUsage().rss;
let peakRss = baselineRss;
let peakHeap = 0;
let peakExternal = 0;
const sampler = setInterval(() => {
  const m = process.memoryUsage();
  peakRss = Math.max(peakRss, m.rss);
  peakHeap = Math.max(peakHeap, m.heapUsed);
  peakExternal = Math.max(peakExternal, m.external + m.arrayBuffers);
}, 20);

const started = process.hrtime.bigint();
let firstByteMs = 0;
const result = await new Promise<{ status: number; bytes: number; lines: number }>((resolve, reject) => {
  const req = request(url, { headers: { authorization: `Bearer ${token}` } }, (res) => {
    let bytes = 0;
    let lines = 0;
    res.on('data', (chunk: Buffer) => {
      if (bytes === 0) firstByteMs = Number(process.hrtime.bigint() - started) / 1e6;
      bytes += chunk.length;
      if (format === 'csv') for (let i = chunk.indexOf(0x0a); i !== -1; i = chunk.indexOf(0x0a, i + 1)) lines++;
    });
    res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes, lines }));
    res.on('error', reject);
  });
  req.on('error', reject);
  req.end();
});
const ms = Number(process.hrtime.bigint() - started) / 1e6;
clearInterval(sampler);
peakRss = Math.max(peakRss, process.memoryUsage().rss);
const audit = await app.db
  .selectFrom('audit_log')
  .select(['row_count', 'status'])
  .where('token_id', 'is not', null)
  .orderBy('at', 'desc')
  .limit(1)
  .executeTakeFirstOrThrow();
await app.close();

process.stdout.write(
  `${JSON.stringify({
    kind,
    format,
    fund: fund ?? 'all',
    status: result.status,
    rows: audit.row_count,
    audit: audit.status,
    csvLines: format === 'csv' ? result.lines : null,
    bytes: result.bytes,
    ms: Math.round(ms),
    firstByteMs: Math.round(firstByteMs),
    baselineRssMB: Math.round(baselineRss / 2 ** 20),
    peakRssMB: Math.round(peakRss / 2 ** 20),
    peakHeapMB: Math.round(peakHeap / 2 ** 20),
    peakExternalMB: Math.round(peakExternal / 2 ** 20),
    maxRssMB: Math.round(process.resourceUsage().maxRSS / 1024),
  })}\n`,
);
