import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';

/**
 * One measured phase of the LMS bench, in a process of its own so that its peak RSS is its own
 * (`process.resourceUsage().maxRSS`, the process's whole life: tsx and the modules loaded included).
 * Prints one JSON line. Phases:
 *   read <file>                 the baseline: a plain line-reading loop over the file (readline), nothing else
 *   split <file>                the same file cut into lines as the import cuts it (bytes, no decoding)
 *   import <file> <db url>      `importLmsFile`, as `npm run cli -- lms import` runs it
 *   recompute <db url>          `recomputeLmsTotals`, as `npm run cli -- lms recompute` runs it
 *   serve <db url> <port> <bare port>   the whole app (buildApp) and a bare Fastify route, until SIGTERM
 */
const [phase, a, b, c, d] = process.argv.slice(2);
const peakMb = () => process.resourceUsage().maxRSS / 1024;
const print = (o: object) => process.stdout.write(`${JSON.stringify({ phase, ...o, peakRssMb: peakMb() })}\n`);

if (phase === 'read') {
  const t0 = performance.now();
  let lines = 0;
  let bytes = 0;
  const rl = createInterface({
    input: createReadStream(a as string, { highWaterMark: 256 * 1024 }),
    crlfDelay: Number.POSITIVE_INFINITY,
  });
  for await (const line of rl) {
    lines++;
    bytes += line.length;
  }
  print({ lines, bytes, seconds: (performance.now() - t0) / 1000 });
} else if (phase === 'split') {
  const t0 = performance.now();
  let lines = 0;
  for await (const chunk of createReadStream(a as string, { highWaterMark: 256 * 1024 }) as AsyncIterable<Buffer>) {
    for (let nl = chunk.indexOf(0x0a); nl !== -1; nl = chunk.indexOf(0x0a, nl + 1)) lines++;
  }
  print({ lines, seconds: (performance.now() - t0) / 1000 });
} else if (phase === 'import' || phase === 'recompute') {
  const { createDatabase } = await import('../../src/db/index.js');
  const { importLmsFile, recomputeLmsTotals } = await import('../../src/lms/index.js');
  const handle = await createDatabase({ databaseUrl: phase === 'import' ? b : a, poolMax: 2 });
  try {
    const t0 = performance.now();
    if (phase === 'import') {
      const r = await importLmsFile(handle.db, a as string);
      const seconds = (performance.now() - t0) / 1000;
      print({
        lines: r.lines,
        seconds,
        events: r.events,
        inserted: r.inserted,
        malformed: r.malformed,
        skipped: r.skipped,
        otherCourses: r.otherCourses.size,
        otherEvents: [...r.otherCourses.values()].reduce((x, y) => x + y, 0),
      });
    } else {
      const r = await recomputeLmsTotals(handle.db);
      print({ seconds: (performance.now() - t0) / 1000, totals: r.totals, unmatched: r.unmatched.length });
    }
  } finally {
    await handle.close();
  }
} else if (phase === 'serve') {
  const { loadConfig } = await import('../../src/config/index.js');
  const { buildApp } = await import('../../src/app.js');
  const Fastify = (await import('fastify')).default;
  const config = loadConfig({ ...process.env, DATABASE_URL: a, PORT: b, MIGRATE_ON_START: 'false' });
  const app = await buildApp({ config });
  await app.listen({ host: '127.0.0.1', port: Number(b) });
  // The baseline: what any LRS route costs without this tool's work (a bare Fastify, JSON parsed, ids
  // answered, nothing checked or stored).
  const bare = Fastify({ bodyLimit: 5 * 1024 * 1024 });
  bare.post('/xapi/statements', async (request) => (request.body as Array<{ id: string }>).map((s) => s.id));
  await bare.listen({ host: '127.0.0.1', port: Number(c) });
  print({ ready: true, pid: process.pid });
  process.on('SIGTERM', async () => {
    await bare.close();
    await app.close();
    print({ stopped: true, cpuMs: (process.cpuUsage().user + process.cpuUsage().system) / 1000 });
    process.exit(0);
  });
  void d;
} else {
  throw new Error(`unknown phase ${phase}`);
}
