import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

/**
 * A small, valid content directory written to a temp dir, with known line numbers, for checker and import
 * tests: 2 funds, 1 track with a common and a sector theme, 3 default modules and 1 branch variant.
 */

export const FUNDS_JSON = `{
  "version": 1,
  "funds": [
    {
      "slug": "akto",
      "name": "AKTO",
      "historicalName": "Fafih",
      "sectors": ["Hôtellerie", "Restauration"],
      "branches": [
        { "idcc": "1979", "name": "Hôtels, cafés, restaurants (HCR)" }
      ]
    },
    {
      "slug": "uniformation",
      "name": "Uniformation",
      "historicalName": "Uniformation",
      "sectors": ["Économie sociale"],
      "branches": [
        { "idcc": "2941", "name": "Aide à domicile (BAD)" },
        { "idcc": "3016", "name": "Ateliers et chantiers d’insertion" }
      ]
    }
  ]
}
`;

export const TRACK_JSON = `{
  "id": "tn",
  "title": "Transition numérique",
  "version": 1,
  "themes": [
    { "slug": "digitalisation", "title": "Digitalisation de l’entreprise", "trunk": "common", "order": 1 },
    { "slug": "visibilite", "title": "Augmenter sa visibilité", "trunk": "sector", "order": 2 }
  ]
}
`;

/** A module file; line numbers are asserted by the tests (see the numbers in comments). */
export function moduleYaml(o: {
  id: string;
  fund: string;
  theme: string;
  branches?: string[];
  title?: string;
}): string {
  return [
    `id: ${o.id}`, // 1
    'version: 1', // 2
    `title: "${o.title ?? `Module ${o.id}`}"`, // 3
    `theme: ${o.theme}`, // 4
    `fund: ${o.fund}`, // 5
    'nominalMinutes: 15', // 6
    `summary: "Ce que l'on apprend dans ${o.id}."`, // 7
    ...(o.branches ? [`branches: [${o.branches.map((b) => `"${b}"`).join(', ')}]`] : []),
    'blocks:', // 8
    '  - type: video', // 9
    '    id: video-1', // 10
    '    title: "Être trouvé"', // 11
    '    src: placeholder', // 12
    '    captions: null', // 13
    '    transcript: |', // 14
    '      Le texte complet de la vidéo.', // 15
    '  - type: tutorial', // 16
    '    id: tuto-1', // 17
    '    title: "Étapes"', // 18
    '    steps:', // 19
    '      - title: "Fiche"', // 20
    '        body: |', // 21
    '          Revendiquez **votre fiche**.', // 22
    '  - type: testimonial', // 23
    '    id: temoignage-1', // 24
    '    quote: "Ça marche."', // 25
    '    person: "Nadia R."', // 26
    '    role: "Hôtelière"', // 27
    '    video: null', // 28
    '  - type: quiz', // 29
    '    id: quiz', // 30
    '    title: "Pour vérifier"', // 31
    '    questions:', // 32
    '      - prompt: "Q1 ?"', // 33
    '        choices: ["a", "b"]', // 34
    '        answer: 0', // 35
    '        explanation: "Parce que."', // 36
    '      - prompt: "Q2 ?"', // 37
    '        choices: ["a", "b", "c"]', // 38
    '        answer: 2', // 39
    '        explanation: "Ainsi."', // 40
    '',
  ].join('\n');
}

export const FILES: Record<string, string> = {
  'funds.json': FUNDS_JSON,
  'tn/track.json': TRACK_JSON,
  'tn/common/digitalisation/module.yaml': moduleYaml({
    id: 'common-digitalisation',
    fund: 'common',
    theme: 'digitalisation',
  }),
  'tn/akto/visibilite/module.yaml': moduleYaml({ id: 'akto-visibilite', fund: 'akto', theme: 'visibilite' }),
  'tn/uniformation/visibilite/module.yaml': moduleYaml({
    id: 'uniformation-visibilite',
    fund: 'uniformation',
    theme: 'visibilite',
  }),
  'tn/uniformation/visibilite/module.domicile.yaml': moduleYaml({
    id: 'uniformation-visibilite-domicile',
    fund: 'uniformation',
    theme: 'visibilite',
    branches: ['2941'],
  }),
};

export interface ContentFixture {
  dir: string;
  path(rel: string): string;
  write(rel: string, text: string): Promise<void>;
  read(rel: string): Promise<string>;
  /** Replaces `from` by `to` in a file; throws when `from` is not there (a test typo must not pass silently). */
  edit(rel: string, from: string, to: string): Promise<void>;
  remove(rel: string): Promise<void>;
  cleanup(): Promise<void>;
}

export async function createContentFixture(files: Record<string, string> = FILES): Promise<ContentFixture> {
  const dir = await mkdtemp(join(tmpdir(), 'emargement-content-'));
  const fx: ContentFixture = {
    dir,
    path: (rel) => join(dir, rel),
    async write(rel, text) {
      await mkdir(dirname(join(dir, rel)), { recursive: true });
      await writeFile(join(dir, rel), text);
    },
    read: (rel) => readFile(join(dir, rel), 'utf8'),
    async edit(rel, from, to) {
      const text = await fx.read(rel);
      if (!text.includes(from)) throw new Error(`${rel} does not contain ${JSON.stringify(from)}`);
      await fx.write(rel, text.replace(from, to));
    },
    remove: (rel) => rm(join(dir, rel), { force: true }),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
  for (const [rel, text] of Object.entries(files)) await fx.write(rel, text);
  return fx;
}
