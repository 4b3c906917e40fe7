import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import { waitWithinStopBudget, whenListening } from './background.js';

export interface PeriodicTask {
  /** Named in the logs. */
  name: string;
  everyMs: number;
  /** The first run, counted from when the server listens (default: everyMs; 0: at once). */
  firstAfterMs?: number;
  /** One run; `stopping` is aborted when the instance closes (a long run may end early). */
  task: (stopping: AbortSignal) => Promise<unknown>;
  /** How long close waits for a run under way (default: the background stop budget, see background.ts). */
  closeWaitMs?: number;
}

/**
 * Runs a maintenance task in this instance from the moment its server listens (`whenListening`; tests
 * without a listening server call `startBackgroundWork`) to close: first after `firstAfterMs`, then every
 * `everyMs`. A run never overlaps the previous one (a tick that finds it still running is skipped), a
 * failure is logged and the next tick runs as usual, and close waits for a run under way, within the
 * stop budget all background work shares (BACKGROUND_STOP_WAIT_MS). The timers do not keep the process
 * alive. Every instance runs its own: the tasks given here must be safe to run in several instances at
 * once.
 */
export interface PeriodicRun {
  /** Arms the timers: the first run after `firstAfterMs` (at once when 0), then every `everyMs`. Idempotent. */
  start(): void;
  /** Disarms the timers and aborts the signal given to the task; resolves when a run under way ends. */
  stop(): Promise<void>;
  /** The run under way, if any. */
  readonly running: Promise<void> | undefined;
}

/**
 * The timers of a periodic task, without an app: runs never overlap (a tick that finds one running is
 * skipped), a failure is logged and the next tick runs as usual. The task's signal is aborted at stop, so
 * that a long run may end early. `runPeriodically` ties one to an app's life.
 */
export function periodicRun(log: FastifyBaseLogger, options: PeriodicTask): PeriodicRun {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let armed = false;
  const stopped = new AbortController();

  const tick = () => {
    if (running || stopped.signal.aborted) return;
    running = options
      .task(stopped.signal)
      .then(
        () => undefined,
        (err: unknown) => log.error({ err }, 'periodic task failed'),
      )
      .finally(() => {
        running = undefined;
      });
  };
  const every = () => {
    tick();
    timer = setInterval(tick, options.everyMs);
    timer.unref();
  };

  return {
    start() {
      if (armed || stopped.signal.aborted) return;
      armed = true;
      const first = options.firstAfterMs ?? options.everyMs;
      if (first === 0) return every();
      timer = setTimeout(every, first);
      timer.unref();
    },
    async stop() {
      stopped.abort();
      clearTimeout(timer);
      clearInterval(timer);
      await running;
    },
    get running() {
      return running;
    },
  };
}

/**
 * Runs a maintenance task in this instance from the moment its server listens (`whenListening`; tests
 * without a listening server call `startBackgroundWork`) to close: first after `firstAfterMs`, then every
 * `everyMs`. A run never overlaps the previous one (a tick that finds it still running is skipped), a
 * failure is logged and the next tick runs as usual, and close waits for a run under way, within the
 * stop budget all background work shares (BACKGROUND_STOP_WAIT_MS). The timers do not keep the process
 * alive. Every instance runs its own: the tasks given here must be safe to run in several instances at
 * once.
 */
export function runPeriodically(app: FastifyInstance, options: PeriodicTask): void {
  const log = app.log.child({ task: options.name });
  const run = periodicRun(log, options);
  let closing = false;

  whenListening(app, () => {
    if (!closing) run.start();
  });
  app.addHook('preClose', async () => {
    closing = true;
    const running = run.running;
    const stopped = run.stop();
    if (!running) return;
    // A stop must not outlast the orchestrator's grace period: a run still going after that is left to
    // its transaction (rolled back when the process ends) and simply runs again after the restart.
    let outcome: 'done' | 'cut';
    if (options.closeWaitMs === undefined) outcome = await waitWithinStopBudget(app, stopped);
    else {
      let late: NodeJS.Timeout | undefined;
      const cut = new Promise<'cut'>((resolve) => {
        late = setTimeout(() => resolve('cut'), options.closeWaitMs);
      });
      outcome = await Promise.race([stopped.then(() => 'done' as const), cut]);
      clearTimeout(late);
    }
    if (outcome === 'cut') log.warn('periodic task still running at close: not waited for');
  });
}
