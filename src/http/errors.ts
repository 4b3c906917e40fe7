/**
 * Domain errors: thrown anywhere, turned into an HTTP answer in one place (./error-handler.ts).
 * `publicMessage` is French and safe to show a learner; `detail` is for logs and API clients and may
 * name the precise failed check. Never put personal data or secrets in either.
 */
export class DomainError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly publicMessage: string,
    readonly detail?: string,
    readonly extra?: Record<string, unknown>,
  ) {
    super(detail ?? publicMessage);
    this.name = new.target.name;
  }
}

export class BadRequestError extends DomainError {
  constructor(code: string, publicMessage: string, detail?: string, extra?: Record<string, unknown>) {
    super(400, code, publicMessage, detail, extra);
  }
}

export class UnauthorizedError extends DomainError {
  constructor(code: string, publicMessage = 'Votre session a expiré ou n’est pas valable.', detail?: string) {
    super(401, code, publicMessage, detail);
  }
}

export class ForbiddenError extends DomainError {
  constructor(code: string, publicMessage = 'Vous n’avez pas accès à cette page.', detail?: string) {
    super(403, code, publicMessage, detail);
  }
}

export class NotFoundError extends DomainError {
  constructor(code = 'not_found', publicMessage = 'La page demandée n’existe pas.', detail?: string) {
    super(404, code, publicMessage, detail);
  }
}

export class ConflictError extends DomainError {
  constructor(code: string, publicMessage: string, detail?: string) {
    super(409, code, publicMessage, detail);
  }
}

export class TooManyRequestsError extends DomainError {
  constructor(code = 'rate_limited', publicMessage = 'Trop de demandes : patientez un instant puis réessayez.') {
    super(429, code, publicMessage);
  }
}
