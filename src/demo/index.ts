import { createHash, randomUUID } from 'node:crypto';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyReply } from 'fastify';
import fp from 'fastify-plugin';
import { listFunds } from '../catalog/index.js';
import { BadRequestError } from '../http/errors.js';
import { sendLearnerPage } from '../http/html.js';
import { registerPlatform } from '../lti/index.js';
import { autoPostForm, deepLinkingDone, demoError, demoHome, demoUnitPage, type Persona } from './pages.js';
import {
  DEMO_CLIENT_ID,
  DEMO_DEPLOYMENT_ID,
  DEMO_PLATFORM_NAME,
  DemoPlatform,
  type DemoUnit,
  type DemoUser,
  demoUrls,
} from './platform.js';

/**
 * The built-in demo LMS (development only): `/demo` is a course whose units embed the tool in an iframe the
 * way Open edX does, launched in LTI 1.3 by a small platform living in this process (./platform.ts). It is
 * registered as a platform at start. The configuration refuses it in production (`DEMO_LMS`); tests turn
 * it on with `DEMO_LMS=true`. See docs/operations/demo-lms.md.
 */

/** The course's units at start: « Mon parcours » (no custom parameter) and three themes. */
const BASE_UNITS: DemoUnit[] = [
  { slug: 'parcours', title: 'Mon parcours', custom: {} },
  { slug: 'digitalisation', title: 'Digitalisation de l’entreprise', custom: { theme: 'digitalisation' } },
  { slug: 'visibilite', title: 'Augmenter sa visibilité', custom: { theme: 'visibilite' } },
  { slug: 'attentes-clients', title: 'Attentes clients ou usagers', custom: { theme: 'attentes-clients' } },
];

const GIVEN = ['Nadia', 'Lucas', 'Camille', 'Karim', 'Léa', 'Hugo', 'Inès', 'Thomas', 'Manon', 'Yanis'];
const FAMILY = ['Rahmani', 'Martin', 'Bernard', 'Petit', 'Durand', 'Leroy', 'Moreau', 'Garcia', 'Fournier', 'Roux'];

/** A learner of the demo platform, all derived from the sub (no state to keep). */
function learner(sub: string): DemoUser {
  const h = createHash('sha256').update(sub).digest();
  const name = `${GIVEN[(h[0] as number) % GIVEN.length]} ${FAMILY[(h[1] as number) % FAMILY.length]}`;
  const short = sub.replace(/[^a-z0-9]/gi, '').slice(0, 8);
  return { sub, name, email: `apprenant-${short}@demo.invalid`, username: `demo-${short}`, role: 'learner' };
}

const INSTRUCTOR: DemoUser = {
  sub: 'demo-instructor',
  name: 'Claire Formatrice',
  email: 'formatrice@demo.invalid',
  username: 'demo-formatrice',
  role: 'instructor',
};

const UnitQuery = Type.Object({
  unit: Type.Optional(Type.String({ maxLength: 64 })),
  as: Type.Optional(Type.Union([Type.Literal('learner'), Type.Literal('instructor')])),
  sub: Type.Optional(Type.String({ maxLength: 64, pattern: '^[A-Za-z0-9-]*$' })),
  fund: Type.Optional(Type.String({ maxLength: 64, pattern: '^[a-z0-9-]*$' })),
});

const AuthParams = Type.Record(Type.String(), Type.String());
const Html = Type.String();

