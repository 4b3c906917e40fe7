import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { formatProblem, loadContent } from '../../src/catalog/content.js';
import { runContentCommand } from '../../src/catalog/index.js';
import { type ContentFixture, moduleYaml } from './content-fixture.js';
import { createProgrammeFixture, placeFile } from './programme-fixture.js';

/**
 * `content check` on the programme as funded: structure (counts per trunk and fund, positions, variants),
 * planned duration, and the editorial rules (time model, quiz, house style, captions, sources, review date).
 */
let fx: ContentFixture;
beforeEach(async () => {
  fx = await createProgrammeFixture();
});
afterEach(() => fx.cleanup());

const TRACK = 'transition-numerique/track.json';
const AKTO_VIS = placeFile('akto', 'visibilite', 1);

async function problems(today?: Date): Promise<string[]> {
  const r = await loadContent(fx.dir, today ? { today } : {});
  return r.problems.map((p) => formatProblem(p));
}
const errors = async () => (await problems()).filter((p) => p.includes(': error: '));

describe('the programme structure', () => {
  it('a complete programme (8 common-trunk modules, 8 per fund, 4 h) has no problem', async () => {
    const r = await loadContent(fx.dir);
    expect(r.problems.map((p) => formatProblem(p))).toEqual([]);
    expect(r.content?.modules).toHaveLength(48);
    const track = r.content?.tracks[0]?.track;
    expect(track?.weeks.map((w) => w.week)).toEqual([1, 2, 3, 4]);
    expect(track?.themes.find((t) => t.slug === 'organiser-manager')).toMatchObject({ modules: 2, week: 4 });
    // Positions come from the file names.
    expect(r.content?.modules.find((m) => m.manifest.id === 'akto-organiser-manager-2')?.position).toBe(2);
  });

  it('a fund with 7 sector modules fails, naming the missing file and the trunk count', async () => {
    await fx.remove(placeFile('akto', 'organiser-manager', 2));
    const found = await errors();
    expect(found).toContain(
      `${TRACK}:14:113: error: theme "organiser-manager" holds 2 module(s) for fund "akto" in track.json, found 1; missing akto/organiser-manager/module-2.yaml`,
    );
    expect(found).toContain(
      `${TRACK}:6:3: error: the sector trunk of fund "akto" has 7 module(s); track.json plans 8 over its 5 themes`,
    );
    // Editorial errors do not stop the content from loading (the service keeps importing it at start).
    const r = await loadContent(fx.dir);
    expect(r.content).not.toBeNull();
    expect(r.problems.filter((p) => p.severity === 'error').every((p) => p.editorial)).toBe(true);
  });

  it('durations that do not add up to the planned 4 h fail, for each fund concerned', async () => {
    await fx.edit(placeFile('common', 'digitalisation', 2), 'nominalMinutes: 15', 'nominalMinutes: 14');
    const found = await errors();
    for (const fund of ['opco-sante', 'uniformation', 'akto', 'atlas', 'ocapiat']) {
      expect(found).toContain(
        `${TRACK}:5:3: error: plannedMinutes: a learner of fund "${fund}" has 119 min of common trunk + 120 min of sector trunk = 239 min, not the planned 240 min (nominalMinutes of the modules)`,
      );
    }
  });

  it('a module beyond the theme’s count, a module-1.yaml and a gap are refused', async () => {
    await fx.write(
      placeFile('akto', 'visibilite', 2),
      moduleYaml({ id: 'akto-visibilite-2', fund: 'akto', theme: 'visibilite' }),
    );
    await fx.write(
      'transition-numerique/akto/visibilite/module-1.yaml',
      moduleYaml({ id: 'akto-visibilite-1', fund: 'akto', theme: 'visibilite' }),
    );
    const found = await errors();
    expect(found).toContain(
      `${TRACK}:13:96: error: theme "visibilite" holds 1 module(s) for fund "akto" in track.json, found 2; beyond the count: akto/visibilite/module-2.yaml`,
    );
    expect(found).toContain(
      "transition-numerique/akto/visibilite/module-1.yaml:1:1: error: the theme's first module is module.yaml; later ones are module-2.yaml, module-3.yaml…",
    );
  });

  it('a branch variant of module 2 needs module-2.yaml beside it and the same duration', async () => {
    const variant = 'transition-numerique/akto/coeur-de-metier/module-2.hcr.yaml';
    await fx.write(
      variant,
      moduleYaml({
        id: 'akto-coeur-hcr',
        fund: 'akto',
        theme: 'coeur-de-metier',
        branches: ['1979'],
        nominalMinutes: 20,
      }),
    );
    expect(await errors()).toContain(
      `${variant}:6:1: error: nominalMinutes: a branch variant lasts as long as the default module it replaces (15 min): every learner's programme has the same planned duration`,
    );
    await fx.remove(placeFile('akto', 'coeur-de-metier', 2));
    expect(await errors()).toContain(
      `${variant}:1:1: error: branch variant without a default module: add transition-numerique/akto/coeur-de-metier/module-2.yaml for the fund's other branches`,
    );
  });

  it('track.json: every theme in one week, weeks in order, known themes', async () => {
    await fx.edit(
      TRACK,
      '"themes": ["visibilite", "organiser-manager", "mesurer-optimiser"]',
      '"themes": ["visibilite", "organiser-manager", "inconnu"]',
    );
    const found = await errors();
    expect(
      found.some((e) => e.includes('weeks[3].themes[2]: string "inconnu" is not a theme slug of this track')),
    ).toBe(true);
    expect(found.some((e) => e.includes('weeks: theme "mesurer-optimiser" is in no week'))).toBe(true);
  });
});

