import { parseHTML } from 'linkedom';
import { describe, expect, it } from 'vitest';
import type { ModuleManifest } from '../../src/catalog/model.js';
import { GlossaryLinker, renderModulePage } from '../../src/catalog/views/module.js';
import { html } from '../../src/http/html.js';

/** The module page of content model v2: activity, « Pour aller plus loin », glossary links, outside links. */
const manifest: ModuleManifest = {
  id: 'common-obligations',
  version: 1,
  title: 'Obligations',
  theme: 'obligations-protection',
  fund: 'common',
  branches: [],
  nominalMinutes: 15,
  summary: 'Le RGPD et la facture électronique pour une TPE.',
  blocks: [
    {
      type: 'video',
      id: 'video-1',
      title: 'Trois sujets',
      src: 'placeholder',
      captions: null,
      transcript:
        'Le RGPD s’applique à tous. Voir [la CNIL](https://www.cnil.fr/fr/rgpd-de-quoi-parle-t-on) et le `RGPD` en code.',
    },
    {
      type: 'activity',
      id: 'activite-1',
      kind: 'checklist',
      title: 'Votre registre',
      minutes: 5,
      instructions: 'Cochez ce que votre TPE a déjà fait pour le RGPD.',
      items: ['Un registre des traitements', 'Une durée de conservation', 'Une personne référente', 'Des sauvegardes'],
      debrief: 'Un registre à jour suffit pour commencer.',
    },
    {
      type: 'quiz',
      id: 'quiz',
      title: 'Pour vérifier',
      questions: [{ prompt: 'Le RGPD ?', choices: ['a', 'b', 'c'], answer: 0, explanation: 'RGPD.' }],
    },
  ],
  reviewedOn: '2026-12-01',
  sources: [
    {
      title: 'Le RGPD (cnil.fr)',
      url: 'https://www.cnil.fr/fr/reglement-europeen-protection-donnees',
      supports: 'Ce que le règlement demande',
    },
  ],
};

const glossary = [
  { term: 'RGPD', expansion: 'Règlement général sur la protection des données', definition: 'Le règlement européen.' },
  { term: 'TPE', expansion: 'Très petite entreprise', definition: 'Moins de 10 salariés.' },
  { term: 'SIRET', expansion: null, definition: 'Le numéro de l’établissement.' },
];

function render() {
  const body = renderModulePage({
    manifest,
    moduleVersion: 1,
    themeTitle: 'Obligations et protection',
    trunk: 'common',
    fund: null,
    progress: { blocksSeen: {}, quiz: null, completedAt: null },
    session: { token: 't', head: html`` },
    courseId: 'c1',
    videoPlaceholderUrl: 'https://tool.test/assets/video-placeholder.html',
    glossary,
  });
  return parseHTML(body).document;
}

describe('the module page of content model v2', () => {
  it('links the first use of each glossary term to its definition, listed at the end (works without script)', () => {
    const doc = render();
    const terms = [...doc.querySelectorAll('a.term')];
    expect(terms.map((a) => [a.firstChild?.textContent, a.getAttribute('href')])).toEqual([
      ['RGPD', '#glossaire-rgpd'],
      ['TPE', '#glossaire-tpe'],
    ]);
    // The first use is in the summary; the transcript, the activity and the quiz use it unlinked.
    expect(doc.querySelector('.summary a.term')?.textContent).toContain('RGPD');
    expect(doc.querySelector('.transcript a.term')).toBeNull();
    const dts = [...doc.querySelectorAll('section.glossary dt')];
    expect(dts.map((dt) => dt.getAttribute('id'))).toEqual(['glossaire-rgpd', 'glossaire-tpe']);
    expect(dts[0]?.querySelector('dfn')?.textContent).toBe('RGPD');
    expect(dts[0]?.nextElementSibling?.textContent).toBe('Le règlement européen.');
    // A term never used is not listed.
    expect(doc.querySelector('#glossaire-siret')).toBeNull();
  });

  it('opens Markdown links and sources outside the iframe, and leaves link text and code alone', () => {
    const doc = render();
    const link = doc.querySelector('.transcript a[href^="https://www.cnil.fr"]');
    expect(link?.getAttribute('target')).toBe('_blank');
    expect(link?.getAttribute('rel')).toBe('noopener noreferrer');
    expect(doc.querySelector('.transcript code')?.textContent).toBe('RGPD');
    const further = doc.querySelector('section.further');
    expect(further?.querySelector('h2')?.textContent).toBe('Pour aller plus loin');
    const source = further?.querySelector('a');
    expect(source?.getAttribute('href')).toBe('https://www.cnil.fr/fr/reglement-europeen-protection-donnees');
    expect(source?.getAttribute('target')).toBe('_blank');
    expect(source?.getAttribute('rel')).toBe('noopener noreferrer');
    // The glossary does not link inside a source's link text.
    expect(source?.querySelector('a.term')).toBeNull();
  });

  it('renders the activity: checkboxes outside any form, instructions, the debrief on demand; no inline script', () => {
    const doc = render();
    const activity = doc.querySelector('section[data-block-type="activity"]');
    const boxes = [...(activity?.querySelectorAll('input[type="checkbox"]') ?? [])];
    expect(boxes).toHaveLength(4);
    expect(boxes.every((b) => b.closest('form') === null)).toBe(true);
    expect(activity?.querySelector('.activity-kind')?.textContent).toBe(
      'Liste à cocher pour votre entreprise · environ 5 min',
    );
    expect(activity?.querySelector('details.debrief')?.hasAttribute('open')).toBe(false);
    // The activity counts as a part to see: it has its "J’ai terminé cette partie" form.
    expect(activity?.querySelector('form.seen-form input[name="block_id"]')?.getAttribute('value')).toBe('activite-1');
    expect([...doc.querySelectorAll('script')].every((s) => s.hasAttribute('src'))).toBe(true);
  });

  it('GlossaryLinker: longest term first, whole words only', () => {
    const linker = new GlossaryLinker([
      { term: 'Factur-X', expansion: null, definition: 'Un format de facture.' },
      { term: 'X', expansion: null, definition: 'Une lettre.' },
      { term: 'PME', expansion: null, definition: 'Petite ou moyenne entreprise.' },
    ]);
    const out = linker.text('Une facture Factur-X pour les TPE-PME, et les PMEs.').value;
    expect(out).toContain('<a class="term" href="#glossaire-factur-x">Factur-X');
    expect(out).not.toContain('href="#glossaire-x"');
    expect(out).toContain('TPE-<a class="term" href="#glossaire-pme">PME');
    expect(out.match(/class="term"/g)).toHaveLength(2);
  });
});
