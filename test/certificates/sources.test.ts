import { describe, expect, it } from 'vitest';
import type { LearnerProfile, ModuleCompletion, ModuleInfo } from '../../src/catalog/index.js';
import { assembleFacts, learnerPath } from '../../src/certificates/sources.js';

const mod = (
  id: string,
  theme: string,
  trunk: 'common' | 'sector',
  fundSlug: string | null,
  branches: string[] = [],
  position = 1,
): ModuleInfo => ({
  id,
  title: `Titre ${id}`,
  trackId: 'transition-numerique',
  theme,
  themeTitle: theme,
  trunk,
  fundSlug,
  branches,
  nominalMinutes: 15,
  currentVersion: 1,
  position,
  active: true,
});

const MODULES = [
  mod('common-digitalisation', 'digitalisation', 'common', null),
  mod('common-obligations', 'obligations-protection', 'common', null),
  mod('akto-visibilite', 'visibilite', 'sector', 'akto'),
  mod('uniformation-coeur', 'coeur-de-metier', 'sector', 'uniformation'),
  mod('uniformation-coeur-aide', 'coeur-de-metier', 'sector', 'uniformation', ['2941']),
  mod('uniformation-visibilite', 'visibilite', 'sector', 'uniformation'),
  { ...mod('uniformation-old', 'attentes-clients', 'sector', 'uniformation'), active: false },
];

const profile: LearnerProfile = {
  learnerId: 'l1',
  civility: 'non_precise',
  familyName: 'Durand',
  givenName: 'Camille',
  companyName: 'SAAD des Lilas',
  companySiret: '123 456 782 00002',
  headcountBand: '10-49',
  idcc: '2941',
  branchName: 'Aide à domicile',
  branchHistoricalName: null,
  fundSlug: 'uniformation',
  fundName: 'Uniformation',
  updatedAt: new Date(),
};

describe('learner path', () => {
  it('takes the common trunk, the fund’s modules, and the branch variant when the IDCC is listed', () => {
    const ids = learnerPath(profile, MODULES, new Set()).map((m) => m.id);
    expect(ids.sort()).toEqual(
      ['common-digitalisation', 'common-obligations', 'uniformation-coeur-aide', 'uniformation-visibilite'].sort(),
    );
    const other = learnerPath({ ...profile, idcc: '0218' }, MODULES, new Set()).map((m) => m.id);
    expect(other).toContain('uniformation-coeur');
    expect(other).not.toContain('uniformation-coeur-aide');
  });

  it('keeps modules the learner worked on outside their path, and inactive ones only if started', () => {
    const ids = learnerPath(profile, MODULES, new Set(['akto-visibilite', 'uniformation-old'])).map((m) => m.id);
    expect(ids).toContain('akto-visibilite');
    expect(ids).toContain('uniformation-old');
    expect(learnerPath(profile, MODULES, new Set()).map((m) => m.id)).not.toContain('uniformation-old');
  });
});

describe('facts from the catalog and the tracking', () => {
  it('joins profile, fund, completions and credited time per module', () => {
    const completions: ModuleCompletion[] = [
      {
        learnerId: 'l1',
        courseId: 'c1',
        moduleId: 'uniformation-visibilite',
        moduleVersion: 1,
        trackId: 'transition-numerique',
        theme: 'visibilite',
        trunk: 'sector',
        fundSlug: 'uniformation',
        nominalMinutes: 15,
        startedAt: new Date('2026-01-10T09:00:00Z'),
        completedAt: new Date('2026-01-10T09:20:00Z'),
      },
    ];
    const facts = assembleFacts({
      learnerId: 'l1',
      course: { id: 'c1', title: 'Transition numérique des TPE-PME' },
      profile,
      fund: {
        slug: 'uniformation',
        name: 'Uniformation – OPCO de la Cohésion sociale',
        historicalName: 'Uniformation',
      },
      modules: MODULES,
      themePositions: new Map([
        ['transition-numerique|digitalisation', 1],
        ['transition-numerique|obligations-protection', 4],
        ['transition-numerique|coeur-de-metier', 5],
        ['transition-numerique|visibilite', 7],
      ]),
      completions,
      times: {
        algorithm: 'beats-v1',
        params: { beatSeconds: 30, ratio: 2.5, nested: { cap: 3 } },
        modules: [
          {
            moduleId: 'uniformation-visibilite',
            creditedSeconds: 1140,
            firstAt: new Date('2026-01-10T09:01:00Z'),
            lastAt: new Date('2026-01-10T09:20:00Z'),
          },
        ],
      },
    });
    expect(facts.learner).toEqual({ id: 'l1', civility: null, familyName: 'Durand', givenName: 'Camille' });
    expect(facts.company).toEqual({ name: 'SAAD des Lilas', siret: '123 456 782 00002' });
    expect(facts.fund).toMatchObject({ name: 'Uniformation – OPCO de la Cohésion sociale', fileNumber: null });
    const visibility = facts.modules.find((m) => m.id === 'uniformation-visibilite')!;
    expect(visibility).toMatchObject({ creditedSeconds: 1140, order: 701, completedAt: completions[0]!.completedAt });
    expect(visibility.firstActivityAt?.toISOString()).toBe('2026-01-10T09:01:00.000Z');
    expect(facts.modules.find((m) => m.id === 'common-digitalisation')).toMatchObject({
      creditedSeconds: 0,
      completedAt: null,
      firstActivityAt: null,
    });
    expect(facts.commonTrunkEstimatedSeconds).toBeNull();
    // Non-integer parameters become text so that the signed JSON stays canonical.
    expect(facts.timeAccounting).toEqual({
      algorithm: 'beats-v1',
      params: { beatSeconds: 30, ratio: '2.5', nested: { cap: 3 } },
    });
  });
});
