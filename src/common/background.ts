import type { FastifyInstance } from 'fastify';

/**
 * When an instance's background work runs: from the moment its server listens to its graceful stop.
 *
 * Not from `onReady`: `ready` comes before `listen` binds the port, and some background work needs the
 * instance to be reachable. Open edX, for one, checks the tool's token request by fetching the tool's
 * public keyset from the tool itself; a score sent before the tool listens is refused (`invalid_client`).
 * So work registered here starts on Fastify's `onListen`. Tests that drive the app through `app.inject`
 * (no listen) start it explicitly with `startBackgroundWork(app)`, or call the work's one-pass functions.
 *
 * Every encapsulated context of one app shares one `app.server`: the registry is keyed on it, so that a
 * start from any plugin, or from a test on the root instance, starts all of it once.
 */

/** The longest a graceful stop may take before `server.ts` gives up and exits with status 1. */
export const GRACEFUL_STOP_MS = 10_000;

/**
 * What background work may take of a stop, all of it together: the rest of the grace is for in-flight
 * requests, closing connections and the database.
 */
export const BACKGROUND_STOP_WAIT_MS = 5_000;

interface Entry {
  start: () => void;
  started: boolean;
}

interface Registry {
  entries: Entry[];
  /** When this instance started listening (or its background work was started by hand), ms since epoch. */
  since: number | null;
  /** One deadline for every piece of background work waited for at close. */
  stopDeadline: number | null;
  hooked: WeakSet<FastifyInstance>;
}

const registries = new WeakMap<object, Registry>();

function registryOf(app: FastifyInstance): Registry {
  let r = registries.get(app.server);
  if (!r) {
    r = { entries: [], since: null, stopDeadline: null, hooked: new WeakSet() };
    registries.set(app.server, r);
  }
  return r;
}

/**
 * Runs `start` once this instance listens (or when `startBackgroundWork` is called first). `start` must
 * only arm timers or kick a first pass: it is not awaited. Register before `ready`.
 */
export function whenListening(app: FastifyInstance, start: () => void): void {
  const registry = registryOf(app);
  registry.entries.push({ start, started: false });
  if (!registry.hooked.has(app)) {
    registry.hooked.add(app);
    app.addHook('onListen', async () => {
      startBackgroundWork(app);
    });
  }
}

/** Starts whatever background work was registered and not started yet. Idempotent. */
export function startBackgroundWork(app: FastifyInstance): void {
  const registry = registryOf(app);
  registry.since ??= Date.now();
  for (const entry of registry.entries) {
    if (entry.started) continue;
    entry.started = true;
    entry.start();
  }
}

/** When this instance began listening (ms since epoch), or null while it does not. */
export function listeningSince(app: FastifyInstance): number | null {
  return registryOf(app).since;
}

/**
 * The instant by which every piece of background work must have let go at close: the first caller sets
 * it BACKGROUND_STOP_WAIT_MS from now, so that work stopped one after another still shares one budget.
 */
export function backgroundStopDeadline(app: FastifyInstance): number {
  const registry = registryOf(app);
  registry.stopDeadline ??= Date.now() + BACKGROUND_STOP_WAIT_MS;
  return registry.stopDeadline;
}

/** Resolves with `work`, or with 'cut' once the shared stop deadline has passed. */
export async function waitWithinStopBudget(app: FastifyInstance, work: Promise<unknown>): Promise<'done' | 'cut'> {
  let timer: NodeJS.Timeout | undefined;
  const cut = new Promise<'cut'>((resolve) => {
    timer = setTimeout(() => resolve('cut'), Math.max(0, backgroundStopDeadline(app) - Date.now()));
  });
  try {
    return await Promise.race([work.then(() => 'done' as const), cut]);
  } finally {
    clearTimeout(timer);
  }
}
