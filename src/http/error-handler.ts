import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { DomainError } from './errors.js';
import { html, page } from './html.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Browser page (often inside the LMS iframe): errors render as a French HTML page. */
    html?: boolean;
  }
}

interface Problem {
  type: string;
  title: string;
  status: number;
  detail?: string;
  instance: string;
  code: string;
  [key: string]: unknown;
}

/** Does this request want a page rather than JSON? The route decides; otherwise the Accept header. */
export function wantsHtml(request: FastifyRequest): boolean {
  if (request.routeOptions.config?.html !== undefined) return request.routeOptions.config.html;
  const accept = request.headers.accept ?? '';
  return accept.includes('text/html') && !accept.includes('application/json');
}

const STATUS_TITLES: Record<number, string> = {
  400: 'Demande incorrecte',
  401: 'Session non valable',
  403: 'Accès refusé',
  404: 'Page introuvable',
  405: 'Méthode non autorisée',
  409: 'Conflit',
  413: 'Envoi trop volumineux',
  415: 'Format non pris en charge',
  429: 'Trop de demandes',
  500: 'Erreur interne',
  503: 'Service momentanément indisponible',
};

function normalise(error: FastifyError | DomainError | Error): {
  status: number;
  code: string;
  publicMessage: string;
  detail?: string;
  extra?: Record<string, unknown>;
} {
  if (error instanceof DomainError) {
    return {
      status: error.status,
      code: error.code,
      publicMessage: error.publicMessage,
      ...(error.detail !== undefined ? { detail: error.detail } : {}),
      ...(error.extra !== undefined ? { extra: error.extra } : {}),
    };
  }
  const fe = error as FastifyError;
  if (fe.validation) {
    return {
      status: 400,
      code: 'validation_failed',
      publicMessage: 'Certaines informations envoyées ne sont pas valables.',
      detail: fe.message,
      extra: {
        errors: fe.validation.map((v) => ({ path: v.instancePath || v.params?.missingProperty, message: v.message })),
      },
    };
  }
  const status = typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 600 ? fe.statusCode : 500;
  if (status >= 500) {
    return { status, code: 'internal_error', publicMessage: 'Une erreur inattendue s’est produite de notre côté.' };
  }
  return {
    status,
    code: (fe.code ?? 'bad_request').toLowerCase(),
    publicMessage: STATUS_TITLES[status] ?? 'Demande incorrecte',
    detail: fe.message,
  };
}

/** The French error page, also used by routes that render an error themselves (e.g. a failed launch). */
export function errorPage(options: { status: number; message: string; advice?: string; reference: string }): string {
  const title = STATUS_TITLES[options.status] ?? 'Erreur';
  return page({
    title,
    body: html`<div class="box error" role="alert">
<h1>${title}</h1>
<p>${options.message}</p>
<p>${options.advice ?? 'Rechargez la page du cours. Si le problème continue, écrivez à l’équipe du cours en donnant la référence ci-dessous.'}</p>
<p class="muted">Référence : <code>${options.reference}</code></p>
</div>`,
  });
}

function send(request: FastifyRequest, reply: FastifyReply, n: ReturnType<typeof normalise>): FastifyReply {
  if (wantsHtml(request)) {
    return reply
      .code(n.status)
      .type('text/html; charset=utf-8')
      .send(errorPage({ status: n.status, message: n.publicMessage, reference: request.id }));
  }
  const problem: Problem = {
    type: `about:blank#${n.code}`,
    title: n.publicMessage,
    status: n.status,
    ...(n.detail !== undefined ? { detail: n.detail } : {}),
    instance: request.id,
    code: n.code,
    ...(n.extra ?? {}),
  };
  return reply.code(n.status).type('application/problem+json; charset=utf-8').send(problem);
}

export function registerErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError | DomainError, request, reply) => {
    const n = normalise(error);
    if (n.status >= 500) request.log.error({ err: error }, 'request failed');
    else request.log.info({ code: n.code, detail: n.detail ?? error.message, status: n.status }, 'request refused');
    if (n.status === 429 && !reply.getHeader('retry-after')) reply.header('retry-after', '60');
    return send(request, reply, n);
  });

  app.setNotFoundHandler((request, reply) =>
    send(request, reply, {
      status: 404,
      code: 'not_found',
      publicMessage: 'La page demandée n’existe pas.',
      detail: `${request.method} ${request.url.split('?')[0]} does not exist`,
    }),
  );
}
