import { relative } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { formatProblem, loadContent } from '../../src/catalog/content.js';
import { runContentCommand } from '../../src/catalog/index.js';
import { type ContentFixture, createContentFixture, moduleYaml } from './content-fixture.js';

let fx: ContentFixture;
beforeEach(async () => {
  fx = await createContentFixture();
});
afterEach(() => fx.cleanup());

const AKTO = 'tn/akto/visibilite/module.yaml';

async function errorsOnly(): Promise<string[]> {
  const r = await loadContent(fx.dir);
  expect(r.content).toBeNull();
  return r.problems.filter((p) => p.severity === 'error').map((p) => formatProblem(p));
}

describe('content check on a valid package', () => {
  it('loads funds, the track and every module, variants included, without a problem', async () => {
    const r = await loadContent(fx.dir);
    expect(r.problems).toEqual([]);
    expect(r.content?.funds.funds.map((f) => f.slug)).toEqual(['akto', 'uniformation']);
    expect(r.content?.modules.map((m) => m.manifest.id).sort()).toEqual([
      'akto-visibilite',
      'common-digitalisation',
      'uniformation-visibilite',
      'uniformation-visibilite-domicile',
    ]);
    const variant = r.content?.modules.find((m) => m.manifest.id === 'uniformation-visibilite-domicile');
    expect(variant?.manifest.branches).toEqual(['2941']);
  });

  it('the shipped content (content/) loads: 5 funds, 4 common-trunk and 5 sector themes, paced as 16 modules over 4 weeks', async () => {
    const r = await loadContent('content');
    // Format errors would stop the import at start; editorial errors only fail `content check`.
    expect(r.problems.filter((p) => p.severity === 'error' && !p.editorial).map((p) => formatProblem(p))).toEqual([]);
    const c = r.content;
    if (!c) throw new Error('no content');
    expect(c.funds.funds).toHaveLength(5);
    const track = c.tracks[0]?.track;
    if (!track) throw new Error('no track');
    const sector = track.themes.filter((t) => t.trunk === 'sector');
    const common = track.themes.filter((t) => t.trunk === 'common');
    expect(sector).toHaveLength(5);
    expect(common).toHaveLength(4);
    expect(common.reduce((n, t) => n + t.modules, 0)).toBe(8);
    expect(sector.reduce((n, t) => n + t.modules, 0)).toBe(8);
    expect(track.weeks.map((w) => w.themes.length)).toEqual([2, 2, 2, 3]);
    expect(track.plannedMinutes).toBe(240);
    for (const f of c.funds.funds) {
      for (const t of sector) {
        const m = c.modules.filter(
          (x) => x.manifest.fund === f.slug && x.manifest.theme === t.slug && x.manifest.branches.length === 0,
        );
        expect(m.length, `${f.slug}/${t.slug}`).toBeGreaterThanOrEqual(1);
      }
    }
    // Genuine French content, not filler.
    for (const m of c.modules) expect(JSON.stringify(m.manifest)).not.toMatch(/lorem|ipsum|TODO|TBD/i);
  });

  // Every editorial rule holds on the shipped content (16 modules per fund: 8 common, 8 sector).
  it('the shipped content passes every rule of content check', async () => {
    const r = await loadContent('content');
    expect(r.problems.filter((p) => p.severity === 'error').map((p) => formatProblem(p))).toEqual([]);
  });
});

