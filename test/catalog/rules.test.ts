import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ModuleManifest, QuizBlock } from '../../src/catalog/model.js';
import {
  checkEligibility,
  checkSiret,
  isParcoursTarget,
  type LinkTarget,
  learnerProgramme,
  luhnValid,
  normalizeSiret,
  type OnboardingInput,
  parcoursTrack,
  parseLinkTarget,
  progressOf,
  type RoutingCatalog,
  resolveModule,
  scoreQuiz,
  splitFullName,
  validateOnboarding,
} from '../../src/catalog/rules.js';

/** Appends the Luhn key digit to 13 digits: a well-formed SIRET. */
function withLuhnKey(thirteen: string): string {
  for (let d = 0; d <= 9; d++) if (luhnValid(`${thirteen}${d}`)) return `${thirteen}${d}`;
  throw new Error('unreachable');
}

describe('SIRET', () => {
  it('accepts a real SIRET, with the spaces people copy from a payslip', () => {
    expect(checkSiret('732 829 320 00074')).toEqual({ ok: true, siret: '73282932000074' });
    expect(checkSiret('443.061.841.00047')).toEqual({ ok: true, siret: '44306184100047' });
  });

  it('refuses a wrong key digit, naming the likely cause', () => {
    const r = checkSiret('73282932000075');
    expect(r).toMatchObject({ ok: false, reason: 'key' });
    expect(!r.ok && r.message).toContain('mal recopié');
  });

  it('refuses the wrong number of digits and letters', () => {
    expect(checkSiret('7328293200007')).toMatchObject({ ok: false, reason: 'format' });
    expect(checkSiret('732829320000745')).toMatchObject({ ok: false, reason: 'format' });
    const letters = checkSiret('7328293200007A');
    expect(letters).toMatchObject({ ok: false, reason: 'format' });
    expect(!letters.ok && letters.message).toContain('pas des chiffres');
    expect(checkSiret('   ')).toMatchObject({ ok: false, reason: 'empty' });
  });

  it('La Poste: establishments use a digit sum multiple of 5 instead of the Luhn key', () => {
    expect(luhnValid('35600000012341')).toBe(false);
    expect(checkSiret('35600000012341')).toMatchObject({ ok: true });
    expect(checkSiret('35600000000048')).toMatchObject({ ok: true }); // head office, Luhn-valid
    expect(checkSiret('35600000012342')).toMatchObject({ ok: false, reason: 'key' });
    // The exception belongs to La Poste's SIREN only.
    expect(luhnValid('35600100012341')).toBe(false);
    expect(checkSiret('35600100012341')).toMatchObject({ ok: false, reason: 'key' });
  });

  it('every 13 digits completed with their Luhn key pass; changing one digit fails (outside La Poste)', () => {
    fc.assert(
      fc.property(
        fc.stringMatching(/^[0-9]{13}$/),
        fc.integer({ min: 0, max: 12 }),
        fc.integer({ min: 1, max: 9 }),
        (base, pos, delta) => {
          fc.pre(!base.startsWith('356000000'));
          const siret = withLuhnKey(base);
          expect(checkSiret(siret).ok).toBe(true);
          const digits = [...siret];
          digits[pos] = String((Number(digits[pos]) + delta) % 10);
          // Luhn detects every single-digit error.
          expect(checkSiret(digits.join('')).ok).toBe(false);
        },
      ),
    );
  });

  it('normalises spaces, dots, dashes and non-breaking spaces only', () => {
    expect(normalizeSiret('732\u00a0829-320.00074')).toBe('73282932000074');
    expect(normalizeSiret('73282932000074x')).toBe('73282932000074x');
  });
});

describe('eligibility', () => {
  it('refuses 250 employees or more with the reason', () => {
    const r = checkEligibility({ headcountBand: '250+' });
    expect(r.eligible).toBe(false);
    expect(!r.eligible && r.reason).toBe('company_too_large');
    expect(!r.eligible && r.message).toContain('moins de 250 salariés');
  });

  it('accepts every TPE-PME band', () => {
    for (const band of ['0-9', '10-49', '50-249'] as const)
      expect(checkEligibility({ headcountBand: band })).toEqual({ eligible: true });
  });
});

