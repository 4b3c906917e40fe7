import { describe, expect, it } from 'vitest';
import { parseLinkTarget, type RoutingCatalog, resolveModule } from '../../src/catalog/rules.js';

/** `position=N` beside `theme=`: what each unit of the generated Open edX course sends. */
describe('a theme link with position=', () => {
  const catalog: RoutingCatalog = {
    themes: [
      { trackId: 'tn', slug: 'digitalisation', trunk: 'common', position: 1, week: 1, moduleCount: 2 },
      { trackId: 'tn', slug: 'coeur-de-metier', trunk: 'sector', position: 5, week: 3, moduleCount: 2 },
    ],
    funds: [{ slug: 'akto' }, { slug: 'uniformation' }],
    modules: [
      { id: 'common-digi-1', trackId: 'tn', theme: 'digitalisation', fund: null, branches: [], position: 1 },
      { id: 'common-digi-2', trackId: 'tn', theme: 'digitalisation', fund: null, branches: [], position: 2 },
      { id: 'akto-coeur-1', trackId: 'tn', theme: 'coeur-de-metier', fund: 'akto', branches: [], position: 1 },
      { id: 'akto-coeur-2', trackId: 'tn', theme: 'coeur-de-metier', fund: 'akto', branches: [], position: 2 },
      { id: 'unif-coeur-2', trackId: 'tn', theme: 'coeur-de-metier', fund: 'uniformation', branches: [], position: 2 },
      {
        id: 'unif-coeur-2-bad',
        trackId: 'tn',
        theme: 'coeur-de-metier',
        fund: 'uniformation',
        branches: ['2941'],
        position: 2,
      },
    ],
  };

  it('reads position only as a small positive integer', () => {
    expect(parseLinkTarget({ theme: 'x', position: '2' }).position).toBe(2);
    expect(parseLinkTarget({ theme: 'x', position: '0' }).position).toBeUndefined();
    expect(parseLinkTarget({ theme: 'x', position: 'deux' }).position).toBeUndefined();
    expect(parseLinkTarget({ theme: 'x' }).position).toBeUndefined();
  });

  it('opens the N-th module of the theme: common trunk, the fund’s, the branch variant', () => {
    const t = (custom: Record<string, string>) => parseLinkTarget(custom);
    expect(resolveModule(t({ theme: 'digitalisation', position: '2' }), null, catalog)).toMatchObject({
      moduleId: 'common-digi-2',
    });
    expect(resolveModule(t({ theme: 'digitalisation' }), null, catalog)).toMatchObject({ moduleId: 'common-digi-1' });
    const akto = { fundSlug: 'akto', idcc: null };
    expect(resolveModule(t({ theme: 'coeur-de-metier', position: '2' }), akto, catalog)).toMatchObject({
      moduleId: 'akto-coeur-2',
    });
    expect(
      resolveModule(
        t({ theme: 'coeur-de-metier', position: '2' }),
        { fundSlug: 'uniformation', idcc: '2941' },
        catalog,
      ),
    ).toMatchObject({ moduleId: 'unif-coeur-2-bad' });
    // A position the theme does not have is refused, never another module.
    expect(resolveModule(t({ theme: 'coeur-de-metier', position: '3' }), akto, catalog)).toMatchObject({
      ok: false,
      reason: 'no_module_for_fund',
    });
  });
});