describe('content check reports every problem as file:line with the reason', () => {
  it('a quiz answer out of range', async () => {
    await fx.edit(AKTO, '        answer: 2', '        answer: 5');
    expect(await errorsOnly()).toEqual([
      `${AKTO}:53:9: error: blocks[4].questions[1].answer: must be between 0 and 2 (got 5)`,
    ]);
  });

  it('an http video, a missing key and a typo in a key, all in one run', async () => {
    await fx.edit(AKTO, '    src: placeholder', '    src: http://videos.example.org/v.mp4');
    await fx.edit(AKTO, '    title: "Étapes"\n', '');
    await fx.edit(AKTO, 'nominalMinutes: 15', 'nominalMinute: 15');
    const errors = await errorsOnly();
    expect(errors).toContain(
      `${AKTO}:6:1: error: nominalMinute: unknown key "nominalMinute" (allowed: id, version, title, theme, fund, branches, nominalMinutes, summary, blocks, reviewedOn, sources)`,
    );
    expect(errors).toContain(`${AKTO}:1:1: error: nominalMinutes: is required`);
    expect(errors.find((e) => e.startsWith(`${AKTO}:12:`))).toContain(
      'blocks[0].src: "http://videos.example.org/v.mp4" must be "placeholder" or an https URL',
    );
    expect(errors.find((e) => e.startsWith(`${AKTO}:16:`))).toContain('blocks[1].title: is required');
    expect(errors).toHaveLength(4);
  });

  it('a YAML syntax error, with its line', async () => {
    await fx.edit(AKTO, '    id: tuto-1\n', '    id: tuto-1\n   title: mal indenté\n');
    const errors = await errorsOnly();
    expect(errors.length).toBeGreaterThan(0);
    expect(errors[0]).toMatch(new RegExp(`^${AKTO.replace(/[.]/g, '\\.')}:18:\\d+: error: syntax: `));
  });

  it('a module in the wrong directory, an unknown theme and a duplicate block id', async () => {
    await fx.edit(AKTO, 'fund: akto', 'fund: uniformation');
    await fx.edit(AKTO, 'theme: visibilite', 'theme: communication');
    await fx.edit(AKTO, '    id: tuto-1', '    id: video-1');
    const errors = await errorsOnly();
    expect(errors).toContain(`${AKTO}:5:1: error: fund: "uniformation" must match its directory "akto"`);
    expect(
      errors.some((e) =>
        e.startsWith(`${AKTO}:4:1: error: theme: "communication" must match its directory "visibilite"`),
      ),
    ).toBe(true);
    expect(errors.some((e) => e.startsWith(`${AKTO}:4:1: error: theme: unknown theme "communication"`))).toBe(true);
    expect(errors).toContain(`${AKTO}:17:5: error: blocks[1].id: duplicate block id "video-1"`);
  });

  it('the quiz must be last and unique; a block type must be known', async () => {
    await fx.edit(AKTO, '  - type: testimonial', '  - type: temoignage');
    const errors = await errorsOnly();
    expect(errors).toContain(
      `${AKTO}:23:5: error: blocks[2].type: string "temoignage": type must be video, tutorial, testimonial, activity or quiz`,
    );
    await fx.write(
      AKTO,
      (await fx.read(AKTO))
        .replace('  - type: temoignage', '  - type: testimonial')
        .replace(/ {2}- type: quiz[\s\S]*?(?=^reviewedOn)/m, ''),
    );
    expect(await errorsOnly()).toEqual([
      `${AKTO}:8:1: error: blocks: needs a quiz block (a short self-check, placed last)`,
    ]);
  });

  it('raw HTML and lorem ipsum in the text are refused', async () => {
    await fx.edit(AKTO, '      Le texte complet de la vidéo.', '      Le texte <script>alert(1)</script> de la vidéo.');
    await fx.edit(AKTO, 'quote: "Ça marche."', 'quote: "Lorem ipsum dolor sit amet."');
    const errors = await errorsOnly();
    expect(errors).toContain(
      `${AKTO}:14:5: error: blocks[0].transcript: raw HTML is not allowed in Markdown (write plain Markdown)`,
    );
    expect(errors).toContain(`${AKTO}:25:5: error: blocks[2].quote: placeholder text (lorem ipsum) is not allowed`);
  });

  it('branch variants: the IDCC must belong to the fund, a variant needs branches, the default has none', async () => {
    const variant = 'tn/uniformation/visibilite/module.domicile.yaml';
    await fx.edit(variant, 'branches: ["2941"]', 'branches: ["2941", "1979", 3016]');
    await fx.edit(AKTO, 'nominalMinutes: 15', 'nominalMinutes: 15\nbranches: ["1979"]');
    const errors = await errorsOnly();
    expect(errors).toContain(
      `${variant}:8:20: error: branches[1]: IDCC 1979 is not a branch of fund "uniformation" in funds.json`,
    );
    expect(errors).toContain(
      `${variant}:8:28: error: branches[2]: number 3016 is not an IDCC code: write 4 digits in quotes, e.g. "2941"`,
    );
    expect(errors).toContain(
      `${AKTO}:7:1: error: branches: the default module (module.yaml) has no branches: put a variant in module.<variant>.yaml`,
    );
  });

  it('a variant without branches and a variant without a default module', async () => {
    await fx.write(
      'tn/akto/visibilite/module.hcr.yaml',
      moduleYaml({ id: 'akto-visibilite-hcr', fund: 'akto', theme: 'visibilite', branches: [] }),
    );
    await fx.remove('tn/uniformation/visibilite/module.yaml');
    const errors = await errorsOnly();
    expect(errors).toContain(
      'tn/akto/visibilite/module.hcr.yaml:8:1: error: branches: a branch variant (module.<variant>.yaml) needs a non-empty list of IDCC codes',
    );
    expect(errors).toContain(
      "tn/uniformation/visibilite/module.domicile.yaml:1:1: error: branch variant without a default module: add tn/uniformation/visibilite/module.yaml for the fund's other branches",
    );
  });

  it('duplicate module ids across files, and a badly named module file', async () => {
    await fx.write('tn/common/digitalisation/module.yml', 'id: x\n');
    await fx.edit('tn/uniformation/visibilite/module.yaml', 'id: uniformation-visibilite', 'id: akto-visibilite');
    const errors = await errorsOnly();
    expect(errors).toContain(
      "tn/common/digitalisation/module.yml:1:1: error: a module file is named module.yaml (or module-N.yaml for the theme's module N), or module[-N].<variant>.yaml for a branch variant",
    );
    expect(errors).toContain(
      `tn/uniformation/visibilite/module.yaml:1:1: error: id: duplicate module id "akto-visibilite" (also in ${AKTO})`,
    );
  });

  it('funds.json: an IDCC written as a number, the same IDCC under two funds, a reserved slug', async () => {
    await fx.edit('funds.json', '{ "idcc": "1979"', '{ "idcc": 1979');
    await fx.edit('funds.json', '{ "idcc": "3016"', '{ "idcc": "2941"');
    await fx.edit('funds.json', '"slug": "uniformation"', '"slug": "common"');
    const errors = await errorsOnly();
    expect(errors).toContain(
      'funds.json:10:11: error: funds[0].branches[0].idcc: must be a text of 4 digits in quotes (e.g. "0029"): a number loses its leading zeros',
    );
    expect(errors).toContain(
      'funds.json:20:11: error: funds[1].branches[1].idcc: IDCC 2941 is already listed under fund "common": a branch belongs to one fund',
    );
    expect(errors).toContain('funds.json:14:7: error: funds[1].slug: "common" is reserved for the common trunk');
  });

  it('track.json: the id must be its directory, trunks are common or sector', async () => {
    await fx.edit('tn/track.json', '"id": "tn"', '"id": "autre"');
    await fx.edit('tn/track.json', '"trunk": "sector"', '"trunk": "metier"');
    const errors = await errorsOnly();
    expect(errors).toContain('tn/track.json:2:3: error: id: "autre" must be the name of its directory ("tn")');
    expect(errors).toContain('tn/track.json:7:65: error: themes[1].trunk: must be "common" or "sector" (got "metier")');
    // The theme is still known: its modules are not reported as naming an unknown theme.
    expect(errors.filter((e) => e.includes('unknown theme'))).toEqual([]);
  });

  it('a fund without a module for a sector theme is a warning, not an error', async () => {
    await fx.edit('funds.json', '"branches": [\n        { "idcc": "1979"', '"branches": [\n        { "idcc": "1979"');
    const withNewFund = (await fx.read('funds.json')).replace(
      '  ]\n}',
      '  ,{ "slug": "atlas", "name": "Atlas", "historicalName": "Opcabaia", "sectors": ["Banque"], "branches": [] }\n  ]\n}',
    );
    await fx.write('funds.json', withNewFund);
    const r = await loadContent(fx.dir);
    expect(r.content).not.toBeNull();
    expect(r.problems.map((p) => formatProblem(p))).toEqual([
      'tn/track.json:1:1: warning: theme "visibilite" has no module for fund "atlas" (expected atlas/visibilite/module.yaml)',
    ]);
  });
});

