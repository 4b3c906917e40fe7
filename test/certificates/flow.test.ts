import { createHash, createPublicKey, verify } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CertificateFacts } from '../../src/certificates/index.js';
import { signSession } from '../../src/lti/index.js';
import { createToken, createUser } from '../../src/portal/index.js';
import { createTestApp, type TestContext } from '../helpers/app.js';
import { attr, attrs, dom, has, normalise } from '../helpers/dom.js';
import { makeFacts, type Person, pdfQrCodes, pdfText, readStoredZip, seedCourse, useFacts } from './helpers.js';

let ctx: TestContext;
let facts: Map<string, CertificateFacts>;
let courseId: string;
let otherCourseId: string;
let alice: Person; // eligible learner
let bob: Person; // learner, not eligible yet
let carol: Person; // learner without a profile
let team: Person; // course team
let otherTeam: Person; // course team of another course
let otherLearner: Person;

const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
const bearer = (p: Person) => ({ authorization: `Bearer ${p.token}` });

beforeAll(async () => {
  ctx = await createTestApp();
  facts = useFacts(ctx.app);
  const seeded = await seedCourse(ctx.app, {
    people: [
      { role: 'learner', given: 'Éloïse', family: 'Lefèvre' },
      { role: 'learner', given: 'Bruno', family: 'Martin' },
      { role: 'learner' },
      { role: 'course_team', given: 'Équipe', family: 'Cours' },
    ],
  });
  courseId = seeded.courseId;
  [alice, bob, carol, team] = seeded.people as [Person, Person, Person, Person];
  const other = await seedCourse(ctx.app, {
    title: 'Autre cours',
    people: [{ role: 'course_team' }, { role: 'learner' }],
  });
  otherCourseId = other.courseId;
  [otherTeam, otherLearner] = other.people as [Person, Person];
  facts.set(alice.id, makeFacts(alice.id, courseId));
  facts.set(bob.id, makeFacts(bob.id, courseId, { given: 'Bruno', family: 'Martin', completedSector: 2 }));
  facts.set(otherLearner.id, makeFacts(otherLearner.id, otherCourseId, { given: 'Zoé', family: 'Autre' }));
});
afterAll(() => ctx.close());

let aliceNumber: string;
let alicePdf: Buffer;

describe('learner: issuance and download', () => {
  it('shows what is missing to a learner who has not met the rule, and refuses their request', async () => {
    const page = await ctx.app.inject({ method: 'GET', url: `/certificates?session_token=${bob.token}` });
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('Il vous reste');
    expect(page.body).toContain('3 modules de votre secteur à terminer');
    const request = await ctx.app.inject({ method: 'POST', url: '/api/certificates/request', headers: bearer(bob) });
    expect(request.statusCode).toBe(409);
    expect(request.json().code).toBe('not_eligible');
  });

  it('asks a learner without a profile to complete it first', async () => {
    const page = await ctx.app.inject({ method: 'GET', url: `/certificates?session_token=${carol.token}` });
    expect(page.body).toContain('complétez d’abord votre profil');
  });

  it('issues automatically when an eligible learner opens the page, and offers the download', async () => {
    const page = await ctx.app.inject({ method: 'GET', url: `/certificates?session_token=${alice.token}` });
    expect(page.statusCode).toBe(200);
    const doc = dom(page.body);
    expect(normalise(doc.body.textContent)).toContain('Votre certificat de réalisation est prêt.');
    // The download is a form posting the session token (no token in a URL).
    const download = attrs(doc, 'form[action]', 'action').find((action) => action.startsWith('/certificates/EMG-'));
    const match = /^\/certificates\/(EMG-\d{4}-\d{6}-[A-Z])\/pdf$/.exec(download ?? '');
    expect(match).not.toBeNull();
    aliceNumber = match![1]!;
    // Opening it again issues nothing new.
    await ctx.app.inject({ method: 'GET', url: `/certificates?session_token=${alice.token}` });
    const list = await ctx.app.inject({ method: 'GET', url: '/api/certificates', headers: bearer(team) });
    expect(list.json()).toHaveLength(1);
    expect(list.json()[0]).toMatchObject({
      number: aliceNumber,
      state: 'valid',
      issuanceKind: 'automatic',
      reason: null,
    });
  });

  it('downloads the same bytes every time, matching the published hash', async () => {
    const url = `/certificates/${aliceNumber}/pdf?session_token=${alice.token}`;
    const first = await ctx.app.inject({ method: 'GET', url });
    const second = await ctx.app.inject({ method: 'GET', url });
    expect(first.statusCode).toBe(200);
    expect(first.headers['content-type']).toBe('application/pdf');
    expect(first.headers['content-disposition']).toMatch(/attachment; filename="EMG-.*_Lefevre_Eloise\.pdf"/);
    alicePdf = first.rawPayload;
    expect(second.rawPayload.equals(alicePdf)).toBe(true);
    const verification = await ctx.app.inject({
      method: 'GET',
      url: `/verify/${aliceNumber}`,
      headers: { accept: 'application/json' },
    });
    expect(verification.json().pdfSha256).toBe(sha256(alicePdf));
    expect(first.headers.etag).toBe(`"${sha256(alicePdf)}"`);
    const notModified = await ctx.app.inject({
      method: 'GET',
      url,
      headers: { 'if-none-match': `"${sha256(alicePdf)}"` },
    });
    expect(notModified.statusCode).toBe(304);
  });

  it('prints the learner’s facts and a QR code to the verification page', () => {
    const text = pdfText(alicePdf).replace(/\s+/g, ' ');
    expect(text).toContain('Madame Éloïse LEFÈVRE');
    expect(text).toContain(aliceNumber);
    expect(text).toContain(`http://tool.test/verify/${aliceNumber}`);
    expect(pdfQrCodes(alicePdf)).toEqual([`http://tool.test/verify/${aliceNumber}`]);
  });
});

