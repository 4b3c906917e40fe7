import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { buildApp } from '../../src/app.js';
import { compactScript } from '../../src/tracking/routes.js';
import { createTestApp, testConfig } from '../helpers/app.js';
import { createTestDatabase } from '../helpers/db.js';
import { freePort } from '../helpers/ports.js';

interface Running {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
  /** Resolves once the server logged that it listens; rejects (with its output) if it exits first. */
  listening: Promise<void>;
}

/**
 * Follows a server process: its output, its exit, and the moment it listens. No wall-clock deadline of
 * its own: a loaded machine may take long to start it, and the test's own timeout is the outer limit.
 */
function follow(child: ChildProcess): Running {
  let out = '';
  let onListening!: () => void;
  const listening = new Promise<void>((resolve) => {
    onListening = resolve;
  });
  const read = (d: Buffer | string) => {
    out += d;
    if (out.includes('"msg":"Émargement is listening"')) onListening();
  };
  child.stdout?.on('data', read);
  child.stderr?.on('data', read);
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const listeningOrExit = Promise.race([
    listening,
    exited.then((code) => {
      throw new Error(`server exited (${code}) before listening: ${out}`);
    }),
  ]);
  // Awaited only by the tests that expect the server to listen (others expect it to exit).
  listeningOrExit.catch(() => {});
  return { child, output: () => out, exited, listening: listeningOrExit };
}

function startServer(env: Record<string, string>): Running {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
    env: { PATH: process.env.PATH ?? '', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return follow(child);
}

const started: Running[] = [];
afterAll(() => {
  for (const s of started) s.child.kill('SIGKILL');
});

describe('the server process', () => {
  it('starts on embedded PGlite, answers /health and /ready, stops on SIGTERM, and keeps its data', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'emargement-server-'));
    for (let round = 1; round <= 2; round++) {
      const port = await freePort();
      const server = startServer({ PORT: String(port), DATA_DIR: dataDir });
      started.push(server);
      await server.listening;
      const health = await fetch(`http://127.0.0.1:${port}/health`);
      expect(health.status).toBe(200);
      const ready = await fetch(`http://127.0.0.1:${port}/ready`);
      expect(ready.status).toBe(200);
      expect(await ready.json()).toMatchObject({ status: 'ready', database: 'pglite' });
      server.child.kill('SIGTERM');
      expect(await server.exited).toBe(0);
      expect(server.output()).toContain('"msg":"stopped"');
      // The first run creates the database and applies migrations; the second finds them applied.
      if (round === 1) expect(server.output()).toContain('migrations applied');
      else expect(server.output()).not.toContain('migrations applied');
    }
  });

  it('refuses to start in production without APP_SECRET and PUBLIC_URL, naming them', async () => {
    const server = startServer({ NODE_ENV: 'production', DATA_DIR: mkdtempSync(join(tmpdir(), 'emargement-prod-')) });
    started.push(server);
    expect(await server.exited).toBe(78);
    const firstLine = server.output().split('\n')[0];
    expect(firstLine).toContain('APP_SECRET is required in production');
    expect(firstLine).toContain('PUBLIC_URL is required in production');
  });
});

describe('graceful shutdown', () => {
  it('finishes in-flight requests, refuses new ones, then closes the database', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    let arrived!: () => void;
    const inHandler = new Promise<void>((r) => {
      arrived = r;
    });
    const ctx = await createTestApp({
      extend: (app) => {
        app.get('/t/slow', async () => {
          arrived();
          await gate;
          return { done: true };
        });
      },
    });
    const { app } = ctx;
    await app.listen({ port: 0, host: '127.0.0.1' });
    const address = app.server.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    const inFlight = fetch(`http://127.0.0.1:${port}/t/slow`);
    // The request is in the handler (an event, not a timer) before the server starts closing.
    await inHandler;
    const closing = app.close();
    // Closing stops the listener at once: a new connection is refused while the slow request still runs.
    await expect(fetch(`http://127.0.0.1:${port}/health`)).rejects.toThrow();
    release();
    const res = await inFlight;
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ done: true });
    await closing;
    await ctx.database.close();
  });

  it('closes the database it owns when the app closes', async () => {
    const database = await createTestDatabase();
    const close = vi.spyOn(database, 'close');
    const app = await buildApp({ config: testConfig(), database, closeDatabase: true });
    await app.ready();
    expect(close).not.toHaveBeenCalled();
    await app.close();
    expect(close).toHaveBeenCalledOnce();
  });
});