describe('npm run content -- check', () => {
  const io = () => {
    const out: string[] = [];
    const err: string[] = [];
    return { out, err, io: { out: (s: string) => out.push(s), err: (s: string) => err.push(s) } };
  };

  it('prints problems with the path from the working directory and exits 1', async () => {
    await fx.edit(AKTO, '        answer: 2', '        answer: 5');
    const o = io();
    expect(await runContentCommand(['check', '--dir', fx.dir], o.io)).toBe(1);
    const shown = relative(process.cwd(), fx.dir);
    expect(o.err.join('')).toContain(
      `${shown}/${AKTO}:53:9: error: blocks[4].questions[1].answer: must be between 0 and 2 (got 5)`,
    );
    expect(o.err.join('')).toContain('1 error(s), 0 warning(s). Nothing imported.');
  });

  it('exits 0 on valid content with a summary', async () => {
    const o = io();
    expect(await runContentCommand(['check', '--dir', fx.dir], o.io)).toBe(0);
    expect(o.out.join('')).toContain('valid — 2 funds (v1), 3 branches, 1 track(s), 4 modules; 0 warning(s).');
  });

  it('exits 2 on a wrong usage', async () => {
    const o = io();
    expect(await runContentCommand(['verify'], o.io)).toBe(2);
    expect(await runContentCommand(['check', '--oops'], o.io)).toBe(2);
    expect(o.err.join('')).toContain('Usage: npm run content');
  });
});
