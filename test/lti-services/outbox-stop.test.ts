import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { createDatabase, type DatabaseHandle, migrateToLatest, pgliteDirFor } from '../../src/db/index.js';
import { enqueueCompletionScore } from '../../src/lti-services/index.js';
import { FakeOpenEdxServices, toolKeysetAt } from '../fixtures/openedx/services.js';
import { withDatabase } from '../helpers/global-setup.js';
import { freePort } from '../helpers/ports.js';
import { seedLaunch, seedPlatform, seedResourceLink } from './seed.js';

/**
 * A stop while the platform hangs on a score: the real server process (src/server.ts) with its
 * background work on, a fake Open edX that reads the tool's keyset over HTTP, issues a token, then never
 * answers the score post. SIGTERM must end the process with status 0 (not the forced exit of a stop
 * that outlasts GRACEFUL_STOP_MS) and leave the score released for the next instance, its attempt not
 * counted.
 */

const dataDir = mkdtempSync(join(tmpdir(), 'emargement-outbox-stop-'));
let child: ChildProcess | undefined;
const platform = new FakeOpenEdxServices();

afterAll(async () => {
  child?.kill('SIGKILL');
  await platform.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

/** A database the child process can open by itself: a PGlite directory, or a PostgreSQL database. */
async function serverDatabase(): Promise<{ env: Record<string, string>; open: () => Promise<DatabaseHandle> }> {
  const target = inject('testDb');
  if (target.kind === 'pglite') {
    const open = () => createDatabase({ pgliteDataDir: pgliteDirFor(dataDir) });
    return { env: {}, open };
  }
  const name = `${target.prefix}${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: target.url });
  await admin.connect();
  try {
    await admin.query(`create database ${name} template ${target.template}`);
  } finally {
    await admin.end();
  }
  const url = withDatabase(target.url, name);
  return { env: { DATABASE_URL: url }, open: () => createDatabase({ databaseUrl: url, poolMax: 2 }) };
}

describe('stopping the server while a score request hangs', () => {
  it('exits 0 within the grace period and releases the score, uncounted', async () => {
    await platform.start();
    platform.holdScores = true;
    const port = await freePort();
    const publicUrl = `http://127.0.0.1:${port}`;
    const server = await serverDatabase();

    // The state a previous run left: a registration, a learner's launch, a score due.
    let db = await server.open();
    let scoreId: string;
    try {
      await migrateToLatest(db.db);
      const p = await seedPlatform(db.db, platform, toolKeysetAt(`${publicUrl}/.well-known/jwks.json`));
      await db.db.updateTable('lti_registrations').set({ source: 'cli' }).where('id', '=', p.registrationId).execute();
      const linkId = await seedResourceLink(db.db, p, { module: 'akto-visibilite' });
      const lineitem = platform.addLineItem(p.configId, { label: 'Module', scoreMaximum: 1, resourceLinkId: linkId });
      const launch = await seedLaunch(db.db, p, {
        resourceLinkId: linkId,
        ags: platform.agsClaim(p.configId, lineitem),
      });
      const queued = await enqueueCompletionScore(db.db, {
        learnerId: launch.learnerId,
        courseId: p.courseId,
        resourceLinkId: linkId,
        moduleId: 'akto-visibilite',
        completedAt: new Date(),
      });
      if (!queued.queued) throw new Error(`not queued: ${queued.reason}`);
      scoreId = queued.id;
    } finally {
      await db.close();
    }

    const proc = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
      env: {
        PATH: process.env.PATH ?? '',
        LOG_LEVEL: 'info',
        PORT: String(port),
        HOST: '127.0.0.1',
        PUBLIC_URL: publicUrl,
        DATA_DIR: dataDir,
        SCHEDULED_TASKS: 'true',
        ...server.env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = proc;
    let output = '';
    proc.stdout?.on('data', (d) => {
      output += d;
    });
    proc.stderr?.on('data', (d) => {
      output += d;
    });
    const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));

    // The server listens, its outbox gets a token (the platform read our keyset from it) and posts the
    // score; the platform holds the post.
    await Promise.race([
      platform.heldScorePostsReach(1),
      exited.then((code) => {
        throw new Error(`server exited (${code}) before posting: ${output}`);
      }),
    ]);
    expect(platform.tokenRequests.map((r) => r.outcome)).toEqual(['issued']);

    proc.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(output).toContain('"msg":"stopped"');
    expect(output).not.toContain('graceful stop took over');
    expect(output).toContain('score released: this instance is stopping');

    db = await server.open();
    try {
      const row = await db.db
        .selectFrom('lti_score_outbox')
        .selectAll()
        .where('id', '=', scoreId)
        .executeTakeFirstOrThrow();
      expect(row).toMatchObject({ status: 'pending', attempts: 0, locked_by: null, locked_until: null });
      expect(row.last_error).toContain('stopped before');
      expect(row.next_attempt_at.getTime()).toBeLessThanOrEqual(Date.now());
    } finally {
      await db.close();
    }
  });
});
