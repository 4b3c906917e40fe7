import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/**
 * A port for a test server that must know its port before it listens (the tool's public URL is part of
 * its config) or must listen again on the same port (a platform back from an outage).
 *
 * Not a port from `listen(0)`: those come from the kernel's ephemeral range, which is also where every
 * outgoing connection (PostgreSQL, fetch) takes its local port. Between the probe's close and the real
 * listen, one of them can take it — CI failed once on exactly that (EADDRINUSE). These ports come from
 * below the ephemeral range, in a slice of their own for each vitest worker, so test files running at
 * the same time never draw the same one; within a file, a port is never handed out twice.
 */
const FIRST_PORT = 10_000;
/**
 * Ports the WHATWG Fetch standard blocks ("bad ports"): Node's fetch refuses them ("bad port"), so a server
 * on one cannot be reached by the code under test. Of that list, only 10080 lies above FIRST_PORT.
 */
const FETCH_BAD_PORTS = new Set([10_080]);
const SLICES = 64;
const handedOut = new Set<number>();

function ephemeralLow(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    if (Number.isInteger(low) && low > FIRST_PORT + SLICES * 16) return low;
  } catch {
    // Not Linux: the IANA ephemeral range starts at 49152.
  }
  return 49_152;
}

function probe(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

export async function freePort(): Promise<number> {
  const sliceSize = Math.floor((ephemeralLow() - FIRST_PORT) / SLICES);
  const worker = (Number(process.env.VITEST_POOL_ID ?? '1') - 1 + SLICES) % SLICES;
  const start = FIRST_PORT + worker * sliceSize;
  const offset = Math.floor(Math.random() * sliceSize);
  for (let i = 0; i < sliceSize; i++) {
    const port = start + ((offset + i) % sliceSize);
    if (handedOut.has(port) || FETCH_BAD_PORTS.has(port)) continue;
    if (await probe(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error(`no free port in ${start}–${start + sliceSize - 1}`);
}
