import { Type } from '@sinclair/typebox';

/**
 * RFC 9457 problem details as the error handler writes them (src/http/error-handler.ts), for routes that
 * describe their error answers in the OpenAPI document.
 */
export const ProblemDetails = Type.Object(
  {
    type: Type.String(),
    title: Type.String(),
    status: Type.Integer(),
    code: Type.String(),
    detail: Type.Optional(Type.String()),
  },
  { additionalProperties: true },
);