describe('the editorial rules', () => {
  it('the time model: a module far below its nominal duration fails, --times prints every estimate', async () => {
    await fx.edit(AKTO_VIS, '    minutes: 8', '    minutes: 2');
    expect(await errors()).toContain(
      `${AKTO_VIS}:6:1: error: nominalMinutes: the module holds about 7.9 min (764 words read, 310 spoken, activity 2 min), outside 12–19.5 min (80–130 % of 15): add content or an activity`,
    );
    const out: string[] = [];
    expect(
      await runContentCommand(['check', '--dir', fx.dir, '--times'], { out: (s) => out.push(s), err: () => {} }),
    ).toBe(1);
    const text = out.join('');
    expect(text).toContain(`${AKTO_VIS}: 7.9 min for 15 planned (53 %): 764 words read, 310 spoken, activity 2 min`);
    expect(text.match(/ min for 15 planned/g)).toHaveLength(48);
  });

  it('quiz rules: 3 to 5 questions of 3 or 4 choices', async () => {
    await fx.edit(
      AKTO_VIS,
      '        choices: ["Je rappelle", "Je décroche", "Je note tout"]',
      '        choices: ["Je rappelle", "Je décroche"]',
    );
    const other = placeFile('atlas', 'visibilite', 1);
    await fx.write(other, (await fx.read(other)).replace(/ {6}- prompt: "Vos horaires[\s\S]*?Toujours\."\n/, ''));
    const found = await errors();
    expect(found).toContain(
      `${AKTO_VIS}:48:9: error: blocks[4].questions[0].choices: a question has 3 or 4 choices (has 2)`,
    );
    expect(found).toContain(`${other}:46:5: error: blocks[4].questions: a quiz has 3 to 5 questions (has 2)`);
  });

  it('quiz rules: the right answer the longest choice too often fails folder-wide, warns per module; one position too often warns', async () => {
    for (const f of (await loadContent(fx.dir)).content?.modules ?? []) {
      const text = await fx.read(f.path);
      await fx.write(
        f.path,
        text
          .replace(
            '["Je rappelle", "Je décroche", "Je note tout"]',
            '["Je rappelle le client dès la fin du service", "Je décroche", "Je note tout"]',
          )
          .replace(
            '["J’attends", "Je corrige", "Je ne dis rien"]',
            '["J’attends", "Je corrige la fiche le jour même", "Je ne dis rien"]',
          )
          .replace('        answer: 2', '        answer: 0'),
      );
    }
    const all = await problems();
    expect(all).toContain(
      '.:1:1: error: the right answer is the strictly longest choice in 96 of 144 questions (67 %), above 40 %: vary the lengths of the choices',
    );
    expect(all).toContain(
      `${AKTO_VIS}:46:5: warning: blocks[4].questions: the right answer is the longest choice in 2 of 3 questions: vary the lengths`,
    );
    expect(all).toContain(
      '.:1:1: warning: the right answer is choice 1 in 96 of 144 questions (67 %), above 45 %: vary its position',
    );
    // The fixture as written: no length nor position problem.
    await fx.cleanup();
    fx = await createProgrammeFixture();
    expect((await problems()).filter((p) => p.startsWith('.:'))).toEqual([]);
  });

  it('house style: typography, one spelling per term, acronyms in the glossary, one definition per term', async () => {
    await fx.edit(
      AKTO_VIS,
      'Cochez ce qui est fait pour votre entreprise.',
      "Cochez ce qui est fait : l'essentiel par courriel, le SIRET et le RGPD.",
    );
    await fx.write('glossary/akto.yaml', '- term: "RGPD"\n  definition: "Encore une fois."\n');
    const found = await errors();
    expect(found).toContain(
      `${AKTO_VIS}:35:29: error: blocks[3].instructions: typography: une espace insécable (U+00A0) avant :`,
    );
    expect(found).toContain(
      `${AKTO_VIS}:35:33: error: blocks[3].instructions: typography: apostrophe droite : écrire ’`,
    );
    expect(found).toContain(`${AKTO_VIS}:35:48: error: blocks[3].instructions: spelling: "courriel", write « e-mail »`);
    expect(found).toContain(
      `${AKTO_VIS}:35:61: error: blocks[3].instructions: acronym "SIRET" is not in the glossary (content/glossary/common.yaml or akto.yaml)`,
    );
    // RGPD is in common.yaml: no acronym error, but defining it again in akto.yaml is.
    expect(found.filter((e) => e.includes('acronym "RGPD"'))).toEqual([]);
    expect(found).toContain(
      'glossary/akto.yaml:1:3: error: [0].term: "RGPD" is already defined in glossary/common.yaml: a term is defined once',
    );
    // Glossary definitions are learner-facing text too.
    await fx.write('glossary/akto.yaml', '- term: "HACCP"\n  definition: "La méthode d\'hygiène des cuisines."\n');
    expect(await errors()).toContain(
      'glossary/akto.yaml:2:28: error: [0].definition: typography: apostrophe droite : écrire ’',
    );
  });

  it('captions for a real video, https sources, at least one source, a review date older than 12 months', async () => {
    await fx.edit(AKTO_VIS, '    src: placeholder', '    src: https://videos.example.org/visibilite.mp4');
    await fx.edit(
      AKTO_VIS,
      '    url: "https://www.service-public.fr/professionnels-entreprises"',
      '    url: "http://www.service-public.fr/"',
    );
    const other = placeFile('atlas', 'visibilite', 1);
    await fx.write(other, (await fx.read(other)).replace(/^sources:[\s\S]*$/m, 'sources: []\n'));
    const found = await errors();
    expect(found).toContain(
      `${AKTO_VIS}:13:5: error: blocks[0].captions: a real video needs captions (an https URL of a WebVTT file)`,
    );
    expect(found).toContain(
      `${AKTO_VIS}:62:5: error: sources[0].url: "http://www.service-public.fr/" must be an https URL`,
    );
    expect(found).toContain(`${other}:60:1: error: sources: needs at least one source`);
    const inTwoYears = new Date(Date.now() + 2 * 365 * 86_400_000);
    expect((await problems(inTwoYears)).filter((p) => p.includes('more than 12 months ago'))).toHaveLength(48);
  });
});