describe('access control', () => {
  it('refuses another learner’s certificate, in the same or another course', async () => {
    for (const who of [bob, otherLearner]) {
      const pdf = await ctx.app.inject({
        method: 'GET',
        url: `/certificates/${aliceNumber}/pdf?session_token=${who.token}`,
      });
      expect(pdf.statusCode).toBe(403);
      expect(pdf.body).not.toContain('%PDF');
      const data = await ctx.app.inject({
        method: 'GET',
        url: `/api/certificates/${aliceNumber}/signed-data`,
        headers: bearer(who),
      });
      expect(data.statusCode).toBe(403);
    }
  });

  it('refuses the course team of another course, and anyone without a session', async () => {
    const other = await ctx.app.inject({
      method: 'GET',
      url: `/certificates/${aliceNumber}/pdf?session_token=${otherTeam.token}`,
    });
    expect(other.statusCode).toBe(403);
    const none = await ctx.app.inject({ method: 'GET', url: `/certificates/${aliceNumber}/pdf` });
    expect(none.statusCode).toBe(401);
    const forged = await ctx.app.inject({
      method: 'GET',
      url: `/certificates/${aliceNumber}/pdf?session_token=${alice.token}x`,
    });
    expect(forged.statusCode).toBe(401);
    const revoke = await ctx.app.inject({
      method: 'POST',
      url: `/api/certificates/${aliceNumber}/revocation`,
      headers: bearer(otherTeam),
      payload: { reason: 'essai' },
    });
    expect(revoke.statusCode).toBe(403);
  });

  it('lets the course team of the course download it', async () => {
    const res = await ctx.app.inject({
      method: 'GET',
      url: `/certificates/${aliceNumber}/pdf?session_token=${team.token}`,
    });
    expect(res.statusCode).toBe(200);
    expect(res.rawPayload.equals(alicePdf)).toBe(true);
  });

  it('keeps learners away from course-team actions', async () => {
    const issue = await ctx.app.inject({
      method: 'POST',
      url: '/api/certificates',
      headers: bearer(bob),
      payload: { learnerId: bob.id, reason: 'je me le délivre' },
    });
    expect(issue.statusCode).toBe(403);
    const rule = await ctx.app.inject({
      method: 'PUT',
      url: '/api/certificates/rule',
      headers: bearer(bob),
      payload: {
        modulesRequired: 'none',
        minCreditedMinutes: 1,
        autoIssue: true,
        plannedMinutes: 240,
        sessionStart: null,
        sessionEnd: null,
      },
    });
    expect(rule.statusCode).toBe(403);
    const zip = await ctx.app.inject({
      method: 'GET',
      url: `/api/certificates/archive.zip?session_token=${alice.token}`,
    });
    expect(zip.statusCode).toBe(403);
    const eligibility = await ctx.app.inject({
      method: 'GET',
      url: `/api/certificates/eligibility/${alice.id}`,
      headers: bearer(bob),
    });
    expect(eligibility.statusCode).toBe(403);
  });
});

