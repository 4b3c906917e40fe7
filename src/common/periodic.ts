import type { FastifyInstance } from 'fastify';
import { waitWithinStopBudget, whenListening } from './background.js';

export interface PeriodicTask {
  /** Named in the logs. */
  name: string;
  everyMs: number;
  /** The first run, counted from when the server listens (default: everyMs). */
  firstAfterMs?: number;
  task: () => Promise<unknown>;
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
export function runPeriodically(app: FastifyInstance, options: PeriodicTask): void {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let closing = false;
  const log = app.log.child({ task: options.name });

  const tick = () => {
    if (running || closing) return;
    running = options
      .task()
      .then(
        () => undefined,
        (err: unknown) => log.error({ err }, 'periodic task failed'),
      )
      .finally(() => {
        running = undefined;
      });
  };

  whenListening(app, () => {
    if (closing) return;
    timer = setTimeout(() => {
      tick();
      timer = setInterval(tick, options.everyMs);
      timer.unref();
    }, options.firstAfterMs ?? options.everyMs);
    timer.unref();
  });
  app.addHook('preClose', async () => {
    closing = true;
    clearTimeout(timer);
    clearInterval(timer);
    if (!running) return;
    // A stop must not outlast the orchestrator's grace period: a run still going after that is left to
    // its transaction (rolled back when the process ends) and simply runs again after the restart.
    let outcome: 'done' | 'cut';
    if (options.closeWaitMs === undefined) outcome = await waitWithinStopBudget(app, running);
    else {
      let late: NodeJS.Timeout | undefined;
      const cut = new Promise<'cut'>((resolve) => {
        late = setTimeout(() => resolve('cut'), options.closeWaitMs);
      });
      outcome = await Promise.race([running.then(() => 'done' as const), cut]);
      clearTimeout(late);
    }
    if (outcome === 'cut') log.warn('periodic task still running at close: not waited for');
  });
}
