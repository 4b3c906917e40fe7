import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import { startBackgroundWork } from '../../src/common/background.js';
import { runPeriodically } from '../../src/common/periodic.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits until `done()` holds (a loaded machine may delay timers; no timing is asserted). */
async function until(done: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!done()) {
    if (Date.now() > deadline) throw new Error('condition not reached in 10 s');
    await sleep(5);
  }
}

function appWithLogs() {
  const lines: { level: number; msg: string; task?: string }[] = [];
  const app = Fastify({
    logger: { level: 'info', stream: { write: (line: string) => lines.push(JSON.parse(line)) } },
  });
  return { app, lines };
}

describe('runPeriodically', () => {
  it('runs once the server listens (not at ready), keeps running after a failure (logged), and stops at close', async () => {
    const { app, lines } = appWithLogs();
    let runs = 0;
    runPeriodically(app, {
      name: 'test task',
      everyMs: 20,
      firstAfterMs: 5,
      task: async () => {
        runs++;
        if (runs === 2) throw new Error('second run fails');
      },
    });
    await app.ready();
    await sleep(40);
    expect(runs).toBe(0); // nothing at ready: the server does not listen yet
    await app.listen({ port: 0, host: '127.0.0.1' });
    await until(() => runs >= 3);
    const failures = lines.filter((l) => l.msg === 'periodic task failed');
    expect(failures).toHaveLength(1);
    expect(failures[0]).toMatchObject({ level: 50, task: 'test task' });
    await app.close();
    const atClose = runs;
    await sleep(80);
    expect(runs).toBe(atClose);
  });

  it('never overlaps a run still under way, and close waits for it', async () => {
    const { app } = appWithLogs();
    let started = 0;
    let running = 0;
    let maxRunning = 0;
    let finished = 0;
    runPeriodically(app, {
      name: 'slow task',
      everyMs: 10,
      firstAfterMs: 1,
      task: async () => {
        started++;
        running++;
        maxRunning = Math.max(maxRunning, running);
        await sleep(60);
        running--;
        finished++;
      },
    });
    await app.ready();
    startBackgroundWork(app); // what a test driving the app through inject does instead of listening
    // Ticks every 10 ms, runs of 60 ms: several ticks find a run under way.
    await until(() => started >= 3);
    expect(maxRunning).toBe(1);
    await until(() => running === 1);
    await app.close();
    expect(finished).toBe(started);
    expect(running).toBe(0);
  });

  it('does not wait past closeWaitMs for a run that hangs, and says so', async () => {
    const { app, lines } = appWithLogs();
    let started = false;
    let finish = () => {};
    runPeriodically(app, {
      name: 'hanging task',
      everyMs: 60_000,
      firstAfterMs: 1,
      closeWaitMs: 50,
      task: () =>
        new Promise<void>((resolve) => {
          started = true;
          finish = resolve;
        }),
    });
    await app.ready();
    startBackgroundWork(app);
    await until(() => started);
    await app.close();
    expect(lines.find((l) => l.msg === 'periodic task still running at close: not waited for')).toMatchObject({
      level: 40,
      task: 'hanging task',
    });
    finish();
  });
});
