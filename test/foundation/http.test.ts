import { Type } from '@sinclair/typebox';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BadRequestError, ForbiddenError } from '../../src/http/errors.js';
import { createTestApp, type TestContext } from '../helpers/app.js';

let ctx: TestContext;
beforeAll(async () => {
  // Routes used only to exercise the shared error handler.
  ctx = await createTestApp({
    extend: (root) =>
      root.register(async (app) => {
        app.get('/t/api-domain', async () => {
          throw new ForbiddenError('not_your_fund', 'Ce fonds ne vous est pas rattaché.', 'fund mismatch');
        });
        app.get('/t/page-domain', { config: { html: true } }, async () => {
          throw new BadRequestError('bad_input', 'Le numéro <SIRET> est incorrect.');
        });
        app.get('/t/crash', async () => {
          throw new Error('secret internals at /srv/app.ts:42');
        });
        app.get('/t/page-crash', { config: { html: true } }, async () => {
          throw new Error('secret internals');
        });
        app.post(
          '/t/validated',
          { schema: { body: Type.Object({ count: Type.Integer({ minimum: 1 }) }) } },
          async (request) => request.body,
        );
      }),
  });
});
afterAll(() => ctx.close());

describe('health and readiness', () => {
  it('GET /health answers 200', async () => {
    const res = await ctx.app.inject({ method: 'GET', url: '/health' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: 'ok' });
  });

  it('GET /ready answers 200 when the database is reachable and migrated', async () => {
    const res = await ctx.app.inject({ method: 'GET', url: '/ready' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ status: 'ready', pendingMigrations: [] });
  });
});

describe('error handler', () => {
  it('turns a domain error into problem details for API routes', async () => {
    const res = await ctx.app.inject({ method: 'GET', url: '/t/api-domain' });
    expect(res.statusCode).toBe(403);
    expect(res.headers['content-type']).toContain('application/problem+json');
    expect(res.json()).toMatchObject({
      status: 403,
      code: 'not_your_fund',
      title: 'Ce fonds ne vous est pas rattaché.',
      detail: 'fund mismatch',
    });
    expect(res.json().instance).toBeTypeOf('string');
  });

  it('renders a French HTML page for browser routes, escaping the message', async () => {
    const res = await ctx.app.inject({ method: 'GET', url: '/t/page-domain' });
    expect(res.statusCode).toBe(400);
    expect(res.headers['content-type']).toContain('text/html');
    expect(res.body).toContain('<html lang="fr">');
    expect(res.body).toContain('Le numéro &lt;SIRET&gt; est incorrect.');
    expect(res.body).toContain('Référence');
  });

  it('never sends a stack trace or internal message on a crash', async () => {
    for (const url of ['/t/crash', '/t/page-crash']) {
      const res = await ctx.app.inject({ method: 'GET', url });
      expect(res.statusCode).toBe(500);
      expect(res.body).not.toContain('secret internals');
      expect(res.body).not.toMatch(/at .*\.ts:\d+/);
    }
  });

  it('reports schema validation failures with the failing field', async () => {
    const res = await ctx.app.inject({ method: 'POST', url: '/t/validated', payload: { count: 0 } });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ code: 'validation_failed' });
    expect(JSON.stringify(res.json().errors)).toContain('/count');
  });

  it('answers unknown routes with 404 as JSON or as a French page by Accept', async () => {
    const api = await ctx.app.inject({ method: 'GET', url: '/nope' });
    expect(api.statusCode).toBe(404);
    expect(api.json()).toMatchObject({ code: 'not_found' });
    const pageRes = await ctx.app.inject({ method: 'GET', url: '/nope', headers: { accept: 'text/html' } });
    expect(pageRes.statusCode).toBe(404);
    expect(pageRes.body).toContain('Page introuvable');
  });

  it('refuses a body over the limit with 413', async () => {
    const res = await ctx.app.inject({
      method: 'POST',
      url: '/t/validated',
      headers: { 'content-type': 'application/json' },
      payload: JSON.stringify({ count: 1, pad: 'x'.repeat(ctx.config.bodyLimitBytes) }),
    });
    expect(res.statusCode).toBe(413);
    expect(res.json().status).toBe(413);
  });
});
