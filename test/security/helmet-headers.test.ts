import { createServer, type IncomingHttpHeaders } from 'node:http';
import helmet from 'helmet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HELMET_OPTIONS, helmetHeaders } from '../../src/http/security-headers.js';
import { createSecurityTestApp, type SecurityTestContext } from './helpers.js';

/**
 * helmet's headers are computed once (src/http/security-headers.ts) instead of by helmet's middleware on each
 * request: every kind of answer must still carry exactly what helmet itself sets on a real response.
 */
let ctx: SecurityTestContext;
beforeAll(async () => {
  ctx = await createSecurityTestApp();
});
afterAll(() => ctx.close());

/** What helmet's own middleware sets on a real node:http response, with the service's options. */
async function helmetOnARealResponse(): Promise<IncomingHttpHeaders> {
  const middleware = helmet(HELMET_OPTIONS);
  const server = createServer((req, res) => middleware(req, res, () => res.end('ok')));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const { port } = server.address() as { port: number };
    const res = await fetch(`http://127.0.0.1:${port}/`);
    await res.text();
    return Object.fromEntries(res.headers);
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
}

describe('helmet headers', () => {
  it('are the ones helmet sets on a real response, a dozen of them', async () => {
    const real = await helmetOnARealResponse();
    const computed = helmetHeaders(HELMET_OPTIONS);
    expect(Object.keys(computed).length).toBeGreaterThanOrEqual(10);
    for (const [name, value] of Object.entries(computed)) expect(real[name], name).toBe(value);
    expect(computed).toMatchObject({
      'x-content-type-options': 'nosniff',
      'strict-transport-security': expect.any(String),
    });
    expect(computed).not.toHaveProperty('content-security-policy');
    expect(computed).not.toHaveProperty('x-frame-options');
  });

  it('are on every kind of answer: page, JSON, static file, not found, refusal', async () => {
    const computed = helmetHeaders(HELMET_OPTIONS);
    const answers = await Promise.all(
      ['/', '/health', '/.well-known/jwks.json', '/nulle-part', '/lti/launch'].map((url) =>
        ctx.app.inject({ method: url === '/lti/launch' ? 'POST' : 'GET', url }),
      ),
    );
    expect(answers.map((a) => a.statusCode)).toEqual([200, 200, 200, 404, 400]);
    for (const res of answers) {
      for (const [name, value] of Object.entries(computed)) {
        expect(res.headers[name], `${res.statusCode} ${name}`).toBe(value);
      }
    }
  });
});