describe('public verification', () => {
  it('answers JSON with the minimum of personal data', async () => {
    const res = await ctx.app.inject({
      method: 'GET',
      url: `/verify/${aliceNumber}`,
      headers: { accept: 'application/json' },
    });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body).toMatchObject({
      number: aliceNumber,
      state: 'valid',
      learnerInitials: 'É. L.',
      course: 'Transition numérique des TPE-PME',
      startDay: '2026-01-05',
      endDay: '2026-01-13',
      algorithm: 'beats-v1',
      integrity: { signature: true, dataHash: true, pdfHash: true },
    });
    // The one French duration style: « 45 min », « 4 h », « 1 h 05 ».
    expect(body.totalTime).toMatch(/^(\d+ h( \d{2})?|\d+ min)$/);
    expect(res.body).not.toMatch(/Lefèvre|Éloïse|Hôtel|123 456 782/);
  });

  it('answers a French page to a browser, and accepts a typed number', async () => {
    const res = await ctx.app.inject({
      method: 'GET',
      url: `/verify/${aliceNumber}`,
      headers: { accept: 'text/html' },
    });
    expect(res.headers['content-type']).toContain('text/html');
    const doc = dom(res.body);
    expect(attr(doc, 'html', 'lang')).toBe('fr');
    const shown = normalise(doc.body.textContent);
    expect(shown).toContain('Certificat valide');
    expect(shown).toContain('É. L.');
    expect(shown).toContain(sha256(alicePdf));
    const typed = await ctx.app.inject({
      method: 'GET',
      url: `/verify?numero=${encodeURIComponent(aliceNumber.toLowerCase().replace(/-/g, ' '))}`,
    });
    expect(typed.statusCode).toBe(303);
    expect(typed.headers.location).toBe(`/verify/${aliceNumber}`);
  });

  it('tells a mistyped number from an unknown one', async () => {
    const last = aliceNumber.at(-1) === 'A' ? 'C' : 'A';
    const typo = await ctx.app.inject({
      method: 'GET',
      url: `/verify/${aliceNumber.slice(0, -1)}${last}`,
      headers: { accept: 'application/json' },
    });
    expect(typo.statusCode).toBe(404);
    expect(typo.json().code).toBe('number_mistyped');
    const unknown = await ctx.app.inject({
      method: 'GET',
      url: '/verify/EMG-2026-999999-A',
      headers: { accept: 'application/json' },
    });
    expect(unknown.statusCode).toBe(404);
  });

  it('confirms the genuine PDF and rejects a tampered one', async () => {
    const genuine = await ctx.app.inject({
      method: 'POST',
      url: `/verify/${aliceNumber}/pdf`,
      headers: { 'content-type': 'application/pdf' },
      payload: alicePdf,
    });
    expect(genuine.json()).toMatchObject({ genuine: true, state: 'valid' });
    const tampered = Buffer.from(alicePdf);
    const at = tampered.indexOf('Transition');
    tampered[at] = 't'.charCodeAt(0);
    const res = await ctx.app.inject({
      method: 'POST',
      url: `/verify/${aliceNumber}/pdf`,
      headers: { 'content-type': 'application/pdf' },
      payload: tampered,
    });
    expect(res.json()).toMatchObject({ genuine: false });
  });

  it('verifies the Ed25519 signature over the canonical data, online and with the published key', async () => {
    const signed = (
      await ctx.app.inject({
        method: 'GET',
        url: `/api/certificates/${aliceNumber}/signed-data`,
        headers: bearer(alice),
      })
    ).json();
    const ok = await ctx.app.inject({
      method: 'POST',
      url: '/verify/signature',
      payload: { data: signed.data, signature: signed.signature },
    });
    expect(ok.json()).toMatchObject({ valid: true, number: aliceNumber, state: 'valid', kid: signed.kid });

    const keys = (await ctx.app.inject({ method: 'GET', url: '/verify/keys' })).json().keys;
    const jwk = keys.find((k: { kid: string }) => k.kid === signed.kid);
    const key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: jwk.x }, format: 'jwk' });
    expect(verify(null, Buffer.from(signed.data), key, Buffer.from(signed.signature, 'base64url'))).toBe(true);

    const data = JSON.parse(signed.data);
    data.durations.totalSeconds += 3600;
    const forgedData = signed.data.replace(/"totalSeconds":\d+/, `"totalSeconds":${data.durations.totalSeconds}`);
    const badData = await ctx.app.inject({
      method: 'POST',
      url: '/verify/signature',
      payload: { data: forgedData, signature: signed.signature },
    });
    expect(badData.json().valid).toBe(false);
    const sig = Buffer.from(signed.signature, 'base64url');
    sig[10] = (sig[10] ?? 0) ^ 1;
    const badSig = await ctx.app.inject({
      method: 'POST',
      url: '/verify/signature',
      payload: { data: signed.data, signature: sig.toString('base64url') },
    });
    expect(badSig.json().valid).toBe(false);
    expect(verify(null, Buffer.from(forgedData), key, Buffer.from(signed.signature, 'base64url'))).toBe(false);
  });

  it('publishes only public key material', async () => {
    const res = await ctx.app.inject({ method: 'GET', url: '/verify/keys' });
    expect(res.body).not.toMatch(/"d"|private|sealed/i);
  });
});

