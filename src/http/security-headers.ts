import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import helmet, { type HelmetOptions } from 'helmet';

/**
 * Security headers of every answer, in one place (docs/security.md, "Headers and frame policy").
 *
 * helmet's usual headers go on every answer (nosniff, HSTS, Referrer-Policy unless a route sets its own,
 * Cross-Origin-Opener/Resource-Policy, …). Its CSP and X-Frame-Options are off: they depend on where a page
 * is shown, which this module decides for every HTML answer (pages and error pages alike):
 *
 * - pages shown inside the LMS iframe (`lti`): `frame-ancestors` lists exactly the origins of the
 *   registered platforms (read from the registrations at each page, so a change applies at once);
 * - the video placeholder, framed by our own module page (`lti-child`): `'self'` plus those origins;
 * - every other page (portal, verification, API docs, errors elsewhere): `frame-ancestors 'none'` and
 *   `X-Frame-Options: DENY`.
 *
 * `script-src 'self'` and `style-src 'self'` everywhere: pages load their scripts and stylesheets from our own
 * files (src/http/assets.ts), with no inline script, `<style>` element or `style` attribute. `worker-src
 * 'self'`: the tracker sends its beats from a worker of our origin.
 */
export type FramePolicy = 'lti' | 'lti-child' | 'none';

/** Paths of the pages shown in the LMS iframe (the LTI capabilities' pages). */
const FRAMED_PREFIXES = ['/lti/', '/catalog/', '/certificates', '/tracking/', '/lti-services/'];
const FRAMED_BY_OUR_PAGES = new Set(['/assets/video-placeholder.html']);

export function framePolicyFor(path: string): FramePolicy {
  if (FRAMED_BY_OUR_PAGES.has(path)) return 'lti-child';
  // The development demo LMS (src/demo): its authentication endpoint answers inside its own unit page's
  // iframe, as an Open edX platform's does, so its pages may be framed by this origin only.
  if (path === '/demo' || path.startsWith('/demo/')) return 'lti-child';
  if (path === '/catalog' || path === '/certificates') return 'lti';
  return FRAMED_PREFIXES.some((prefix) => path.startsWith(prefix)) ? 'lti' : 'none';
}

/** The Content-Security-Policy of an HTML answer. `platforms`: origins of the registered platforms. */
export function contentSecurityPolicy(path: string, platforms: readonly string[]): string {
  const policy = framePolicyFor(path);
  if (policy === 'none') {
    return [
      "default-src 'self'",
      "img-src 'self' data:",
      "style-src 'self'",
      "script-src 'self'",
      "frame-ancestors 'none'",
      "form-action 'self'",
      "base-uri 'none'",
      "object-src 'none'",
    ].join('; ');
  }
  const ancestors = [...(policy === 'lti-child' ? ["'self'"] : []), ...platforms];
  return [
    "default-src 'self'",
    // Module pages show images and videos of the content packages, possibly from a video platform.
    "img-src 'self' data: https:",
    "media-src 'self' https:",
    "frame-src 'self' https:",
    "style-src 'self'",
    "script-src 'self'",
    "worker-src 'self'",
    "connect-src 'self'",
    // The Deep Linking response is a form posted back to the platform.
    `form-action ${["'self'", ...platforms].join(' ')}`,
    `frame-ancestors ${ancestors.length > 0 ? ancestors.join(' ') : "'none'"}`,
    "base-uri 'none'",
    "object-src 'none'",
  ].join('; ');
}

function isHtml(reply: FastifyReply): boolean {
  const type = reply.getHeader('content-type');
  return typeof type === 'string' && type.startsWith('text/html');
}

/** helmet's options: CSP and X-Frame-Options are set per page below. */
export const HELMET_OPTIONS: HelmetOptions = {
  contentSecurityPolicy: false,
  frameguard: false,
  // Module pages embed videos from other sites, which do not send CORP headers.
  crossOriginEmbedderPolicy: false,
};

/**
 * The headers helmet sets with `options`, asked of helmet itself once: with these options they depend on
 * nothing in the request. Running helmet's middleware on every request (what @fastify/helmet does) added about
 * 25 µs of CPU to a request on this service's machine, setting the same headers from this list about 10.
 */
export function helmetHeaders(options: HelmetOptions): Record<string, string> {
  const headers: Record<string, string> = {};
  const response = {
    setHeader(name: string, value: unknown) {
      headers[name.toLowerCase()] = String(value);
    },
    removeHeader(name: string) {
      delete headers[name.toLowerCase()];
    },
  };
  let done = false;
  helmet(options)({} as IncomingMessage, response as unknown as ServerResponse, () => {
    done = true;
  });
  if (!done) throw new Error('helmet did not set its headers synchronously');
  return headers;
}

/**
 * Registers helmet's headers and the per-page frame policy on the root instance (before the capabilities, so
 * that every route gets them). `platformOrigins` reads the registered platforms' origins (or those the
 * request already read).
 */
export async function registerSecurityHeaders(
  app: FastifyInstance,
  options: { platformOrigins: (request: FastifyRequest) => Promise<string[]> },
): Promise<void> {
  const headers = helmetHeaders(HELMET_OPTIONS);
  // Set first, so that a route's own value (e.g. a page's Referrer-Policy) replaces helmet's.
  app.addHook('onRequest', (_request, reply, done) => {
    reply.headers(headers);
    done();
  });
  app.addHook('onSend', async (request: FastifyRequest, reply: FastifyReply, payload) => {
    if (!isHtml(reply)) return payload;
    const path = request.url.split('?')[0] ?? '/';
    const policy = framePolicyFor(path);
    let platforms: string[] = [];
    if (policy !== 'none') {
      try {
        platforms = await options.platformOrigins(request);
      } catch (err) {
        // Without the registrations (database unreachable) nobody may frame the page: fail closed.
        request.log.warn({ err }, 'platform origins unavailable: page served with frame-ancestors none');
      }
    }
    reply.header('content-security-policy', contentSecurityPolicy(path, platforms));
    if (policy === 'none') reply.header('x-frame-options', 'DENY');
    else reply.removeHeader('x-frame-options');
    return payload;
  });
}