describe('onboarding validation', () => {
  const ctx = {
    funds: [
      { slug: 'akto', name: 'AKTO' },
      { slug: 'uniformation', name: 'Uniformation' },
    ],
    branches: [
      { idcc: '1979', fundSlug: 'akto' },
      { idcc: '2941', fundSlug: 'uniformation' },
    ],
  };
  const good: OnboardingInput = {
    civility: 'madame',
    familyName: '  Durand ',
    givenName: 'Léa',
    companyName: 'Hôtel du Parc',
    siret: '732 829 320 00074',
    headcountBand: '10-49',
    idcc: '',
    fund: 'akto',
  };

  it('accepts a complete form and cleans it', () => {
    const r = validateOnboarding(good, ctx);
    expect(r).toEqual({
      ok: true,
      profile: {
        civility: 'madame',
        familyName: 'Durand',
        givenName: 'Léa',
        companyName: 'Hôtel du Parc',
        siret: '73282932000074',
        headcountBand: '10-49',
        idcc: null,
        fundSlug: 'akto',
      },
    });
  });

  it('derives the fund from the branch (IDCC) when no fund is chosen', () => {
    const r = validateOnboarding({ ...good, fund: '', idcc: '2941' }, ctx);
    expect(r).toMatchObject({ ok: true, profile: { fundSlug: 'uniformation', idcc: '2941' } });
  });

  it('refuses a branch of another fund than the chosen one, naming both', () => {
    const r = validateOnboarding({ ...good, fund: 'akto', idcc: '2941' }, ctx);
    expect(r.ok).toBe(false);
    expect(!r.ok && r.errors.idcc).toContain('Uniformation');
    expect(!r.ok && r.errors.idcc).toContain('AKTO');
  });

  it('a fund fixed by the link wins over what the form sends', () => {
    const r = validateOnboarding({ ...good, fund: 'uniformation' }, { ...ctx, fixedFund: 'akto' });
    expect(r).toMatchObject({ ok: true, profile: { fundSlug: 'akto' } });
  });

  it('reports every missing or wrong field at once', () => {
    const r = validateOnboarding(
      {
        civility: 'docteur',
        familyName: '',
        givenName: ' ',
        companyName: '',
        siret: '123',
        headcountBand: '9999',
        idcc: '0000',
        fund: 'inconnu',
      },
      ctx,
    );
    expect(r.ok).toBe(false);
    expect(Object.keys(!r.ok ? r.errors : {}).sort()).toEqual(
      ['civility', 'companyName', 'familyName', 'fund', 'givenName', 'headcountBand', 'idcc', 'siret'].sort(),
    );
  });

  it('asks for a fund or a branch when neither is given', () => {
    const r = validateOnboarding({ ...good, fund: '', idcc: '' }, ctx);
    expect(!r.ok && r.errors.fund).toContain('OPCO');
  });

  it('refuses over-long names and strips control characters', () => {
    expect(validateOnboarding({ ...good, familyName: 'x'.repeat(101) }, ctx)).toMatchObject({ ok: false });
    expect(validateOnboarding({ ...good, givenName: 'Lé\u0000a\u0007' }, ctx)).toMatchObject({
      ok: true,
      profile: { givenName: 'Lé a' },
    });
  });
});

describe('names shared by Open edX', () => {
  it('splits the full name (first word = given name) when no split is shared', () => {
    expect(splitFullName({ name: 'Jean-Pierre  de La Tour' })).toEqual({
      givenName: 'Jean-Pierre',
      familyName: 'de La Tour',
    });
    expect(splitFullName({ name: 'Camille' })).toEqual({ givenName: 'Camille', familyName: '' });
    expect(splitFullName({})).toEqual({ givenName: '', familyName: '' });
  });
  it('prefers given_name and family_name when present', () => {
    expect(splitFullName({ name: 'X Y', given_name: 'Léa', family_name: 'Durand' })).toEqual({
      givenName: 'Léa',
      familyName: 'Durand',
    });
  });
});