describe('npm run content -- fix-typography', () => {
  it('rewrites the text values in the house style and keeps the file’s layout, keys and comments', async () => {
    const file = fx.path(AKTO_VIS);
    const before = (await fx.read(AKTO_VIS))
      .replace('id: akto-visibilite', "id: akto-visibilite # l'identifiant ne change pas")
      .replace('Cochez ce qui est fait pour votre entreprise.', "Cochez ce qui est fait : l'essentiel.");
    await fx.write(AKTO_VIS, before);
    const out: string[] = [];
    const io = { out: (s: string) => out.push(s), err: (s: string) => out.push(s) };
    expect(await runContentCommand(['fix-typography', file], io)).toBe(0);
    const after = await fx.read(AKTO_VIS);
    expect(out.join('')).toContain('1 text(s) fixed');
    const b = before.split('\n');
    const a = after.split('\n');
    expect(a).toHaveLength(b.length);
    const changed = a.map((line, i) => (line === b[i] ? null : i + 1)).filter((x) => x !== null);
    expect(changed).toEqual([35]);
    expect(a[34]).toBe('      Cochez ce qui est fait\u00a0: l’essentiel.');
    // A comment is not a value: it keeps its typewriter apostrophe.
    expect(a[0]).toBe("id: akto-visibilite # l'identifiant ne change pas");
    expect(await runContentCommand(['fix-typography', file], io)).toBe(0);
    expect(out.join('')).toContain('already in the house style');
    expect(await runContentCommand(['fix-typography'], io)).toBe(2);
  });
});
