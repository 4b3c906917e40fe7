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

const NNBSP = '\u202f';

/** Plain French sentences, repeated to give a fixture module the volume of its nominal 15 minutes. */
function sentences(words: number, sentence: string): string {
  const per = sentence.split(' ').length;
  return Array.from({ length: Math.ceil(words / per) }, () => sentence).join(' ');
}

/** Spoken text of the fixture video (about 2 minutes at 150 words a minute). */
export const FIXTURE_TRANSCRIPT = sentences(
  300,
  'Chaque semaine, notez ce que vos clients vous demandent et gardez la réponse la plus claire.',
);
/** Read text of the fixture tutorial (about 3.5 minutes at 200 words a minute). */
export const FIXTURE_BODY = sentences(
  700,
  'Prenez le temps de vérifier vos horaires, vos photos et votre numéro de téléphone avant la saison.',
);

/** The date a fixture module was reviewed: today, so that the check never finds it stale. */
export const REVIEWED_ON = new Date().toISOString().slice(0, 10);

/**
 * A module file of content model v2 (time model, activity, quiz rules, sources); line numbers are
 * asserted by the tests (see the numbers in comments).
 */
export function moduleYaml(o: {
  id: string;
  fund: string;
  theme: string;
  branches?: string[];
  title?: string;
  nominalMinutes?: number;
}): string {
  return [
    `id: ${o.id}`, // 1
    'version: 1', // 2
    `title: "${o.title ?? `Module ${o.id}`}"`, // 3
    `theme: ${o.theme}`, // 4
    `fund: ${o.fund}`, // 5
    `nominalMinutes: ${o.nominalMinutes ?? 15}`, // 6
    `summary: "Ce que l’on apprend dans ${o.id}."`, // 7
    ...(o.branches ? [`branches: [${o.branches.map((b) => `"${b}"`).join(', ')}]`] : []),
    'blocks:', // 8
    '  - type: video', // 9
    '    id: video-1', // 10
    '    title: "Être trouvé"', // 11
    '    src: placeholder', // 12
    '    captions: null', // 13
    '    transcript: |', // 14
    `      Le texte complet de la vidéo. ${FIXTURE_TRANSCRIPT}`, // 15
    '  - type: tutorial', // 16
    '    id: tuto-1', // 17
    '    title: "Étapes"', // 18
    '    steps:', // 19
    '      - title: "Fiche"', // 20
    '        body: |', // 21
    `          Revendiquez **votre fiche**. ${FIXTURE_BODY}`, // 22
    '  - type: testimonial', // 23
    '    id: temoignage-1', // 24
    '    quote: "Ça marche."', // 25
    '    person: "Nadia R."', // 26
    '    role: "Hôtelière"', // 27
    '    video: null', // 28
    '  - type: activity', // 29
    '    id: activite-1', // 30
    '    kind: checklist', // 31
    '    title: "Votre fiche"', // 32
    '    minutes: 8', // 33
    '    instructions: |', // 34
    '      Cochez ce qui est fait pour votre entreprise.', // 35
    '    items:', // 36
    '      - "Les horaires sont justes"', // 37
    '      - "Les photos sont récentes"', // 38
    '      - "Le téléphone répond"', // 39
    '      - "Les avis ont une réponse"', // 40
    '    debrief: |', // 41
    '      Une fiche à jour rassure les clients.', // 42
    '  - type: quiz', // 43
    '    id: quiz', // 44
    '    title: "Pour vérifier"', // 45
    '    questions:', // 46
    `      - prompt: "Un client appelle pendant le service${NNBSP}?"`, // 47
    '        choices: ["Je rappelle", "Je décroche", "Je note tout"]', // 48
    '        answer: 0', // 49
    '        explanation: "Parce que."', // 50
    `      - prompt: "Un avis négatif arrive${NNBSP}?"`, // 51
    '        choices: ["Je l’efface", "Je le cache", "Je réponds"]', // 52
    '        answer: 2', // 53
    '        explanation: "Ainsi."', // 54
    `      - prompt: "Vos horaires changent${NNBSP}?"`, // 55
    '        choices: ["J’attends", "Je corrige", "Je ne dis rien"]', // 56
    '        answer: 1', // 57
    '        explanation: "Toujours."', // 58
    `reviewedOn: "${REVIEWED_ON}"`, // 59
    'sources:', // 60
    '  - title: "Fiche pratique (service-public.fr)"', // 61
    '    url: "https://www.service-public.fr/professionnels-entreprises"', // 62
    '    supports: "Les démarches des entreprises"', // 63
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