describe('course team: rules, manual issuance, versions, revocation', () => {
  it('validates and stores the course rule', async () => {
    const bad = await ctx.app.inject({
      method: 'PUT',
      url: '/api/certificates/rule',
      headers: bearer(team),
      payload: {
        modulesRequired: 'none',
        minCreditedMinutes: null,
        autoIssue: true,
        plannedMinutes: 240,
        sessionStart: null,
        sessionEnd: null,
      },
    });
    expect(bad.statusCode).toBe(400);
    const rule = {
      modulesRequired: 'sector',
      minCreditedMinutes: 30,
      autoIssue: false,
      plannedMinutes: 240,
      sessionStart: null,
      sessionEnd: null,
    };
    const ok = await ctx.app.inject({
      method: 'PUT',
      url: '/api/certificates/rule',
      headers: bearer(team),
      payload: rule,
    });
    expect(ok.statusCode).toBe(200);
    expect(
      (await ctx.app.inject({ method: 'GET', url: '/api/certificates/rule', headers: bearer(team) })).json(),
    ).toEqual(rule);
    // The other course keeps the default rule.
    expect(
      (await ctx.app.inject({ method: 'GET', url: '/api/certificates/rule', headers: bearer(otherTeam) })).json()
        .autoIssue,
    ).toBe(true);
  });

  it('issues on the learner’s request when automatic issuance is off', async () => {
    facts.set(bob.id, makeFacts(bob.id, courseId, { given: 'Bruno', family: 'Martin', completedSector: 5 }));
    const page = await ctx.app.inject({ method: 'GET', url: `/certificates?session_token=${bob.token}` });
    expect(page.body).toContain('Obtenir mon certificat');
    const first = await ctx.app.inject({ method: 'POST', url: '/api/certificates/request', headers: bearer(bob) });
    expect(first.statusCode).toBe(201);
    const again = await ctx.app.inject({ method: 'POST', url: '/api/certificates/request', headers: bearer(bob) });
    expect(again.statusCode).toBe(200);
    expect(again.json().number).toBe(first.json().number);
  });

  it('issues at any time with a reason, and refuses without one or outside the course', async () => {
    facts.set(carol.id, makeFacts(carol.id, courseId, { given: 'Carole', family: 'Durand', completedSector: 0 }));
    const noReason = await ctx.app.inject({
      method: 'POST',
      url: '/api/certificates',
      headers: bearer(team),
      payload: { learnerId: carol.id, reason: '  ' },
    });
    expect(noReason.statusCode).toBe(400);
    const outside = await ctx.app.inject({
      method: 'POST',
      url: '/api/certificates',
      headers: bearer(team),
      payload: { learnerId: otherLearner.id, reason: 'erreur' },
    });
    expect(outside.statusCode).toBe(403);
    const res = await ctx.app.inject({
      method: 'POST',
      url: '/api/certificates',
      headers: bearer(team),
      payload: { learnerId: carol.id, reason: 'Session de clôture suivie en présentiel' },
    });
    expect(res.statusCode).toBe(201);
    const list = (await ctx.app.inject({ method: 'GET', url: '/api/certificates', headers: bearer(team) })).json();
    expect(list.find((c: { number: string }) => c.number === res.json().number)).toMatchObject({
      issuanceKind: 'course_team',
      reason: 'Session de clôture suivie en présentiel',
    });
    const twice = await ctx.app.inject({
      method: 'POST',
      url: '/api/certificates',
      headers: bearer(team),
      payload: { learnerId: carol.id, reason: 'encore' },
    });
    expect(twice.statusCode).toBe(409);
  });

  let v2: string;
  it('corrects by a new version that supersedes the old one', async () => {
    facts.set(alice.id, makeFacts(alice.id, courseId, { given: 'Éloïse', family: 'Lefèvre-Dubois' }));
    const res = await ctx.app.inject({
      method: 'POST',
      url: `/api/certificates/${aliceNumber}/versions`,
      headers: bearer(team),
      payload: { reason: 'Nom de famille corrigé' },
    });
    expect(res.statusCode).toBe(201);
    v2 = res.json().number;
    expect(res.json().version).toBe(2);
    const old = (
      await ctx.app.inject({ method: 'GET', url: `/verify/${aliceNumber}`, headers: { accept: 'application/json' } })
    ).json();
    expect(old).toMatchObject({ state: 'superseded', supersededBy: v2 });
    const oldPage = await ctx.app.inject({
      method: 'GET',
      url: `/verify/${aliceNumber}`,
      headers: { accept: 'text/html' },
    });
    expect(oldPage.body).toContain('remplacé par une version plus récente');
    const fresh = (
      await ctx.app.inject({ method: 'GET', url: `/verify/${v2}`, headers: { accept: 'application/json' } })
    ).json();
    expect(fresh).toMatchObject({ state: 'valid', version: 2, supersedes: aliceNumber });
    // The old bytes are kept unchanged.
    const oldPdf = await ctx.app.inject({
      method: 'GET',
      url: `/certificates/${aliceNumber}/pdf?session_token=${alice.token}`,
    });
    expect(oldPdf.rawPayload.equals(alicePdf)).toBe(true);
    const newText = pdfText(
      (await ctx.app.inject({ method: 'GET', url: `/certificates/${v2}/pdf?session_token=${alice.token}` })).rawPayload,
    );
    expect(newText).toContain('LEFÈVRE-DUBOIS');
    expect(newText).toContain(`remplace le n° ${aliceNumber}`);
    // A superseded certificate cannot be corrected again.
    const again = await ctx.app.inject({
      method: 'POST',
      url: `/api/certificates/${aliceNumber}/versions`,
      headers: bearer(team),
      payload: { reason: 'x' },
    });
    expect(again.statusCode).toBe(409);
  });

  it('revokes, keeping the record, and verifies as revoked', async () => {
    const res = await ctx.app.inject({
      method: 'POST',
      url: `/api/certificates/${v2}/revocation`,
      headers: bearer(team),
      payload: { reason: 'Inscription frauduleuse' },
    });
    expect(res.statusCode).toBe(200);
    const check = (
      await ctx.app.inject({ method: 'GET', url: `/verify/${v2}`, headers: { accept: 'application/json' } })
    ).json();
    expect(check).toMatchObject({ state: 'revoked', integrity: { signature: true, pdfHash: true } });
    expect(check.revokedAt).toBeTruthy();
    const page = await ctx.app.inject({ method: 'GET', url: `/verify/${v2}`, headers: { accept: 'text/html' } });
    expect(page.body).toContain('révoqué');
    const twice = await ctx.app.inject({
      method: 'POST',
      url: `/api/certificates/${v2}/revocation`,
      headers: bearer(team),
      payload: { reason: 'encore' },
    });
    expect(twice.statusCode).toBe(409);
    // The learner still downloads it (it is theirs) but the page says it was revoked; no silent re-issue.
    const learnerPage = await ctx.app.inject({ method: 'GET', url: `/certificates?session_token=${alice.token}` });
    expect(learnerPage.body).toContain('a été révoqué');
    const request = await ctx.app.inject({ method: 'POST', url: '/api/certificates/request', headers: bearer(alice) });
    expect(request.statusCode).toBe(409);
    expect(request.json().code).toBe('revoked');
  });

  it('refuses at the database level to change or delete an issued certificate', async () => {
    await expect(
      ctx.app.db
        .updateTable('certificates')
        .set({ pdf_sha256: 'f'.repeat(64) })
        .where('number', '=', aliceNumber)
        .execute(),
    ).rejects.toThrow(/immutable/);
    await expect(ctx.app.db.deleteFrom('certificates').where('number', '=', aliceNumber).execute()).rejects.toThrow(
      /kept/,
    );
    await expect(
      ctx.app.db
        .updateTable('certificates')
        .set({ state: 'valid', revoked_at: null, revoked_by: null, revocation_reason: null })
        .where('number', '=', v2)
        .execute(),
    ).rejects.toThrow();
  });
});