describe('launch routing', () => {
  const catalog: RoutingCatalog = {
    themes: [
      { trackId: 'tn', slug: 'digitalisation', trunk: 'common', position: 1, week: null, moduleCount: 1 },
      { trackId: 'tn', slug: 'visibilite', trunk: 'sector', position: 2, week: null, moduleCount: 1 },
      { trackId: 'tn', slug: 'coeur-de-metier', trunk: 'sector', position: 3, week: null, moduleCount: 1 },
    ],
    funds: [{ slug: 'akto' }, { slug: 'uniformation' }, { slug: 'atlas' }],
    modules: [
      { id: 'common-digitalisation', trackId: 'tn', theme: 'digitalisation', fund: null, branches: [], position: 1 },
      { id: 'akto-visibilite', trackId: 'tn', theme: 'visibilite', fund: 'akto', branches: [], position: 1 },
      {
        id: 'uniformation-visibilite',
        trackId: 'tn',
        theme: 'visibilite',
        fund: 'uniformation',
        branches: [],
        position: 1,
      },
      {
        id: 'uniformation-coeur',
        trackId: 'tn',
        theme: 'coeur-de-metier',
        fund: 'uniformation',
        branches: [],
        position: 1,
      },
      {
        id: 'uniformation-coeur-bad',
        trackId: 'tn',
        theme: 'coeur-de-metier',
        fund: 'uniformation',
        branches: ['2941', '3016'],
        position: 1,
      },
    ],
  };
  const link = (t: Partial<LinkTarget>): LinkTarget => ({
    module: null,
    theme: null,
    fund: null,
    track: null,
    view: null,
    ...t,
  });
  const akto = { fundSlug: 'akto', idcc: '1979' };

  it('a fixed module (custom module=) is the same for everyone', () => {
    expect(
      resolveModule(link({ module: 'akto-visibilite' }), { fundSlug: 'uniformation', idcc: null }, catalog),
    ).toEqual({
      ok: true,
      moduleId: 'akto-visibilite',
      fundSlug: 'akto',
      source: 'link_module',
      variant: false,
    });
    // …and wins over a theme also given.
    expect(resolveModule(link({ module: 'akto-visibilite', theme: 'digitalisation' }), null, catalog)).toMatchObject({
      moduleId: 'akto-visibilite',
    });
  });

  it('a theme shows the learner the module of the fund in their profile', () => {
    expect(resolveModule(link({ theme: 'visibilite' }), akto, catalog)).toMatchObject({
      ok: true,
      moduleId: 'akto-visibilite',
      source: 'profile',
    });
    expect(
      resolveModule(link({ theme: 'visibilite' }), { fundSlug: 'uniformation', idcc: null }, catalog),
    ).toMatchObject({
      moduleId: 'uniformation-visibilite',
    });
  });

  it('custom fund= set by the course team wins over the profile', () => {
    expect(resolveModule(link({ theme: 'visibilite', fund: 'uniformation' }), akto, catalog)).toMatchObject({
      moduleId: 'uniformation-visibilite',
      fundSlug: 'uniformation',
      source: 'link_fund',
    });
  });

  it('a common-trunk theme needs no fund and no profile', () => {
    expect(resolveModule(link({ theme: 'digitalisation' }), null, catalog)).toMatchObject({
      ok: true,
      moduleId: 'common-digitalisation',
      fundSlug: null,
      source: 'common_trunk',
    });
  });

  it('a sector theme without any fund asks for one (onboarding)', () => {
    expect(resolveModule(link({ theme: 'visibilite' }), null, catalog)).toEqual({
      ok: false,
      reason: 'needs_fund',
      theme: 'visibilite',
    });
  });

  it('a branch variant listing the learner’s IDCC wins over the fund’s default module', () => {
    expect(
      resolveModule(link({ theme: 'coeur-de-metier' }), { fundSlug: 'uniformation', idcc: '2941' }, catalog),
    ).toMatchObject({
      moduleId: 'uniformation-coeur-bad',
      variant: true,
    });
    expect(
      resolveModule(link({ theme: 'coeur-de-metier' }), { fundSlug: 'uniformation', idcc: '2128' }, catalog),
    ).toMatchObject({
      moduleId: 'uniformation-coeur',
      variant: false,
    });
    expect(
      resolveModule(link({ theme: 'coeur-de-metier' }), { fundSlug: 'uniformation', idcc: null }, catalog),
    ).toMatchObject({
      moduleId: 'uniformation-coeur',
    });
    // A variant of another fund never applies, even with the same IDCC.
    expect(
      resolveModule(
        link({ theme: 'coeur-de-metier', fund: 'atlas' }),
        { fundSlug: 'uniformation', idcc: '2941' },
        catalog,
      ),
    ).toEqual({
      ok: false,
      reason: 'no_module_for_fund',
      theme: 'coeur-de-metier',
      fund: 'atlas',
    });
  });

  it('unknown module, theme or fund, and links without target, are reported as such', () => {
    expect(resolveModule(link({ module: 'nope' }), akto, catalog)).toEqual({
      ok: false,
      reason: 'unknown_module',
      value: 'nope',
    });
    expect(resolveModule(link({ theme: 'nope' }), akto, catalog)).toEqual({
      ok: false,
      reason: 'unknown_theme',
      value: 'nope',
    });
    expect(resolveModule(link({ theme: 'visibilite', fund: 'nope' }), akto, catalog)).toEqual({
      ok: false,
      reason: 'unknown_fund',
      value: 'nope',
    });
    expect(resolveModule(link({}), akto, catalog)).toEqual({ ok: false, reason: 'no_target' });
    expect(resolveModule(link({ theme: 'visibilite', track: 'other' }), akto, catalog)).toMatchObject({
      reason: 'unknown_theme',
    });
  });

  it('a theme slug present in two tracks needs custom track=', () => {
    const two: RoutingCatalog = {
      ...catalog,
      themes: [
        ...catalog.themes,
        { trackId: 'other', slug: 'visibilite', trunk: 'sector', position: 1, week: null, moduleCount: 1 },
      ],
      modules: [
        ...catalog.modules,
        { id: 'other-akto', trackId: 'other', theme: 'visibilite', fund: 'akto', branches: [], position: 1 },
      ],
    };
    expect(resolveModule(link({ theme: 'visibilite' }), akto, two)).toMatchObject({ reason: 'ambiguous_theme' });
    expect(resolveModule(link({ theme: 'visibilite', track: 'other' }), akto, two)).toMatchObject({
      moduleId: 'other-akto',
    });
  });

  it('reads custom parameters, ignoring blanks and unsubstituted LTI variables', () => {
    expect(parseLinkTarget({ theme: ' visibilite ', fund: '', module: '$ResourceLink.id', extra: 'x' })).toEqual({
      module: null,
      theme: 'visibilite',
      fund: null,
      track: null,
      view: null,
    });
    expect(parseLinkTarget(null)).toEqual({ module: null, theme: null, fund: null, track: null, view: null });
    expect(parseLinkTarget({ view: 'parcours' })).toMatchObject({ view: 'parcours' });
  });
});

