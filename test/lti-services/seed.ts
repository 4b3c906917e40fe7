import { randomUUID } from 'node:crypto';
import type { FastifyBaseLogger } from 'fastify';
import { exportJWK, generateKeyPair, type JSONWebKeySet } from 'jose';
import pino from 'pino';
import type { Db } from '../../src/db/index.js';
import { REDACT_PATHS } from '../../src/http/logger.js';
import type { ToolSigningKey } from '../../src/lti-services/access-tokens.js';
import type { FakeOpenEdxServices } from '../fixtures/openedx/services.js';

/** A tool key pair of the test's own, for service tests that do not go through a launch. */
export async function testToolKey(): Promise<{ key: ToolSigningKey; jwks: JSONWebKeySet }> {
  const { publicKey, privateKey } = await generateKeyPair('RS256', { extractable: true });
  const kid = `test-${randomUUID()}`;
  const jwk = await exportJWK(publicKey);
  return { key: { kid, alg: 'RS256', privateKey }, jwks: { keys: [{ ...jwk, kid, alg: 'RS256', use: 'sig' }] } };
}

export interface SeededPlatform {
  registrationId: string;
  configId: string;
  clientId: string;
  courseId: string;
  issuer: string;
}

/** A registration row pointing at the fake platform, and a course of it, as a launch would have left. */
export async function seedPlatform(
  db: Db,
  platform: FakeOpenEdxServices,
  jwks: () => Promise<JSONWebKeySet>,
): Promise<SeededPlatform> {
  const configId = randomUUID();
  const clientId = randomUUID();
  platform.addTool({ configId, clientId, toolJwks: jwks });
  const issuer = platform.baseUrl;
  const reg = await db
    .insertInto('lti_registrations')
    .values({
      name: 'FUN test',
      issuer,
      client_id: clientId,
      deployment_ids: JSON.stringify(['1']),
      auth_login_url: `${issuer}/api/lti_consumer/v1/launch/`,
      access_token_url: platform.tokenUrl(configId),
      jwks_url: `${issuer}/api/lti_consumer/v1/public_keysets/${configId}`,
      removed_at: null,
    })
    .returning('id')
    .executeTakeFirstOrThrow();
  const course = await db
    .insertInto('courses')
    .values({
      issuer,
      context_id: `course-v1:FUN+TPE+${configId.slice(0, 8)}`,
      label: 'TPE',
      title: 'Transition numérique des TPE-PME - FUN',
    })
    .returning('id')
    .executeTakeFirstOrThrow();
  return { registrationId: reg.id, configId, clientId, courseId: course.id, issuer };
}

export async function seedResourceLink(db: Db, p: SeededPlatform, custom: Record<string, string> = {}) {
  const row = await db
    .insertInto('resource_links')
    .values({
      course_id: p.courseId,
      registration_id: p.registrationId,
      resource_link_id: `block-v1:FUN+TPE+2026+type@lti_consumer+block@${randomUUID().replace(/-/g, '')}`,
      title: null,
      custom: JSON.stringify(custom) as unknown as Record<string, string>,
    })
    .returning('id')
    .executeTakeFirstOrThrow();
  return row.id;
}

/** A learner and their LtiResourceLinkRequest launch, carrying the given AGS/NRPS claims. */
export async function seedLaunch(
  db: Db,
  p: SeededPlatform,
  input: {
    resourceLinkId: string | null;
    sub?: string;
    role?: 'learner' | 'course_team' | 'staff';
    ags?: Record<string, unknown> | null;
    nrps?: Record<string, unknown> | null;
  },
): Promise<{ learnerId: string; launchId: string; sub: string }> {
  const sub = input.sub ?? randomUUID();
  const learner = await db
    .insertInto('learners')
    .values({ issuer: p.issuer, sub, name: null, given_name: null, family_name: null, email: null, username: null })
    .onConflict((oc) => oc.columns(['issuer', 'sub']).doUpdateSet({ updated_at: new Date() }))
    .returning('id')
    .executeTakeFirstOrThrow();
  const launch = await db
    .insertInto('lti_launches')
    .values({
      registration_id: p.registrationId,
      learner_id: learner.id,
      course_id: p.courseId,
      resource_link_id: input.resourceLinkId,
      message_type: 'LtiResourceLinkRequest',
      role: input.role ?? 'learner',
      roles: JSON.stringify(['http://purl.imsglobal.org/vocab/lis/v2/membership#Learner']) as unknown as string[],
      deployment_id: '1',
      target_link_uri: 'http://tool.test/lti/launch',
      ags: input.ags ? (JSON.stringify(input.ags) as unknown as Record<string, unknown>) : null,
      nrps: input.nrps ? (JSON.stringify(input.nrps) as unknown as Record<string, unknown>) : null,
      deep_linking: null,
    })
    .returning('id')
    .executeTakeFirstOrThrow();
  return { learnerId: learner.id, launchId: launch.id, sub };
}

/** A pino logger whose lines the test can read (operator-visible errors are part of the contract). */
export function capturingLogger(): { log: FastifyBaseLogger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const log = pino(
    { level: 'info', redact: { paths: REDACT_PATHS, censor: '[redacted]' } },
    { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) },
  );
  return { log: log as unknown as FastifyBaseLogger, lines };
}
