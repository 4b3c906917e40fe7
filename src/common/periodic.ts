import type { FastifyInstance } from 'fastify';

export interface PeriodicTask {
  /** Named in the logs. */
  name: string;
  everyMs: number;
  /** The first run, counted from ready (default: everyMs). */
  firstAfterMs?: number;
  task: () => Promise<unknown>;
  /** How long close waits for a run under way (default 10 s). */
  closeWaitMs?: number;
}

/**
 * Runs a maintenance task in this instance from ready to close: first after `firstAfterMs`, then every
 * `everyMs`. A run never overlaps the previous one (a tick that finds it still running is skipped), a
 * failure is logged and the next tick runs as usual, and close waits for a run under way (10 s at most).
 * The timers do not keep the process alive. Every instance runs its own: the tasks given here must be
 * safe to run in several instances at once.
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

  app.addHook('onReady', async () => {
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
    let late: NodeJS.Timeout | undefined;
    const cut = new Promise<'cut'>((resolve) => {
      late = setTimeout(() => resolve('cut'), options.closeWaitMs ?? 10_000);
    });
    if ((await Promise.race([running, cut])) === 'cut')
      log.warn('periodic task still running at close: not waited for');
    clearTimeout(late);
  });
}
