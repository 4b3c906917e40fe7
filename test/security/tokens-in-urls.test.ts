import type { Response as InjectResponse } from 'light-my-request';
import { parseHTML } from 'linkedom';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bodyData, type CatalogTestContext, createCatalogTestApp, onboardingForm } from '../catalog/helpers.js';
import { makeFacts, seedCourse, useFacts } from '../certificates/helpers.js';

let ctx: CatalogTestContext;
beforeAll(async () => {
  ctx = await createCatalogTestApp({ components: [{ custom: { theme: 'visibilite' } }] });
});
afterAll(() => ctx.close());

function post(url: string, form: Record<string, string>) {
  return ctx.app.inject({
    method: 'POST',
    url,
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'text/html' },
    payload: new URLSearchParams(form).toString(),
  });
}

/**
 * The redirects, form actions, scripts and download links (PDF, ZIP) of an answer: none may carry the
 * session token. (Plain navigation links between the iframe's pages are not covered yet.)
 */
function urlsOf(res: InjectResponse): string[] {
  const urls = res.headers.location ? [String(res.headers.location)] : [];
  if (String(res.headers['content-type'] ?? '').startsWith('text/html')) {
    const { document } = parseHTML(res.body);
    for (const el of document.querySelectorAll('[action],[src]')) {
      urls.push(el.getAttribute('action') ?? el.getAttribute('src') ?? '');
    }
    for (const el of document.querySelectorAll('[href]')) {
      const href = el.getAttribute('href') ?? '';
      if (/\/pdf|\.zip|\.pdf/.test(href)) urls.push(href);
    }
  }
  return urls;
}

function expectNoTokenInUrls(res: InjectResponse): void {
  expect(urlsOf(res).filter((u) => u.includes('session_token'))).toEqual([]);
}

describe('the module page’s forms post, then redirect to a single-use view ticket', () => {
  it('marks a part seen: 303 to the module page with a ticket (never the session token); Back shows the page', async () => {
    const user = ctx.fake.createUser({ name: 'Léa Durand' });
    const launch = await ctx.launch(user);
    const page = await post('/catalog/onboarding', {
      session_token: launch.sessionToken,
      ...onboardingForm({ fund: 'uniformation' }),
    });
    const moduleId = bodyData(page.body, 'module-id') as string;
    const block = parseHTML(page.body).document.querySelector('form.seen-form input[name="block_id"]');
    const blockId = block?.getAttribute('value') as string;

    const seen = await post('/catalog/module/seen', {
      session_token: launch.sessionToken,
      module_id: moduleId,
      block_id: blockId,
    });
    expect(seen.statusCode).toBe(303);
    const location = String(seen.headers.location);
    // The ticket, and the module the form was on (so the learner comes back to it).
    expect(location).toMatch(/^\/catalog\/module\?ticket=[A-Za-z0-9_-]{43}&module=[a-z0-9-]+$/);
    expect(new URL(location, 'http://x').searchParams.get('module')).toBe(moduleId);
    expectNoTokenInUrls(seen);

    const view = await ctx.app.inject({ method: 'GET', url: location, headers: { accept: 'text/html' } });
    expect(view.statusCode).toBe(200);
    expect(view.body).toContain('Partie terminée.');
    // The page may stay in the browser's history (Back shows it) but is never shared.
    expect(view.headers['cache-control']).toBe('private, no-cache');
    // The session goes on in the page (meta tag and hidden fields), never in a URL.
    expect(
      parseHTML(view.body).document.querySelector('meta[name="emargement-session"]')?.getAttribute('content'),
    ).toMatch(/^ey/);
    expectNoTokenInUrls(view);

    // Single use: the same link a second time is refused with a French page.
    const again = await ctx.app.inject({ method: 'GET', url: location, headers: { accept: 'text/html' } });
    expect(again.statusCode).toBe(401);
    expect(again.headers['content-type']).toContain('text/html');

    // An incomplete quiz redirects too, and the page says what is missing.
    const incomplete = await post('/catalog/module/quiz', {
      session_token: launch.sessionToken,
      module_id: moduleId,
      q0: '1',
    });
    expect(incomplete.statusCode).toBe(303);
    expectNoTokenInUrls(incomplete);
    const shown = await ctx.app.inject({
      method: 'GET',
      url: String(incomplete.headers.location),
      headers: { accept: 'text/html' },
    });
    expect(shown.body).toContain('Répondez à toutes les questions avant de valider.');

    // Purpose-bound: a ticket for the module page opens nothing else.
    const other = await post('/catalog/module/seen', {
      session_token: launch.sessionToken,
      module_id: moduleId,
      block_id: blockId,
    });
    const ticket = String(other.headers.location).split('ticket=')[1];
    const misuse = await ctx.app.inject({
      method: 'GET',
      url: `/certificates?ticket=${ticket}`,
      headers: { accept: 'text/html' },
    });
    expect(misuse.statusCode).toBe(401);
  });

  it('a ticket older than a minute is refused', async () => {
    const user = ctx.fake.createUser({ name: 'Marc Petit' });
    const launch = await ctx.launch(user);
    const page = await post('/catalog/onboarding', {
      session_token: launch.sessionToken,
      ...onboardingForm({ fund: 'uniformation' }),
    });
    const moduleId = bodyData(page.body, 'module-id') as string;
    const res = await post('/catalog/module/quiz', { session_token: launch.sessionToken, module_id: moduleId });
    await ctx.app.db
      .updateTable('lti_view_tickets')
      .set({ expires_at: new Date(Date.now() - 1000) })
      .execute();
    const late = await ctx.app.inject({
      method: 'GET',
      url: String(res.headers.location),
      headers: { accept: 'text/html' },
    });
    expect(late.statusCode).toBe(401);
  });
});

