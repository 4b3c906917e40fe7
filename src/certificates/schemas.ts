import { Type } from '@sinclair/typebox';

/** The TypeBox schemas of the certificates routes. */

export const NumberParams = Type.Object({ number: Type.String({ minLength: 1, maxLength: 40 }) });
export const TokenQuery = Type.Object({ session_token: Type.Optional(Type.String({ maxLength: 4096 })) });
export const TokenBody = Type.Object({ session_token: Type.Optional(Type.String({ maxLength: 4096 })) });
export const Html = Type.String();
export const Problem = Type.Object({ status: Type.Integer(), code: Type.String() }, { additionalProperties: true });

export const Summary = Type.Object({
  number: Type.String(),
  state: Type.Union([Type.Literal('valid'), Type.Literal('superseded'), Type.Literal('revoked')]),
  stateLabel: Type.String(),
  version: Type.Integer(),
  supersedes: Type.Union([Type.String(), Type.Null()]),
  supersededBy: Type.Union([Type.String(), Type.Null()]),
  revokedAt: Type.Union([Type.String(), Type.Null()]),
  learnerInitials: Type.Union([Type.String(), Type.Null()]),
  course: Type.String(),
  provider: Type.String(),
  startDay: Type.Union([Type.String(), Type.Null()]),
  endDay: Type.Union([Type.String(), Type.Null()]),
  issuedDay: Type.String(),
  totalSeconds: Type.Integer(),
  totalTime: Type.String(),
  modulesCompleted: Type.Integer(),
  modulesPlanned: Type.Integer(),
  algorithm: Type.String(),
  pdfSha256: Type.String(),
  dataSha256: Type.String(),
  signature: Type.Object({ alg: Type.Literal('Ed25519'), kid: Type.String(), value: Type.String() }),
  integrity: Type.Object({ signature: Type.Boolean(), dataHash: Type.Boolean(), pdfHash: Type.Boolean() }),
  verificationUrl: Type.String(),
});

export const Keys = Type.Object({
  keys: Type.Array(
    Type.Object({
      kid: Type.String(),
      kty: Type.Literal('OKP'),
      crv: Type.Literal('Ed25519'),
      x: Type.String(),
      alg: Type.Literal('EdDSA'),
      use: Type.Literal('sig'),
      status: Type.String(),
      created_at: Type.String(),
      retired_at: Type.Union([Type.String(), Type.Null()]),
    }),
  ),
});

export const PdfCheck = Type.Object({
  number: Type.String(),
  genuine: Type.Boolean(),
  state: Type.String(),
  expectedSha256: Type.String(),
  computedSha256: Type.String(),
});

export const SignatureCheckBody = Type.Object({
  data: Type.String({ minLength: 2, maxLength: 200_000, description: 'the canonical certificate JSON, as signed' }),
  signature: Type.String({ maxLength: 200 }),
});
export const SignatureCheck = Type.Object({
  valid: Type.Boolean(),
  number: Type.Union([Type.String(), Type.Null()]),
  state: Type.Union([Type.String(), Type.Null()]),
  kid: Type.Union([Type.String(), Type.Null()]),
});

export const RuleBody = Type.Object({
  modulesRequired: Type.Union([Type.Literal('none'), Type.Literal('sector'), Type.Literal('all')]),
  minCreditedMinutes: Type.Union([Type.Integer({ minimum: 0, maximum: 100_000 }), Type.Null()]),
  autoIssue: Type.Boolean(),
  plannedMinutes: Type.Integer({ minimum: 1, maximum: 100_000 }),
  sessionStart: Type.Union([Type.String({ format: 'date' }), Type.Null()]),
  sessionEnd: Type.Union([Type.String({ format: 'date' }), Type.Null()]),
});

/** The rule form of the course-team page: every value is text, checkboxes are absent when off. */
export const RuleForm = Type.Object({
  session_token: Type.Optional(Type.String()),
  modulesRequired: Type.Union([Type.Literal('none'), Type.Literal('sector'), Type.Literal('all')]),
  minCreditedMinutes: Type.Optional(Type.String({ pattern: '^\\d{0,6}$' })),
  plannedMinutes: Type.String({ pattern: '^\\d{1,6}$' }),
  sessionStart: Type.Optional(Type.String({ pattern: '^(\\d{4}-\\d{2}-\\d{2})?$' })),
  sessionEnd: Type.Optional(Type.String({ pattern: '^(\\d{4}-\\d{2}-\\d{2})?$' })),
  autoIssue: Type.Optional(Type.Literal('on')),
});

export const ReasonBody = Type.Object({
  session_token: Type.Optional(Type.String()),
  reason: Type.String({ minLength: 1, maxLength: 500 }),
});
export const IssueBody = Type.Object({
  session_token: Type.Optional(Type.String()),
  learnerId: Type.String({ format: 'uuid' }),
  reason: Type.String({ minLength: 1, maxLength: 500 }),
});

export const Issued = Type.Object({
  number: Type.String(),
  version: Type.Integer(),
  state: Type.String(),
  created: Type.Boolean(),
});

export const ListItem = Type.Object({
  number: Type.String(),
  version: Type.Integer(),
  state: Type.String(),
  learnerId: Type.String(),
  learner: Type.String(),
  fund: Type.Union([Type.String(), Type.Null()]),
  issuedAt: Type.String(),
  issuanceKind: Type.String(),
  reason: Type.Union([Type.String(), Type.Null()]),
  totalSeconds: Type.Integer(),
  pdfSha256: Type.String(),
  supersedes: Type.Union([Type.String(), Type.Null()]),
});

export const ArchiveQuery = Type.Object({
  session_token: Type.Optional(Type.String({ maxLength: 4096 })),
  fund: Type.Optional(Type.String({ pattern: '^[a-z0-9-]{1,60}$' })),
  all: Type.Optional(Type.Union([Type.Literal('1'), Type.Literal('true')])),
});

export const PortalArchiveQuery = Type.Object({
  fund: Type.Optional(Type.String({ pattern: '^[a-z0-9-]{1,60}$' })),
  course: Type.Optional(Type.String({ format: 'uuid' })),
  all: Type.Optional(Type.Union([Type.Literal('1'), Type.Literal('true')])),
});
