import { readFileSync } from 'node:fs';
import { type ContentFixture, createContentFixture, moduleYaml } from './content-fixture.js';

/**
 * A complete content directory of the programme as funded (docs/programme.md), for tests that need it
 * before or besides the shipped content: the five funds of content/funds.json, the shipped track.json
 * (4 weeks, 8 common-trunk modules, 8 per fund), a glossary, and one fixture module per place. Module 1
 * of each theme keeps the id the shipped 9-module catalogue gave it (`<fund|common>-<theme>`), so the
 * 9-module version of this directory (`programmeFiles({ v1: true })`) upgrades to it.
 */

export const FUNDS_JSON = readFileSync('content/funds.json', 'utf8');
export const TRACK_V2 = readFileSync('content/transition-numerique/track.json', 'utf8');

/** The 9-theme track as it was before the programme had pacing (one module per theme). */
export const TRACK_V1 = `{
  "id": "transition-numerique",
  "title": "Transition numérique des TPE-PME",
  "version": 1,
  "themes": [
    { "slug": "digitalisation", "title": "Digitalisation de l’entreprise", "trunk": "common", "order": 1 },
    { "slug": "fonctions-numerisables", "title": "Fonctions et activités numérisables", "trunk": "common", "order": 2 },
    { "slug": "autodiagnostic-strategie", "title": "Autodiagnostic et stratégie", "trunk": "common", "order": 3 },
    { "slug": "obligations-protection", "title": "Obligations et protection", "trunk": "common", "order": 4 },
    { "slug": "coeur-de-metier", "title": "Impact du numérique sur le cœur de métier", "trunk": "sector", "order": 5 },
    { "slug": "attentes-clients", "title": "Attentes clients ou usagers", "trunk": "sector", "order": 6 },
    { "slug": "visibilite", "title": "Augmenter sa visibilité", "trunk": "sector", "order": 7 },
    { "slug": "organiser-manager", "title": "Organiser et manager son activité", "trunk": "sector", "order": 8 },
    { "slug": "mesurer-optimiser", "title": "Mesurer et optimiser les résultats", "trunk": "sector", "order": 9 }
  ]
}
`;

export const FUND_SLUGS = ['opco-sante', 'uniformation', 'akto', 'atlas', 'ocapiat'] as const;
export const COMMON_THEMES = {
  digitalisation: 2,
  'fonctions-numerisables': 2,
  'autodiagnostic-strategie': 2,
  'obligations-protection': 2,
};
export const SECTOR_THEMES = {
  'coeur-de-metier': 2,
  'attentes-clients': 2,
  visibilite: 1,
  'organiser-manager': 2,
  'mesurer-optimiser': 1,
};

export const GLOSSARY_COMMON = `- term: "RGPD"
  expansion: "Règlement général sur la protection des données"
  definition: "Le règlement européen qui fixe les règles de collecte et de conservation des données personnelles."
`;

/** The file of a place: module.yaml for position 1, module-N.yaml after. */
export function placeFile(owner: string, theme: string, position: number): string {
  return `transition-numerique/${owner}/${theme}/${position === 1 ? 'module.yaml' : `module-${position}.yaml`}`;
}

export function moduleId(owner: string, theme: string, position: number): string {
  return position === 1 ? `${owner}-${theme}` : `${owner}-${theme}-${position}`;
}

export function programmeFiles(options: { v1?: boolean } = {}): Record<string, string> {
  const files: Record<string, string> = {
    'funds.json': FUNDS_JSON,
    'transition-numerique/track.json': options.v1 ? TRACK_V1 : TRACK_V2,
  };
  if (!options.v1) files['glossary/common.yaml'] = GLOSSARY_COMMON;
  const add = (owner: string, themes: Record<string, number>) => {
    for (const [theme, count] of Object.entries(themes)) {
      for (let position = 1; position <= (options.v1 ? 1 : count); position++) {
        const id = moduleId(owner, theme, position);
        files[placeFile(owner, theme, position)] = moduleYaml({
          id,
          fund: owner,
          theme,
          title: `Module ${position} du thème ${theme} (${owner})`,
        });
      }
    }
  };
  add('common', COMMON_THEMES);
  for (const fund of FUND_SLUGS) add(fund, SECTOR_THEMES);
  return files;
}

export function createProgrammeFixture(options: { v1?: boolean } = {}): Promise<ContentFixture> {
  return createContentFixture(programmeFiles(options));
}