// Production runs the compiled build (`npm start` = `node src/cli/build.mjs --if-stale` then
// `node dist/src/server.js`). This builds into a temporary directory (with a package.json marking it as
// ES modules and a link to node_modules, as dist/ has from the project root) and starts it.

const root = process.cwd();
const out = mkdtempSync(join(tmpdir(), 'emargement-build-'));
let builtChild: ChildProcess | undefined;
afterAll(() => {
  builtChild?.kill('SIGKILL');
  rmSync(out, { recursive: true, force: true });
});

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath, e.name)))
    .sort();
}

describe('the compiled build', () => {
  it('holds every source as JavaScript and every file the code reads next to itself', () => {
    const build = spawnSync(process.execPath, ['src/cli/build.mjs', '--out', out], { cwd: root, encoding: 'utf8' });
    expect(build.stderr + build.stdout).toBe('');
    expect(build.status).toBe(0);
    const built = new Set(filesUnder(out));
    for (const file of filesUnder(join(root, 'src'))) {
      // Docs, and the build script itself (it runs from the sources, never from dist/).
      if (file.endsWith('.md') || file === 'cli/build.mjs') continue;
      const expected = file.endsWith('.ts') ? `src/${file.replace(/\.ts$/, '.js')}` : `src/${file}`;
      expect(built.has(expected), expected).toBe(true);
    }
    for (const file of filesUnder(join(root, 'migrations'))) {
      expect(built.has(`migrations/${file.replace(/\.ts$/, '.js')}`), file).toBe(true);
    }
    // Assets are copied byte for byte (the fonts are binary).
    expect(readFileSync(join(out, 'src/certificates/assets/fonts/DejaVuSans.ttf'))).toEqual(
      readFileSync(join(root, 'src/certificates/assets/fonts/DejaVuSans.ttf')),
    );
    // Up to date: a second run with --if-stale does nothing.
    const again = spawnSync(process.execPath, ['src/cli/build.mjs', '--out', out, '--if-stale'], {
      cwd: root,
      encoding: 'utf8',
    });
    expect(again.status).toBe(0);
    expect(again.stderr).toBe('');
  });

  it('starts with plain node on a fresh data directory and serves health, pages and source-relative assets', async () => {
    writeFileSync(join(out, 'package.json'), '{ "type": "module" }\n');
    symlinkSync(join(root, 'node_modules'), join(out, 'node_modules'));
    const port = await freePort();
    const dataDir = mkdtempSync(join(tmpdir(), 'emargement-build-data-'));
    // No tsx anywhere: plain node on the emitted JavaScript, from the project root (content/, lti-config/).
    const child = spawn(process.execPath, [join(out, 'src/server.js')], {
      cwd: root,
      env: { PATH: process.env.PATH ?? '', PORT: String(port), DATA_DIR: dataDir, LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    builtChild = child;
    const running = follow(child);
    const exited = running.exited;
    const base = `http://127.0.0.1:${port}`;
    await running.listening;
    expect((await fetch(`${base}/health`)).ok).toBe(true);

    const ready = await fetch(`${base}/ready`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ status: 'ready', database: 'pglite' });

    const tracker = await fetch(`${base}/assets/tracker.js`);
    expect(tracker.status).toBe(200);
    // Served compact (no comment lines, no indentation), read from the file next to the compiled code.
    expect(await tracker.text()).toBe(compactScript(readFileSync(join(root, 'src/tracking/tracker.js'), 'utf8')));
    const moduleScript = await fetch(`${base}/assets/catalog/module.js`);
    expect(moduleScript.status).toBe(200);
    expect(await moduleScript.text()).toBe(readFileSync(join(root, 'src/catalog/assets/module.js'), 'utf8'));

    const page = await fetch(`${base}/verify`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toContain('text/html');
    expect(await page.text()).toContain('lang="fr"');

    // The content under content/ was imported at start (catalog), migrations applied from the build.
    expect(running.output()).toContain('migrations applied');
    expect(running.output()).toContain('content imported');

    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(running.output()).toContain('"msg":"stopped"');
    rmSync(dataDir, { recursive: true, force: true });
  });
});
