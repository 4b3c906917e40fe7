import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sweepCertificates } from '../../src/certificates/index.js';
import { ALGORITHM } from '../../src/tracking/rules.js';
import type { CatalogTestContext } from '../catalog/helpers.js';
import type { FakeComponent, FakeUser } from '../fixtures/openedx/index.js';
import {
  completeModulePage,
  createSectorCourse,
  offeredCertificateNumber,
  openModule,
  pdfQrCodes,
  pdfText,
} from './helpers.js';

/**
 * The real chain, from the fake Open edX: launch, onboarding (the catalog's profile), the eight AKTO sector
 * modules completed through the catalog's API, then the certificate: issued automatically (on the page
 * and by the sweep), downloaded, printed with the catalog's and the tracking's facts, verified.
 */
let ctx: CatalogTestContext;
let links: FakeComponent[];

beforeAll(async () => {
  ({ ctx, links } = await createSectorCourse());
});
afterAll(() => ctx.close());

/** Opens the module of a link (onboarding first when needed) and completes it like a learner would. */
async function completeModule(user: FakeUser, link: FakeComponent, first: boolean): Promise<string> {
  const launch = await openModule(ctx, user, link, first);
  expect(await completeModulePage(ctx, launch.sessionToken, launch.body)).toMatch(/^akto-/);
  return launch.sessionToken;
}

describe('from launch to a verified certificate', () => {
  let token: string;

  it('tells the learner what is left, then issues once the eight sector modules are done', async () => {
    const user = ctx.fake.createUser({ name: 'Léa Durand' });
    token = await completeModule(user, links[0]!, true);
    const early = await ctx.app.inject({ method: 'GET', url: `/certificates?session_token=${token}` });
    expect(early.body).toContain('7 modules de votre secteur à terminer');
    for (const link of links.slice(1)) token = await completeModule(user, link, false);

    const page = await ctx.app.inject({ method: 'GET', url: `/certificates?session_token=${token}` });
    expect(page.body).toContain('Votre certificat de réalisation est prêt.');
    const number = offeredCertificateNumber(page.body) as string;
    expect(number).toBeTruthy();

    const pdf = await ctx.app.inject({ method: 'GET', url: `/certificates/${number}/pdf?session_token=${token}` });
    expect(pdf.statusCode).toBe(200);
    const text = pdfText(pdf.rawPayload).replace(/\s+/g, ' ');
    expect(text).toContain('Madame Léa DURAND');
    expect(text).toContain('Hôtel du Parc');
    expect(text).toContain('732 829 320 00074');
    expect(text).toContain('AKTO');
    expect(text).toContain('Fafih');
    expect(text).toContain(`algorithme ${ALGORITHM}`);
    // Eight sector modules done; the eight common-trunk modules listed, not done.
    expect(text).toContain('Modules terminés');
    expect(text).toMatch(/\b8 ?\/ ?16\b/);
    expect(pdfQrCodes(pdf.rawPayload)).toEqual([`${ctx.publicUrl}/verify/${number}`]);

    const verification = await ctx.app.inject({
      method: 'GET',
      url: `/verify/${number}`,
      headers: { accept: 'application/json' },
    });
    expect(verification.json()).toMatchObject({
      state: 'valid',
      learnerInitials: 'L. D.',
      modulesCompleted: 8,
      modulesPlanned: 16,
    });
  });

  it('issues by the sweep for a learner who never opens the certificate page', async () => {
    const user = ctx.fake.createUser({ name: 'Marc Petit' });
    for (const [i, link] of links.entries()) await completeModule(user, link, i === 0);
    const issued = await sweepCertificates(ctx.app);
    expect(issued).toHaveLength(1);
    expect(await sweepCertificates(ctx.app)).toEqual([]);
  });

  it('shows the course team every certificate of the course', async () => {
    const teacher = await ctx.launch(ctx.fake.createUser({ role: 'instructor' }), links[0]);
    const page = await ctx.app.inject({ method: 'GET', url: `/certificates?session_token=${teacher.sessionToken}` });
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('Règle de délivrance');
    // One download form per certificate row (the session token is posted, never put in a link).
    expect(page.body.match(/<tr>\s*<td><form method="post" action="\/certificates\/EMG-/g)).toHaveLength(2);
  });
});