describe('completion rule', () => {
  const quiz: QuizBlock = {
    type: 'quiz',
    id: 'quiz',
    title: 'Pour vérifier',
    questions: [
      { prompt: 'A ?', choices: ['oui', 'non'], answer: 0, explanation: 'Parce que.' },
      { prompt: 'B ?', choices: ['un', 'deux', 'trois'], answer: 2, explanation: 'Ainsi.' },
    ],
  };
  const manifest: Pick<ModuleManifest, 'blocks'> = {
    blocks: [
      { type: 'video', id: 'video-1', title: 'V', src: 'placeholder', captions: null, transcript: 'T' },
      { type: 'tutorial', id: 'tuto-1', title: 'T', steps: [{ title: 's', body: 'b' }] },
      quiz,
    ],
  };

  it('is complete only when every block is seen and the quiz answered', () => {
    expect(progressOf(manifest, {}, false)).toMatchObject({ done: [], total: 3, complete: false });
    expect(progressOf(manifest, { 'video-1': 't', 'tuto-1': 't' }, false)).toMatchObject({
      done: ['video-1', 'tuto-1'],
      complete: false,
    });
    expect(progressOf(manifest, { 'video-1': 't' }, true)).toMatchObject({
      done: ['video-1', 'quiz'],
      complete: false,
    });
    expect(progressOf(manifest, { 'video-1': 't', 'tuto-1': 't' }, true)).toMatchObject({
      total: 3,
      complete: true,
      quizAnswered: true,
    });
  });

  it('ignores seen marks of blocks that are not in this version', () => {
    expect(progressOf(manifest, { 'video-1': 't', 'tuto-1': 't', ancien: 't' }, false).done).toEqual([
      'video-1',
      'tuto-1',
    ]);
  });

  it('scores a quiz answered right or wrong (a self-check), refusing missing or out-of-range answers', () => {
    expect(scoreQuiz(quiz, [0, 2])).toMatchObject({ ok: true, correct: 2, total: 2 });
    expect(scoreQuiz(quiz, [1, 0])).toMatchObject({
      ok: true,
      correct: 0,
      results: [
        { correct: false, answer: 0 },
        { correct: false, answer: 2 },
      ],
    });
    expect(scoreQuiz(quiz, [0])).toMatchObject({ ok: false });
    expect(scoreQuiz(quiz, [0, 3])).toMatchObject({ ok: false });
    expect(scoreQuiz(quiz, [0, -1])).toMatchObject({ ok: false });
    expect(scoreQuiz(quiz, [0, 1.5])).toMatchObject({ ok: false });
    expect(scoreQuiz(quiz, ['0', 1])).toMatchObject({ ok: false });
  });
});