describe('certificates: redirects and downloads carry no session token', () => {
  it('the course team’s form redirects with a ticket; the learner downloads the PDF by a form post', async () => {
    const facts = useFacts(ctx.app);
    const course = await seedCourse(ctx.app, { people: [{ role: 'learner' }, { role: 'course_team' }] });
    const [learner, team] = course.people;
    facts.set(learner!.id, makeFacts(learner!.id, course.courseId));

    const rule = await post('/certificates/manage/rule', {
      session_token: team!.token,
      modulesRequired: 'all',
      plannedMinutes: '240',
      autoIssue: 'on',
    });
    expect(rule.statusCode).toBe(303);
    expectNoTokenInUrls(rule);
    expect(String(rule.headers.location)).toMatch(/^\/certificates\?ticket=[A-Za-z0-9_-]{43}&notice=rule$/);
    const teamPage = await ctx.app.inject({
      method: 'GET',
      url: String(rule.headers.location),
      headers: { accept: 'text/html' },
    });
    expect(teamPage.statusCode).toBe(200);
    expect(teamPage.body).toContain('La règle de délivrance est enregistrée.');
    expectNoTokenInUrls(teamPage);

    const learnerPage = await ctx.app.inject({
      method: 'GET',
      url: '/certificates',
      headers: { accept: 'text/html', authorization: `Bearer ${learner!.token}` },
    });
    expect(learnerPage.statusCode).toBe(200);
    expectNoTokenInUrls(learnerPage);
    const { document } = parseHTML(learnerPage.body);
    const form = [...document.querySelectorAll('form')].find((f) => /\/pdf$/.test(f.getAttribute('action') ?? ''));
    expect(form?.getAttribute('method')).toBe('post');
    const pdf = await post(form?.getAttribute('action') as string, {
      session_token: form?.querySelector('input[name="session_token"]')?.getAttribute('value') as string,
    });
    expect(pdf.statusCode).toBe(200);
    expect(pdf.headers['content-type']).toBe('application/pdf');
  });
});
