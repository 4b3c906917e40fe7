import { afterEach, describe, expect, it } from 'vitest';
import { loadContent } from '../../src/catalog/index.js';
import { loadRegroupementFunds } from '../../src/regroupement/service.js';
import { type ContentFixture, createContentFixture } from '../catalog/content-fixture.js';

/** The `regroupement` flag of funds.json: validated by the content check, read by the regroupement. */
let fx: ContentFixture;
afterEach(async () => {
  await fx.cleanup();
});

describe('funds.json regroupement flag', () => {
  it('is optional, kept only when true, and read at start', async () => {
    fx = await createContentFixture();
    await fx.edit('funds.json', '"slug": "uniformation",', '"slug": "uniformation", "regroupement": true,');
    await fx.edit('funds.json', '"slug": "akto",', '"slug": "akto", "regroupement": false,');
    const load = await loadContent(fx.dir);
    expect(load.problems.filter((p) => p.severity === 'error' && p.file === 'funds.json')).toEqual([]);
    const funds = load.content?.funds.funds ?? [];
    expect(funds.find((f) => f.slug === 'uniformation')?.regroupement).toBe(true);
    expect(funds.find((f) => f.slug === 'akto')).not.toHaveProperty('regroupement');
    expect([...(await loadRegroupementFunds(fx.dir))]).toEqual(['uniformation']);
  });

  it('refuses anything but true or false', async () => {
    fx = await createContentFixture();
    await fx.edit('funds.json', '"slug": "uniformation",', '"slug": "uniformation", "regroupement": "oui",');
    const load = await loadContent(fx.dir);
    expect(
      load.problems.some(
        (p) => p.file === 'funds.json' && p.severity === 'error' && p.message.includes('true or false'),
      ),
    ).toBe(true);
  });

  it('the shipped content: Uniformation plans one', async () => {
    fx = await createContentFixture();
    expect([...(await loadRegroupementFunds('content'))]).toContain('uniformation');
  });
});