async function demo(fastify: FastifyInstance): Promise<void> {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  if (app.config.nodeEnv === 'production') throw new Error('the demo LMS never runs in production');
  // Its RSA key is made on first use, not at start: the start only registers the platform.
  let created: Promise<DemoPlatform> | null = null;
  const demoPlatform = () => {
    created ??= DemoPlatform.create(app.config.publicUrl);
    return created;
  };
  const units: DemoUnit[] = BASE_UNITS.map((u) => ({ ...u, custom: { ...u.custom } }));
  const urls = demoUrls(app.config.publicUrl);
  await registerPlatform(app, {
    name: DEMO_PLATFORM_NAME,
    issuer: urls.issuer,
    clientId: DEMO_CLIENT_ID,
    deploymentIds: [DEMO_DEPLOYMENT_ID],
    authLoginUrl: urls.authLoginUrl,
    accessTokenUrl: urls.accessTokenUrl,
    jwksUrl: urls.jwksUrl,
  });
  app.log.info({ url: `${app.config.publicUrl}/demo` }, 'demo LMS registered (development only)');

  const html = { config: { html: true } };

  app.get(
    '/demo',
    {
      ...html,
      schema: {
        querystring: Type.Object({ added: Type.Optional(Type.Integer({ minimum: 0 })) }),
        response: { 200: Html },
      },
    },
    async (request, reply) => {
      const [funds, returning] = await Promise.all([
        listFunds(app.db),
        app.db
          .selectFrom('learners')
          .select(['sub', 'name'])
          .where('issuer', '=', urls.issuer)
          .where('sub', '!=', INSTRUCTOR.sub)
          .orderBy('created_at', 'desc')
          .limit(20)
          .execute(),
      ]);
      return sendLearnerPage(
        reply,
        demoHome({
          units,
          funds: funds.map((f) => ({ slug: f.slug, name: f.name })),
          returning,
          ...(request.query.added !== undefined ? { added: request.query.added } : {}),
        }),
      );
    },
  );

  app.get(
    '/demo/unit',
    { ...html, schema: { querystring: UnitQuery, response: { 200: Html, 302: Type.Null(), 404: Html } } },
    async (request, reply) => {
      const q = request.query;
      const unit = units.find((u) => u.slug === (q.unit ?? 'parcours'));
      if (!unit)
        throw new BadRequestError('demo_unit_unknown', 'Cette unité n’existe pas dans le cours de démonstration.');
      const as = q.as ?? 'learner';
      if (as === 'learner' && !q.sub) {
        // A new learner: a fresh sub, kept in the URL so that every unit and reload is the same person.
        const persona: Persona = { as, sub: randomUUID(), ...(q.fund ? { fund: q.fund } : {}) };
        const next = new URLSearchParams({
          unit: unit.slug,
          as,
          sub: persona.sub as string,
          ...(q.fund ? { fund: q.fund } : {}),
        });
        return reply.redirect(`/demo/unit?${next}`, 302);
      }
      const user = as === 'instructor' ? INSTRUCTOR : learner(q.sub as string);
      const persona: Persona = {
        as,
        ...(q.sub && as === 'learner' ? { sub: q.sub } : {}),
        ...(q.fund ? { fund: q.fund } : {}),
      };
      const iframeSrc = await (await demoPlatform()).loginInitiationUrl({
        user,
        unit,
        messageType: 'LtiResourceLinkRequest',
        fund: q.fund || null,
      });
      return sendLearnerPage(reply, demoUnitPage({ unit, units, user, persona, iframeSrc }));
    },
  );

  app.get('/demo/pick', { ...html, schema: { response: { 200: Html } } }, async (_request, reply) => {
    const unit: DemoUnit = { slug: 'pick', title: 'Ajouter un contenu', custom: {} };
    const iframeSrc = await (await demoPlatform()).loginInitiationUrl({
      user: INSTRUCTOR,
      unit,
      messageType: 'LtiDeepLinkingRequest',
      fund: null,
    });
    return sendLearnerPage(
      reply,
      demoUnitPage({
        unit,
        units,
        user: INSTRUCTOR,
        persona: { as: 'instructor' },
        iframeSrc,
        heading: 'Ajouter un contenu (Deep Linking)',
      }),
    );
  });

  app.get(
    '/demo/lti/jwks',
    { schema: { response: { 200: Type.Object({ keys: Type.Array(Type.Record(Type.String(), Type.Unknown())) }) } } },
    async () => (await demoPlatform()).jwks(),
  );

  // The authentication endpoint: the tool redirects the browser here (GET), some tools post (POST).
  const authorize = async (params: URLSearchParams, reply: FastifyReply) => {
    const result = await (await demoPlatform()).authorize(params);
    if (!result.ok) return sendLearnerPage(reply, demoError(result.error), 400);
    return sendLearnerPage(reply, autoPostForm(result.action, result.fields));
  };
  app.get(
    '/demo/lti/authorize',
    { ...html, schema: { querystring: AuthParams, response: { 200: Html, 400: Html } } },
    async (request, reply) => authorize(new URLSearchParams(request.query), reply),
  );
  app.post(
    '/demo/lti/authorize',
    { ...html, schema: { body: AuthParams, response: { 200: Html, 400: Html } } },
    async (request, reply) => authorize(new URLSearchParams(request.body), reply),
  );

  // No LTI Advantage service here (its launches carry no AGS or NRPS claim): the token endpoint says so.
  app.post(
    '/demo/lti/token',
    { schema: { response: { 400: Type.Object({ error: Type.String(), error_description: Type.String() }) } } },
    async (_request, reply) =>
      reply
        .code(400)
        .send({ error: 'invalid_scope', error_description: 'the demo platform offers no LTI Advantage service' }),
  );

  app.post(
    '/demo/lti/deep-linking-return',
    {
      ...html,
      schema: {
        body: Type.Object({ JWT: Type.String({ maxLength: 65536 }) }, { additionalProperties: true }),
        response: { 200: Html, 400: Html },
      },
    },
    async (request, reply) => {
      let placed: { title: string; custom: Record<string, string> }[];
      try {
        placed = await (await demoPlatform()).readDeepLinkingResponse(request.body.JWT);
      } catch (err) {
        request.log.warn({ err }, 'demo LMS: deep-linking response refused');
        return sendLearnerPage(
          reply,
          demoError('La réponse de l’outil n’est pas valable (signature, émetteur ou destinataire).'),
          400,
        );
      }
      for (const item of placed) {
        units.push({ slug: `lien-${units.length + 1}`, title: item.title, custom: item.custom });
      }
      return sendLearnerPage(reply, deepLinkingDone(placed.map((p) => p.title)));
    },
  );

  app.get('/demo/assets/autopost.js', { schema: { response: { 200: Type.String() } } }, async (_request, reply) =>
    reply
      .type('text/javascript; charset=utf-8')
      .header('cache-control', 'public, max-age=300')
      .send("document.getElementById('lti-launch').submit();\n"),
  );
}

export const demoPlugin = fp(demo, { name: 'demo', dependencies: ['lti'], fastify: '5.x' });
