import { type TProperties, Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { assertCsrf, type Principal, principalOf, requirePageSession } from '../portal/index.js';
import type { FileNumbersPageInput } from './pages.js';
import { pageData } from './service.js';

/** What the portal page's routes share: the forms' schema, the CSRF check and the page's data. */

export const Uuid = '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$';
const Csrf = Type.String({ maxLength: 100 });
export const HtmlPage = Type.String({ description: 'French HTML page' });
export const hidden = { hide: true } as const;
export const pageConfig = { html: true };

/** A form of the page: its fields after the fund and course it is about, and the CSRF token. */
export function formRoute<Fields extends TProperties>(fields: Fields) {
  return {
    config: pageConfig,
    // Before the body is read: a visitor without a session never gets an upload parsed.
    onRequest: requirePageSession,
    schema: {
      ...hidden,
      body: Type.Object({
        fund: Type.Optional(Type.String({ pattern: '^[a-z0-9-]{0,64}$' })),
        courseId: Type.String({ pattern: Uuid }),
        ...fields,
        _csrf: Type.Optional(Csrf),
      }),
      response: { 200: HtmlPage, 400: HtmlPage },
    },
  };
}

export function formPrincipal(request: FastifyRequest, token: string | undefined): Principal {
  const principal = principalOf(request);
  assertCsrf(request, principal, token);
  return principal;
}

/** Everything the page shows for one fund and course (both optional until chosen). */
export async function pageInput(
  app: FastifyInstance,
  request: FastifyRequest,
  principal: Principal,
  query: { fund?: string | undefined; courseId?: string | undefined },
): Promise<FileNumbersPageInput> {
  return { request, principal, ...(await pageData(app, principal, query)) };
}