describe('bulk ZIP', () => {
  it('streams the course’s valid certificates with an index, the PDFs byte for byte', async () => {
    const res = await ctx.app.inject({
      method: 'GET',
      url: `/api/certificates/archive.zip?session_token=${team.token}`,
    });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('application/zip');
    const entries = readStoredZip(res.rawPayload);
    const list = (await ctx.app.inject({ method: 'GET', url: '/api/certificates', headers: bearer(team) })).json();
    const valid = list.filter((c: { state: string }) => c.state === 'valid');
    const pdfs = [...entries.keys()].filter((n) => n.endsWith('.pdf'));
    expect(pdfs).toHaveLength(valid.length);
    for (const c of valid) {
      const name = pdfs.find((n) => n.startsWith(c.number));
      expect(name, c.number).toBeDefined();
      expect(sha256(entries.get(name!)!)).toBe(c.pdfSha256);
    }
    const index = entries.get('index.csv')!.toString('utf8');
    expect(index.startsWith('\ufeffnumero;version;etat;')).toBe(true);
    expect(index.split('\r\n').filter(Boolean)).toHaveLength(valid.length + 1);
    expect(index).not.toContain(aliceNumber); // superseded: only in the full archive
    const all = readStoredZip(
      (await ctx.app.inject({ method: 'GET', url: `/api/certificates/archive.zip?all=1&session_token=${team.token}` }))
        .rawPayload,
    );
    expect([...all.keys()].some((n) => n.startsWith(aliceNumber))).toBe(true);
  });

  it('filters by fund and never includes another course', async () => {
    const none = readStoredZip(
      (
        await ctx.app.inject({
          method: 'GET',
          url: `/api/certificates/archive.zip?fund=atlas&session_token=${team.token}`,
        })
      ).rawPayload,
    );
    expect([...none.keys()]).toEqual(['index.csv']);
    const issued = await ctx.app.inject({ method: 'GET', url: `/certificates?session_token=${otherLearner.token}` });
    expect(issued.body).toContain('est prêt');
    const ours = readStoredZip(
      (
        await ctx.app.inject({
          method: 'GET',
          url: `/api/certificates/archive.zip?fund=akto&all=1&session_token=${team.token}`,
        })
      ).rawPayload,
    );
    expect([...ours.keys()].some((n) => n.includes('Autre'))).toBe(false);
  });

  it('reads certificates page by page, as fast as the consumer takes them', async () => {
    let pages = 0;
    const archive = await ctx.app.certificates.archive(
      { fundSlug: 'akto', allStates: true },
      {
        pageSize: 1,
        highWaterBytes: 16 * 1024,
        onPage: () => {
          pages++;
        },
      },
    );
    // Nobody reads: the pump stops once its buffer is full instead of loading every PDF.
    await new Promise((r) => setTimeout(r, 300));
    const total = (await ctx.app.db.selectFrom('certificates').select('id').where('fund_slug', '=', 'akto').execute())
      .length;
    expect(total).toBeGreaterThanOrEqual(5);
    expect(pages).toBeLessThan(total);
    const chunks: Buffer[] = [];
    for await (const chunk of archive) chunks.push(chunk as Buffer);
    expect(pages).toBe(total + 1);
    expect([...readStoredZip(Buffer.concat(chunks)).keys()].filter((n) => n.endsWith('.pdf'))).toHaveLength(total);
  });

  it('serves a fund’s certificates to that fund’s staff only, through the portal API', async () => {
    await ctx.app.db
      .insertInto('funds')
      .values([
        {
          slug: 'akto',
          name: 'AKTO',
          historical_name: 'Fafih',
          sectors: JSON.stringify([]),
          position: 1,
          version: 1,
        },
        {
          slug: 'atlas',
          name: 'Atlas',
          historical_name: 'Opcabaia',
          sectors: JSON.stringify([]),
          position: 2,
          version: 1,
        },
      ])
      .onConflict((oc) => oc.column('slug').doNothing())
      .execute();
    const staff = await createUser(ctx.app.db, {
      username: 'agent.atlas',
      displayName: 'Agent Atlas',
      role: 'fund_staff',
      fundSlug: 'atlas',
      password: 'un mot de passe très long 42',
    });
    const { token } = await createToken(ctx.app.db, staff.user.id, 'test', 1);
    const own = await ctx.app.inject({
      method: 'GET',
      url: '/api/portal/certificates.zip',
      headers: { authorization: `Bearer ${token}` },
    });
    expect(own.statusCode).toBe(200);
    expect([...readStoredZip(own.rawPayload).keys()]).toEqual(['index.csv']);
    const other = await ctx.app.inject({
      method: 'GET',
      url: '/api/portal/certificates.zip?fund=akto',
      headers: { authorization: `Bearer ${token}` },
    });
    expect(other.statusCode).toBe(403);
    const anonymous = await ctx.app.inject({ method: 'GET', url: '/api/portal/certificates.zip' });
    expect(anonymous.statusCode).toBe(401);
    // A learner's LTI session is not a portal credential.
    const lti = await ctx.app.inject({ method: 'GET', url: '/api/portal/certificates.zip', headers: bearer(team) });
    expect(lti.statusCode).toBe(401);
  });
});