describe('the learner’s programme', () => {
  const theme = (slug: string, trunk: 'common' | 'sector', position: number, week: number, moduleCount = 2) => ({
    trackId: 'tn',
    slug,
    trunk,
    position,
    week,
    moduleCount,
  });
  const mod = (id: string, t: string, fund: string | null, position: number, branches: string[] = []) => ({
    id,
    trackId: 'tn',
    theme: t,
    fund,
    branches,
    position,
  });
  const catalog: RoutingCatalog = {
    themes: [theme('visibilite', 'sector', 2, 2, 1), theme('digitalisation', 'common', 1, 1)],
    funds: [{ slug: 'akto' }, { slug: 'atlas' }],
    modules: [
      mod('akto-visibilite', 'visibilite', 'akto', 1),
      mod('common-digitalisation-2', 'digitalisation', null, 2),
      mod('common-digitalisation', 'digitalisation', null, 1),
      mod('atlas-visibilite', 'visibilite', 'atlas', 1),
      mod('akto-visibilite-hcr', 'visibilite', 'akto', 1, ['1979']),
    ],
  };

  it('lists each theme in track order, each position in order, the branch variant over the default', () => {
    expect(learnerProgramme(catalog, { fundSlug: 'akto', idcc: null }, 'tn')).toEqual([
      {
        moduleId: 'common-digitalisation',
        trackId: 'tn',
        theme: 'digitalisation',
        trunk: 'common',
        position: 1,
        week: 1,
        variant: false,
      },
      {
        moduleId: 'common-digitalisation-2',
        trackId: 'tn',
        theme: 'digitalisation',
        trunk: 'common',
        position: 2,
        week: 1,
        variant: false,
      },
      {
        moduleId: 'akto-visibilite',
        trackId: 'tn',
        theme: 'visibilite',
        trunk: 'sector',
        position: 1,
        week: 2,
        variant: false,
      },
    ]);
    expect(learnerProgramme(catalog, { fundSlug: 'akto', idcc: '1979' }, 'tn').at(-1)).toMatchObject({
      moduleId: 'akto-visibilite-hcr',
      variant: true,
    });
    expect(learnerProgramme(catalog, { fundSlug: 'atlas', idcc: '1979' }, 'tn').map((e) => e.moduleId)).toEqual([
      'common-digitalisation',
      'common-digitalisation-2',
      'atlas-visibilite',
    ]);
    expect(learnerProgramme(catalog, { fundSlug: 'akto', idcc: null }, 'other')).toEqual([]);
  });

  it('a theme link opens the theme’s first module; a link without module= or theme= is Mon parcours', () => {
    const link: LinkTarget = { module: null, theme: 'digitalisation', fund: null, track: null, view: null };
    expect(resolveModule(link, null, catalog)).toMatchObject({ ok: true, moduleId: 'common-digitalisation' });
    expect(isParcoursTarget({ ...link, theme: null })).toBe(true);
    expect(isParcoursTarget({ ...link, view: 'parcours' })).toBe(true);
    expect(isParcoursTarget(link)).toBe(false);
    expect(parcoursTrack({ ...link, theme: null }, catalog)).toBe('tn');
    expect(parcoursTrack({ ...link, track: 'other' }, catalog)).toBeNull();
  });
});