describe('iframe forms (course team page, learner request)', () => {
  const form = (payload: Record<string, string>) => ({
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams(payload).toString(),
  });

  it('renders the course team page with the rule, the learners and the certificates', async () => {
    const page = await ctx.app.inject({ method: 'GET', url: `/certificates?session_token=${team.token}` });
    expect(page.statusCode).toBe(200);
    const doc = dom(page.body);
    const shown = normalise(doc.body.textContent);
    expect(shown).toContain('Règle de délivrance');
    expect(shown).toContain('Éloïse Lefèvre');
    expect(doc.querySelectorAll('select option[value]').length).toBeGreaterThan(0);
    expect(shown).toContain('Nouvelle version');
    expect(attrs(doc, 'form[action]', 'action')).toContain('/certificates/archive.zip');
    expect(page.body).not.toContain('session_token=');
  });

  it('saves the rule from the form and refuses a rule without condition', async () => {
    const ok = await ctx.app.inject({
      method: 'POST',
      url: '/certificates/manage/rule',
      ...form({
        session_token: team.token,
        modulesRequired: 'all',
        minCreditedMinutes: '',
        plannedMinutes: '240',
        sessionStart: '2026-01-05',
        sessionEnd: '2026-03-31',
        autoIssue: 'on',
      }),
    });
    expect(ok.statusCode).toBe(303);
    expect(ok.headers.location).toContain('notice=rule');
    const rule = (await ctx.app.inject({ method: 'GET', url: '/api/certificates/rule', headers: bearer(team) })).json();
    expect(rule).toEqual({
      modulesRequired: 'all',
      minCreditedMinutes: null,
      autoIssue: true,
      plannedMinutes: 240,
      sessionStart: '2026-01-05',
      sessionEnd: '2026-03-31',
    });
    const bad = await ctx.app.inject({
      method: 'POST',
      url: '/certificates/manage/rule',
      ...form({ session_token: team.token, modulesRequired: 'none', plannedMinutes: '240' }),
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.headers['content-type']).toContain('text/html');
    expect(bad.body).toContain('La règle doit exiger');
    const asLearner = await ctx.app.inject({
      method: 'POST',
      url: '/certificates/manage/rule',
      ...form({ session_token: bob.token, modulesRequired: 'sector', plannedMinutes: '240' }),
    });
    expect(asLearner.statusCode).toBe(403);
  });

  it('issues, corrects and revokes from the forms, with the reason', async () => {
    const people = await seedCourse(ctx.app, { people: [{ role: 'learner', given: 'Inès', family: 'Roux' }] });
    // A learner of another course: the team of this course cannot issue to them.
    const refused = await ctx.app.inject({
      method: 'POST',
      url: '/certificates/manage/issue',
      ...form({ session_token: team.token, learnerId: people.people[0]!.id, reason: 'essai' }),
    });
    expect(refused.statusCode).toBe(403);

    const list = async () =>
      (await ctx.app.inject({ method: 'GET', url: '/api/certificates', headers: bearer(team) })).json();
    const bobs = (await list()).find(
      (c: { learnerId: string; state: string }) => c.learnerId === bob.id && c.state === 'valid',
    );
    const corrected = await ctx.app.inject({
      method: 'POST',
      url: `/certificates/manage/${bobs.number}/correct`,
      ...form({ session_token: team.token, reason: 'Dates de session ajoutées' }),
    });
    expect(corrected.statusCode).toBe(303);
    const next = (await list()).find((c: { supersedes: string | null }) => c.supersedes === bobs.number);
    expect(next).toMatchObject({ version: 2, reason: 'Dates de session ajoutées', state: 'valid' });
    const text = pdfText(
      (await ctx.app.inject({ method: 'GET', url: `/certificates/${next.number}/pdf?session_token=${bob.token}` }))
        .rawPayload,
    );
    expect(text.replace(/\s+/g, ' ')).toContain('du 05/01/2026 au 31/03/2026 (dates de la session)');
    const revoked = await ctx.app.inject({
      method: 'POST',
      url: `/certificates/manage/${next.number}/revoke`,
      ...form({ session_token: team.token, reason: 'Doublon' }),
    });
    expect(revoked.statusCode).toBe(303);
    expect((await list()).find((c: { number: string }) => c.number === next.number).state).toBe('revoked');
  });

  it('lets an eligible learner ask from the page form, and shows the public check form', async () => {
    const fresh = await seedCourse(ctx.app, { people: [{ role: 'learner', given: 'Yann', family: 'Le Gall' }] });
    const yann = fresh.people[0]!;
    await ctx.app.inject({
      method: 'PUT',
      url: '/api/certificates/rule',
      headers: bearer(await courseTeamOf(fresh.courseId, fresh.registrationId)),
      payload: {
        modulesRequired: 'sector',
        minCreditedMinutes: null,
        autoIssue: false,
        plannedMinutes: 240,
        sessionStart: null,
        sessionEnd: null,
      },
    });
    facts.set(yann.id, makeFacts(yann.id, fresh.courseId, { given: 'Yann', family: 'Le Gall' }));
    const page = await ctx.app.inject({ method: 'GET', url: `/certificates?session_token=${yann.token}` });
    expect(has(dom(page.body), 'form[action="/certificates/request"]')).toBe(true);
    const asked = await ctx.app.inject({
      method: 'POST',
      url: '/certificates/request',
      ...form({ session_token: yann.token }),
    });
    expect(asked.statusCode).toBe(303);
    const after = await ctx.app.inject({ method: 'GET', url: asked.headers.location as string });
    expect(after.body).toContain('Le certificat a été délivré.');
    expect(after.body).toContain('Votre certificat de réalisation est prêt.');
    const check = await ctx.app.inject({ method: 'GET', url: '/verify', headers: { accept: 'text/html' } });
    expect(check.body).toContain('Numéro du certificat');
    const typo = await ctx.app.inject({
      method: 'GET',
      url: '/verify?numero=EMG-2026-12',
      headers: { accept: 'text/html' },
    });
    expect(typo.body).toContain('n’a pas le bon format');
  });
});

/** A course-team session in an existing course (a launch row for a new person). */
async function courseTeamOf(courseId: string, registrationId: string): Promise<Person> {
  const learner = await ctx.app.db
    .insertInto('learners')
    .values({ issuer: 'https://lms.test', sub: `team-${courseId}` })
    .returning('id')
    .executeTakeFirstOrThrow();
  const launch = await ctx.app.db
    .insertInto('lti_launches')
    .values({
      registration_id: registrationId,
      learner_id: learner.id,
      course_id: courseId,
      resource_link_id: null,
      message_type: 'LtiResourceLinkRequest',
      role: 'course_team',
      roles: JSON.stringify([]) as unknown as string[],
      deployment_id: 'd1',
      target_link_uri: 'http://tool.test/lti/launch',
      ags: null,
      nrps: null,
      deep_linking: null,
    })
    .returning('id')
    .executeTakeFirstOrThrow();
  const token = await signSession(ctx.app, {
    learnerId: learner.id,
    courseId,
    resourceLinkId: null,
    launchId: launch.id,
    registrationId,
    role: 'course_team',
  });
  return { id: learner.id, token, role: 'course_team' };
}
