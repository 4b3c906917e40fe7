import { formatDuration } from '../common/paris-time.js';
import { escapeHtml, html, page, raw, type SafeHtml, script, stylesheet } from '../http/html.js';
import { inlineMarkdown, markdown } from './markdown.js';
import type {
  ActivityBlock,
  Block,
  GlossaryEntry,
  ModuleManifest,
  QuizBlock,
  SourceRef,
  TestimonialBlock,
  TutorialBlock,
  VideoBlock,
} from './model.js';
import {
  CIVILITIES,
  HEADCOUNT_BANDS,
  ONBOARDING_FIELDS,
  type OnboardingInput,
  type ProgressState,
  progressOf,
  scoreQuiz,
} from './rules.js';
import type { QuizAnswersRecord } from './tables.js';

/**
 * Server-rendered pages of the catalog, shown inside the Open edX iframe: French, usable with a keyboard
 * and a screen reader, readable from a 320 px phone to a small laptop. The session token lives in the
 * page (hidden fields, a meta tag) because third-party cookies are blocked in the iframe.
 */

const CATALOG_STYLE = stylesheet('catalog', new URL('./assets/catalog.css', import.meta.url));

/** The session as a page carries it: the raw token for hidden fields and links, and the LTI capability's
 * <head> markup (meta tag + renewal script, `window.emargementSession`). */
export interface PageSession {
  token: string;
  head: SafeHtml;
}

/** `page()` with the catalog's style, the session markup and room for other capabilities' tags. */
function catalogPage(options: {
  title: string;
  body: SafeHtml;
  session: PageSession | null;
  extraHead?: SafeHtml | undefined;
  bodyData?: Record<string, string> | undefined;
}): string {
  const head = html`${options.session ? options.session.head : raw('<meta name="referrer" content="no-referrer">')}
${CATALOG_STYLE}
${options.extraHead ?? ''}`;
  const out = page({ title: options.title, head, body: options.body });
  if (!options.bodyData) return out;
  const attrs = Object.entries(options.bodyData)
    .map(([k, v]) => html` data-${k}="${v}"`.value)
    .join('');
  return out.replace('<body>', `<body${attrs}>`);
}

const withToken = (path: string, token: string) =>
  `${path}${path.includes('?') ? '&' : '?'}session_token=${encodeURIComponent(token)}`;

// ───────────────────────────── Module page ─────────────────────────────

export interface ModulePageProgress {
  blocksSeen: Record<string, string>;
  quiz: QuizAnswersRecord | null;
  completedAt: Date | null;
}

export interface ModulePageOptions {
  manifest: ModuleManifest;
  moduleVersion: number;
  themeTitle: string;
  trunk: 'common' | 'sector';
  fund: { slug: string; name: string } | null;
  /** null in a course-team preview: nothing is recorded. */
  progress: ModulePageProgress | null;
  session: PageSession;
  courseId: string | null;
  videoPlaceholderUrl: string;
  preview?: { label: string } | undefined;
  /** A short confirmation shown at the top (e.g. after saving the profile). */
  notice?: string | undefined;
  /** Error from a form post without JavaScript (e.g. an incomplete quiz). */
  quizError?: string | undefined;
  /** Extra tags for <head> and the end of <body>: other capabilities (the connection-time tracker) add their script here. */
  extraHead?: SafeHtml | undefined;
  extraBody?: SafeHtml | undefined;
  /** Links other capabilities add to the navigation at the top (« Votre temps de connexion »). */
  extraNav?: SafeHtml | undefined;
  /** The glossary entries this module may link to (common terms and its fund's). */
  glossary?: readonly GlossaryEntry[] | undefined;
  /** Where the learner is in their programme, and where to go next (absent in a preview). */
  sequence?: ModuleSequence | undefined;
}

export interface ModuleSequence {
  /** "Mon parcours" for this session. */
  parcoursHref: string;
  /** The module's place among its theme's modules. */
  indexInTheme: number;
  themeCount: number;
  next: { href: string; title: string; sameTheme: boolean } | null;
}

function partLabel(index: number, total: number): string {
  return `Partie ${index + 1} sur ${total}`;
}

function progressText(state: ProgressState): string {
  if (state.complete) return `Module terminé : ${state.total} parties sur ${state.total}.`;
  return `Progression : ${state.done.length} ${state.done.length > 1 ? 'parties terminées' : 'partie terminée'} sur ${state.total}.`;
}

export function renderModulePage(o: ModulePageOptions): string {
  const { manifest } = o;
  const seen = o.progress?.blocksSeen ?? {};
  const state = progressOf(manifest, seen, o.progress?.quiz != null);
  const total = manifest.blocks.length;
  const tracked = o.progress !== null;

  const toc = html`<nav class="toc" aria-label="Sommaire du module"><ol>
${manifest.blocks.map(
  (b) =>
    html`<li><a href="#bloc-${b.id}">${blockTitle(b)}</a> <span class="state" data-state-for="${b.id}">${state.done.includes(b.id) ? html`<span aria-hidden="true">✓</span> terminé` : ''}</span></li>`,
)}
</ol></nav>`;

  const linker = new GlossaryLinker(o.glossary ?? []);
  const seq = o.sequence;
  const nav =
    seq || o.extraNav
      ? html`<nav class="module-nav" aria-label="Votre formation">${seq ? html`<a href="${seq.parcoursHref}">Mon parcours</a>` : ''}${o.extraNav ?? ''}</nav>`
      : '';
  // In reading order: the summary's uses come first.
  const summary = linker.text(manifest.summary);
  const blocks = manifest.blocks.map((b, i) => renderBlock(b, i, total, o, state, linker));
  const further = renderSources(manifest.sources ?? []);
  const nextLink = seq?.next
    ? html`<p class="next"><a class="button" href="${seq.next.href}">Module suivant : ${seq.next.title}</a></p>`
    : seq
      ? html`<p class="next"><a class="button" href="${seq.parcoursHref}">Revenir à Mon parcours</a></p>`
      : '';

  const body = html`${o.preview ? html`<div class="box preview-banner" role="note"><strong>Aperçu</strong> — ${o.preview.label}. Rien n’est enregistré pendant un aperçu.</div>` : ''}
${nav}
${o.notice ? html`<div class="box notice" role="status">${o.notice}</div>` : ''}
<p class="kicker">${o.themeTitle}${seq && seq.themeCount > 1 ? ` (module ${seq.indexInTheme} sur ${seq.themeCount})` : ''} · ${o.fund ? o.fund.name : 'Tronc commun'} · environ ${manifest.nominalMinutes} minutes</p>
<h1>${manifest.title}</h1>
<p class="summary">${summary}</p>
<div class="progress" id="progression">
<progress id="progress-bar" max="${total}" value="${state.done.length}" aria-labelledby="progress-text"></progress>
<p id="progress-text" role="status" aria-live="polite">${progressText(state)}</p>
</div>
<div id="completion" role="status" aria-live="polite">${state.complete && tracked ? completionBox() : ''}</div>
${toc}
${blocks}
${further}
${linker.section()}
${nextLink}
<div class="actions">
${o.preview ? '' : html`<a href="${withToken('/catalog/profile', o.session.token)}">Voir ou corriger mon profil</a>`}
<a href="#progression">Revenir en haut du module</a>
</div>
${o.extraBody ?? ''}
<script src="/assets/catalog/module.js" defer></script>`;

  return catalogPage({
    title: manifest.title,
    body,
    session: o.session,
    extraHead: o.extraHead,
    bodyData: {
      'emargement-page': 'module',
      'module-id': manifest.id,
      'module-version': String(o.moduleVersion),
      'course-id': o.courseId ?? '',
      preview: o.preview ? 'true' : 'false',
      'nominal-minutes': String(manifest.nominalMinutes),
    },
  });
}

function completionBox(): SafeHtml {
  return html`<div class="box complete"><p><strong>Bravo, vous avez terminé ce module.</strong> Votre progression est enregistrée : vous pouvez passer au module suivant du cours.</p></div>`;
}

/** « Pour aller plus loin »: the module's sources, opening outside the iframe. */
function renderSources(sources: readonly SourceRef[]): SafeHtml | '' {
  if (sources.length === 0) return '';
  return html`<section class="further" aria-labelledby="plus-loin">
<h2 id="plus-loin">Pour aller plus loin</h2>
<ul>${sources.map(
    (src) =>
      html`<li><a href="${src.url}" target="_blank" rel="noopener noreferrer">${src.title}<span class="sr-only"> (s’ouvre dans un nouvel onglet)</span></a><br><span class="muted">${src.supports}</span></li>`,
  )}</ul>
</section>`;
}

/**
 * Links the first use of each glossary term in the module's text to its definition, listed at the end of
 * the page (« Les mots à connaître »): an in-page link, so it works without JavaScript and is read as a
 * link by screen readers. Text inside links, code and headings is left alone.
 */
export class GlossaryLinker {
  private readonly linked = new Set<string>();
  private readonly entries: readonly GlossaryEntry[];
  private readonly pattern: RegExp | null;

  constructor(entries: readonly GlossaryEntry[]) {
    // Longest first, so that "Factur-X" wins over a shorter term inside it.
    this.entries = [...entries].sort((a, b) => b.term.length - a.term.length);
    const alternatives = this.entries.map((e) => escapeRegExp(escapeHtml(e.term)));
    this.pattern =
      alternatives.length > 0
        ? new RegExp(`(?<![\\p{L}\\p{N}])(${alternatives.join('|')})(?![\\p{L}\\p{N}])`, 'gu')
        : null;
  }

  /** Plain text (escaped here) with its first uses linked. */
  text(value: string): SafeHtml {
    return this.html(escapeHtml(value));
  }

  /** Markdown rendered, with its first uses linked. */
  markdown(source: string): SafeHtml {
    return this.html(markdown(source).value);
  }

  /** Links first uses in already-safe HTML, outside tags, links, code and headings. */
  html(safe: string): SafeHtml {
    if (!this.pattern) return raw(safe);
    let depth = 0;
    const out = safe.split(/(<[^>]*>)/).map((part) => {
      if (part.startsWith('<')) {
        const m = /^<(\/?)(a|code|h[1-6]|summary|legend|label)\b/i.exec(part);
        if (m) depth += m[1] === '/' ? -1 : 1;
        return part;
      }
      if (depth > 0 || part === '') return part;
      return part.replace(this.pattern as RegExp, (match) => {
        const entry = this.entries.find((e) => escapeHtml(e.term) === match);
        if (!entry || this.linked.has(entry.term)) return match;
        this.linked.add(entry.term);
        return `<a class="term" href="#${termAnchor(entry.term)}">${match}<span class="sr-only"> (voir la définition)</span></a>`;
      });
    });
    return raw(out.join(''));
  }

  /** The definitions of the terms linked so far. */
  section(): SafeHtml | '' {
    const used = this.entries.filter((e) => this.linked.has(e.term)).sort((a, b) => a.term.localeCompare(b.term, 'fr'));
    if (used.length === 0) return '';
    return html`<section class="glossary" aria-labelledby="glossaire">
<h2 id="glossaire">Les mots à connaître</h2>
<dl>${used.map(
      (e) =>
        html`<dt id="${termAnchor(e.term)}" tabindex="-1"><dfn>${e.term}</dfn>${e.expansion ? html` <span class="muted">(${e.expansion})</span>` : ''}</dt><dd>${e.definition}</dd>`,
    )}</dl>
</section>`;
  }
}

function termAnchor(term: string): string {
  const slug = term
    .normalize('NFD')
    .replace(/\p{M}/gu, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-|-$/g, '');
  return `glossaire-${slug || 'terme'}`;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function blockTitle(b: Block): string {
  if (b.type === 'testimonial') return b.title ?? `Témoignage de ${b.person}`;
  return b.title;
}

function renderBlock(
  b: Block,
  index: number,
  total: number,
  o: ModulePageOptions,
  state: ProgressState,
  linker: GlossaryLinker,
): SafeHtml {
  const content =
    b.type === 'video'
      ? renderVideo(b, o.videoPlaceholderUrl, linker)
      : b.type === 'tutorial'
        ? renderTutorial(b, linker)
        : b.type === 'testimonial'
          ? renderTestimonial(b, o.videoPlaceholderUrl, linker)
          : b.type === 'activity'
            ? renderActivity(b, linker)
            : renderQuiz(b, o);
  const done = state.done.includes(b.id);
  const seenForm =
    b.type === 'quiz' || o.progress === null
      ? ''
      : html`<form class="seen-form" method="post" action="/catalog/module/seen#bloc-${b.id}" data-block-id="${b.id}">
<input type="hidden" name="session_token" value="${o.session.token}">
<input type="hidden" name="module_id" value="${o.manifest.id}">
<input type="hidden" name="block_id" value="${b.id}">
${done ? html`<p class="done-mark"><span aria-hidden="true">✓</span> Partie terminée.</p>` : html`<button type="submit">J’ai terminé cette partie</button>`}
</form>`;
  return html`<section class="block" id="bloc-${b.id}" aria-labelledby="titre-${b.id}" data-block-id="${b.id}" data-block-type="${b.type}">
<h2 id="titre-${b.id}" tabindex="-1"><span class="part">${partLabel(index, total)}</span>${blockTitle(b)}</h2>
${content}
${seenForm}
</section>`;
}

function mediaFrame(src: string, title: string, placeholderUrl: string, captions: string | null): SafeHtml {
  if (src === 'placeholder') {
    const url = `${placeholderUrl}${placeholderUrl.includes('?') ? '&' : '?'}titre=${encodeURIComponent(title)}`;
    return html`<div class="frame"><iframe src="${url}" title="Vidéo « ${title} » : pas encore disponible, lisez la transcription" loading="lazy"></iframe></div>`;
  }
  if (/\.(mp4|webm|ogv|ogg|m4v|mov)(\?.*)?$/i.test(src)) {
    return html`<div class="frame"><video controls preload="metadata" playsinline${captions ? raw(' crossorigin="anonymous"') : ''} aria-label="Vidéo : ${title}">
<source src="${src}">
${captions ? html`<track kind="captions" src="${captions}" srclang="fr" label="Français" default>` : ''}
<p>Votre navigateur ne lit pas cette vidéo : <a href="${src}">téléchargez-la</a> ou lisez la transcription.</p>
</video></div>`;
  }
  // An embedded player shows its own captions; their file is offered too, as the check requires it.
  return html`<div class="frame"><iframe src="${src}" title="Vidéo : ${title}" allow="fullscreen; encrypted-media; picture-in-picture" allowfullscreen loading="lazy"></iframe></div>
${captions ? html`<p class="muted"><a href="${captions}" target="_blank" rel="noopener noreferrer">Sous-titres de la vidéo (fichier WebVTT)<span class="sr-only"> (s’ouvre dans un nouvel onglet)</span></a></p>` : ''}`;
}

function renderVideo(b: VideoBlock, placeholderUrl: string, linker: GlossaryLinker): SafeHtml {
  // Without a real video the transcript is the content: it is shown open.
  return html`${mediaFrame(b.src, b.title, placeholderUrl, b.captions)}
<details class="transcript"${b.src === 'placeholder' ? raw(' open') : ''}>
<summary>Transcription écrite de la vidéo</summary>
${linker.markdown(b.transcript)}
</details>`;
}

function renderTutorial(b: TutorialBlock, linker: GlossaryLinker): SafeHtml {
  return html`<ol class="steps">
${b.steps.map((s, i) => html`<li><h3>Étape ${i + 1} : ${s.title}</h3>${linker.markdown(s.body)}</li>`)}
</ol>`;
}

function renderTestimonial(b: TestimonialBlock, placeholderUrl: string, linker: GlossaryLinker): SafeHtml {
  return html`${b.video ? mediaFrame(b.video, `Témoignage de ${b.person}`, placeholderUrl, b.captions) : ''}
<figure class="quote">
<blockquote><p>${linker.text(b.quote)}</p></blockquote>
<figcaption>${b.person}, ${b.role}</figcaption>
</figure>
${b.video && b.transcript ? html`<details class="transcript"><summary>Transcription écrite du témoignage</summary>${linker.markdown(b.transcript)}</details>` : ''}`;
}

const ACTIVITY_KIND_LABELS: Record<ActivityBlock['kind'], string> = {
  checklist: 'Liste à cocher pour votre entreprise',
  'worked-example': 'Exemple à reprendre pour votre entreprise',
  scenario: 'Mise en situation',
};

/**
 * The activity: its items are checkboxes that stay in the page (never sent: nothing about the learner's
 * company is stored), and the debrief opens on demand (a <details>, which needs no script).
 */
function renderActivity(b: ActivityBlock, linker: GlossaryLinker): SafeHtml {
  const list = b.items.map(
    (item, i) =>
      html`<li><label><input type="checkbox" name="${b.id}-${i}" data-activity-item> <span>${inlineMarkdown(item)}</span></label></li>`,
  );
  return html`<p class="activity-kind">${ACTIVITY_KIND_LABELS[b.kind]} · environ ${b.minutes} min</p>
${linker.markdown(b.instructions)}
<div class="activity-items">
<p class="muted" id="aide-${b.id}">Vos coches restent sur cet écran : elles ne sont ni envoyées ni enregistrées.</p>
${b.kind === 'checklist' ? html`<ul class="checklist" aria-describedby="aide-${b.id}">${list}</ul>` : html`<ol class="checklist" aria-describedby="aide-${b.id}">${list}</ol>`}
</div>
<details class="debrief">
<summary>Voir le corrigé et ce qu’on attend d’un bon résultat</summary>
${linker.markdown(b.debrief)}
</details>`;
}

function renderQuiz(b: QuizBlock, o: ModulePageOptions): SafeHtml {
  const record = o.progress?.quiz ?? null;
  const score = record ? scoreQuiz(b, record.answers) : null;
  const results = score?.ok ? score.results : null;
  const disabled = o.progress === null;
  return html`<p>Une courte vérification pour vous : ${b.questions.length} questions. Une mauvaise réponse ne vous pénalise pas ; une explication s’affiche après la validation.</p>
<form class="quiz-form" method="post" action="/catalog/module/quiz#bloc-${b.id}" data-block-id="${b.id}" novalidate>
<input type="hidden" name="session_token" value="${o.session.token}">
<input type="hidden" name="module_id" value="${o.manifest.id}">
${o.quizError ? html`<p class="field-error" role="alert">${o.quizError}</p>` : ''}
${b.questions.map((q, qi) => {
  const result = results?.[qi];
  const chosen = record?.answers[qi];
  return html`<fieldset class="choices" data-question="${qi}">
<legend>Question ${qi + 1} : ${q.prompt}</legend>
${q.choices.map(
  (c, ci) =>
    html`<label><input type="radio" name="q${qi}" value="${ci}"${chosen === ci ? raw(' checked') : ''}${disabled ? raw(' disabled') : ''}> <span>${c}</span></label>`,
)}
<div class="feedback-slot" aria-live="polite">${result ? feedback(result.correct, q.choices[result.answer] ?? '', result.explanation) : ''}</div>
</fieldset>`;
})}
${
  disabled
    ? html`<p class="muted">Le quiz se valide dans la vue apprenant.</p>`
    : html`<button type="submit">${record ? 'Valider à nouveau' : 'Valider mes réponses'}</button>`
}
</form>
<p class="quiz-score" role="status" aria-live="polite">${score?.ok ? quizScoreText(score.correct, score.total) : ''}</p>`;
}

export function quizScoreText(correct: number, total: number): string {
  return `Vous avez ${correct} bonne${correct > 1 ? 's' : ''} réponse${correct > 1 ? 's' : ''} sur ${total}. Le quiz est enregistré.`;
}

function feedback(correct: boolean, rightChoice: string, explanation: string): SafeHtml {
  return correct
    ? html`<p class="feedback right"><strong>Bonne réponse.</strong> ${explanation}</p>`
    : html`<p class="feedback wrong"><strong>Pas tout à fait.</strong> La bonne réponse : « ${rightChoice} ». ${explanation}</p>`;
}

// ───────────────────────────── Onboarding and profile form ─────────────────────────────

export interface ProfileFormOptions {
  mode: 'onboarding' | 'profile' | 'course_team';
  action: string;
  session: PageSession;
  values: OnboardingInput;
  errors?: Partial<Record<keyof OnboardingInput, string>> | undefined;
  /** A refusal (company of 250 employees or more), shown with the form so a wrong answer can be fixed. */
  refusal?: string | undefined;
  notice?: string | undefined;
  funds: readonly { slug: string; name: string; historicalName: string | null }[];
  branches: readonly { idcc: string; name: string; fundSlug: string }[];
  fixedFund?: { slug: string; name: string } | null | undefined;
  /** For a course-team correction: whose profile. */
  learnerLabel?: string | undefined;
  backLink?: { href: string; label: string } | undefined;
}

const FIELD_LABELS: Record<keyof OnboardingInput, string> = {
  civility: 'Civilité',
  familyName: 'Nom',
  givenName: 'Prénom',
  companyName: 'Nom de l’entreprise qui vous emploie',
  siret: 'Numéro SIRET de l’entreprise',
  headcountBand: 'Nombre de salariés de l’entreprise',
  idcc: 'Convention collective de l’entreprise',
  fund: 'Fonds de formation (OPCO) de l’entreprise',
};

/** The first focusable element of each field, for the links of the error summary. */
function fieldAnchor(field: keyof OnboardingInput): string {
  if (field === 'civility') return `champ-civility-${CIVILITIES[0]?.value}`;
  if (field === 'headcountBand') return 'champ-headcountBand-0';
  return `champ-${field}`;
}

type FundOption = ProfileFormOptions['funds'][number];
type BranchOption = ProfileFormOptions['branches'][number];

const fundLabel = (f: { name: string; historicalName: string | null }) =>
  f.historicalName && f.historicalName !== f.name ? `${f.name} (anciennement ${f.historicalName})` : f.name;

function renderIdccOptions(
  funds: readonly FundOption[],
  branches: readonly BranchOption[],
  fixedFund: string | null,
  selected: string,
): SafeHtml {
  return html`${funds
    .map((fund) => ({ fund, branches: branches.filter((b) => b.fundSlug === fund.slug) }))
    .filter((g) => g.branches.length > 0 && (!fixedFund || g.fund.slug === fixedFund))
    .map(
      (g) => html`<optgroup label="${fundLabel(g.fund)}">
${g.branches.map((b) => html`<option value="${b.idcc}"${selected === b.idcc ? raw(' selected') : ''}>${b.name} (IDCC ${b.idcc})</option>`)}
</optgroup>`,
    )}`;
}

/**
 * The collective agreements' options are the same for every learner until the catalogue changes: rendered once
 * per (funds, branches) pair of arrays — the catalogue snapshot's own arrays, replaced by a new snapshot after
 * an import, so a change is never served stale — per fixed fund and selected agreement. Only a selection that
 * is empty or a known agreement is kept (whatever a refused form sent back is rendered, never stored).
 */
const idccOptionsCache = new WeakMap<readonly FundOption[], WeakMap<readonly BranchOption[], Map<string, SafeHtml>>>();

export function idccOptions(
  funds: readonly FundOption[],
  branches: readonly BranchOption[],
  fixedFund: string | null,
  selected: string,
): SafeHtml {
  if (selected !== '' && !branches.some((b) => b.idcc === selected)) {
    return renderIdccOptions(funds, branches, fixedFund, selected);
  }
  let byBranches = idccOptionsCache.get(funds);
  if (!byBranches) {
    byBranches = new WeakMap();
    idccOptionsCache.set(funds, byBranches);
  }
  let rendered = byBranches.get(branches);
  if (!rendered) {
    rendered = new Map();
    byBranches.set(branches, rendered);
  }
  const key = `${fixedFund ?? ''}\u0000${selected}`;
  let out = rendered.get(key);
  if (!out) {
    out = renderIdccOptions(funds, branches, fixedFund, selected);
    rendered.set(key, out);
  }
  return out;
}

export function renderProfileForm(o: ProfileFormOptions): string {
  const errors = o.errors ?? {};
  const v = o.values;
  const errorFields = ONBOARDING_FIELDS.filter((f) => errors[f] !== undefined);
  const invalid = (f: keyof OnboardingInput) => (errors[f] ? raw(' aria-invalid="true"') : '');
  const describedBy = (f: keyof OnboardingInput, hint = false) => {
    const ids = [hint ? `aide-${f}` : '', errors[f] ? `erreur-${f}` : ''].filter(Boolean);
    return ids.length ? raw(` aria-describedby="${ids.join(' ')}"`) : '';
  };
  const errorText = (f: keyof OnboardingInput) =>
    errors[f]
      ? html`<p class="field-error" id="erreur-${f}"><span class="sr-only">Erreur : </span>${errors[f]}</p>`
      : '';
  const textField = (f: keyof OnboardingInput, autocomplete: string, extra: SafeHtml | string = '', hint?: string) =>
    html`<label for="champ-${f}">${FIELD_LABELS[f]}</label>
${hint ? html`<p class="hint" id="aide-${f}">${hint}</p>` : ''}
${errorText(f)}
<input type="text" id="champ-${f}" name="${f}" value="${v[f]}" autocomplete="${autocomplete}" required${invalid(f)}${describedBy(f, hint !== undefined)}${extra}>`;

  const title =
    o.mode === 'onboarding'
      ? 'Avant de commencer'
      : o.mode === 'profile'
        ? 'Mon profil'
        : `Profil de ${o.learnerLabel ?? 'l’apprenant'}`;
  const intro =
    o.mode === 'onboarding'
      ? html`<p>Quelques informations pour vous montrer les modules de votre secteur et établir votre attestation de présence. Cela prend deux minutes. Les champs sont tous obligatoires, sauf la convention collective.</p>`
      : o.mode === 'profile'
        ? html`<p>Vérifiez vos informations et corrigez-les si besoin. Elles figurent sur votre attestation de présence.</p>`
        : html`<p>Vous corrigez le profil d’un apprenant de votre cours. La modification est enregistrée à votre nom.</p>`;

  const body = html`<h1>${title}</h1>
${o.notice ? html`<div class="box notice" role="status">${o.notice}</div>` : ''}
${
  o.refusal
    ? html`<div class="box error error-summary" role="alert" tabindex="-1" id="refus"><h2>Inscription impossible pour cette entreprise</h2><p>${o.refusal}</p><p>Si vous vous êtes trompé dans le nombre de salariés, corrigez-le ci-dessous puis validez à nouveau. Pour toute question, adressez-vous au conseiller de votre fonds de formation.</p></div>`
    : ''
}
${
  errorFields.length > 0
    ? html`<div class="box error-summary" role="alert" tabindex="-1" id="erreurs"><h2>${errorFields.length > 1 ? `Le formulaire contient ${errorFields.length} erreurs` : 'Le formulaire contient une erreur'}</h2>
<p>Vos réponses sont conservées : corrigez seulement ce qui est signalé.</p>
<ul>${errorFields.map((f) => html`<li><a href="#${fieldAnchor(f)}">${FIELD_LABELS[f]} : ${errors[f]}</a></li>`)}</ul></div>`
    : ''
}
${intro}
<form method="post" action="${o.action}" novalidate>
<input type="hidden" name="session_token" value="${o.session.token}">
<fieldset>
<legend>${o.mode === 'course_team' ? 'L’apprenant' : 'Vous'}</legend>
<fieldset class="choices" id="groupe-civility"${describedBy('civility')}>
<legend>${FIELD_LABELS.civility}</legend>
${errorText('civility')}
${CIVILITIES.map((c) => html`<label><input type="radio" id="champ-civility-${c.value}" name="civility" value="${c.value}"${v.civility === c.value ? raw(' checked') : ''}${invalid('civility')}> <span>${c.label}</span></label>`)}
</fieldset>
${textField('familyName', 'family-name', '', o.mode === 'onboarding' ? 'Tel qu’il doit figurer sur votre attestation.' : undefined)}
${textField('givenName', 'given-name')}
</fieldset>
<fieldset>
<legend>L’entreprise</legend>
${textField('companyName', 'organization')}
${textField('siret', 'off', raw(' inputmode="numeric" spellcheck="false"'), '14 chiffres. Vous le trouvez en haut de votre fiche de paie, ou en demandant au service du personnel.')}
<fieldset class="choices" id="groupe-headcountBand"${describedBy('headcountBand', true)}>
<legend>${FIELD_LABELS.headcountBand}</legend>
<p class="hint" id="aide-headcountBand">Tous établissements confondus. La formation est réservée aux entreprises de moins de 250 salariés.</p>
${errorText('headcountBand')}
${HEADCOUNT_BANDS.map((b, i) => html`<label><input type="radio" id="champ-headcountBand-${i}" name="headcountBand" value="${b.value}"${v.headcountBand === b.value ? raw(' checked') : ''}${invalid('headcountBand')}> <span>${b.label}</span></label>`)}
</fieldset>
<label for="champ-idcc">${FIELD_LABELS.idcc} (facultatif)</label>
<p class="hint" id="aide-idcc">Elle est indiquée sur votre fiche de paie, souvent avec un numéro à 4 chiffres (IDCC). Si vous la choisissez, le fonds de formation en découle.</p>
${errorText('idcc')}
<select id="champ-idcc" name="idcc"${invalid('idcc')}${describedBy('idcc', true)}>
<option value=""${v.idcc === '' ? raw(' selected') : ''}>Je ne sais pas</option>
${idccOptions(o.funds, o.branches, o.fixedFund?.slug ?? null, v.idcc)}
</select>
${
  o.fixedFund
    ? html`<p><strong>${FIELD_LABELS.fund} :</strong> ${o.fixedFund.name}. <span class="muted">Ce cours est proposé aux entreprises de ce fonds.</span></p>`
    : html`<label for="champ-fund">${FIELD_LABELS.fund}</label>
<p class="hint" id="aide-fund">Choisissez-le si vous ne connaissez pas la convention collective. Votre employeur ou votre conseiller peut vous l’indiquer.</p>
${errorText('fund')}
<select id="champ-fund" name="fund"${invalid('fund')}${describedBy('fund', true)}>
<option value=""${v.fund === '' ? raw(' selected') : ''}>Je ne sais pas (déduit de la convention collective)</option>
${o.funds.map((f) => html`<option value="${f.slug}"${v.fund === f.slug ? raw(' selected') : ''}>${fundLabel(f)}</option>`)}
</select>`
}
</fieldset>
${
  o.mode === 'course_team'
    ? ''
    : html`<section class="box" aria-labelledby="titre-donnees">
<h2 id="titre-donnees">Vos données personnelles</h2>
<p>Ces informations servent à trois choses : vous montrer les modules de votre secteur, établir votre attestation de présence (avec votre temps de connexion), et informer votre fonds de formation de votre participation, pour le financement de la formation.</p>
<p>Elles ne sont ni vendues, ni utilisées pour de la publicité. Seules l’équipe du cours et votre fonds de formation y ont accès. Vous pouvez les consulter et les corriger à tout moment avec le lien « Voir ou corriger mon profil ». Pour les faire supprimer ou pour toute question, écrivez à l’équipe du cours.</p>
</section>`
}
<div class="actions">
<button type="submit">${o.mode === 'onboarding' ? 'Enregistrer et commencer' : 'Enregistrer'}</button>
${o.backLink ? html`<a href="${o.backLink.href}">${o.backLink.label}</a>` : ''}
</div>
</form>
<script src="/assets/catalog/form.js" defer></script>`;

  return catalogPage({ title, body, session: o.session, bodyData: { 'emargement-page': o.mode } });
}

// ───────────────────────────── Course-team overview ─────────────────────────────

export interface OverviewRow {
  fund: { slug: string; name: string; historicalName: string | null } | null;
  module: { id: string; title: string; version: number } | null;
  variants: { id: string; title: string; version: number; branches: { idcc: string; name: string }[] }[];
  /** The theme's next modules (positions 2, 3…), shown after the first one ("module suivant"). */
  followedBy?: { id: string; title: string; version: number }[];
}

export interface OverviewOptions {
  session: PageSession;
  linkDescription: string;
  /** The link fixes a fund (custom `fund=`). */
  fixedFund: string | null;
  rows: OverviewRow[];
  problem?: string | undefined;
  themes: { trackTitle: string; slug: string; title: string; trunk: 'common' | 'sector' }[];
  modules: { id: string; title: string; fund: string }[];
  /** A parcours link: the course's progress by week. */
  courseProgress?: SafeHtml | undefined;
  /** The programme as funded: modules per learner and planned duration (from the modules' nominal durations). */
  programme?: { modules: number; plannedMinutes: number; weeks: number } | undefined;
  /** What the course's certificate requires, in plain French (the certificates' issuance rule). */
  issuanceRule?: string | undefined;
}

export function renderCourseTeamOverview(o: OverviewOptions): string {
  const previewButton = (moduleId: string, label: string, fund: string | null) =>
    html`<a class="button" href="${withToken(`/catalog/preview?module=${encodeURIComponent(moduleId)}${fund ? `&fund=${encodeURIComponent(fund)}` : ''}`, o.session.token)}">${label}</a>`;
  const body = html`<h1>Vue de l’équipe pédagogique</h1>
<p>${o.linkDescription}</p>
${o.problem ? html`<div class="box error" role="alert"><p>${o.problem}</p></div>` : ''}
${o.programme ? html`<p>Le parcours de chaque apprenant compte <strong>${o.programme.modules} modules</strong> sur ${o.programme.weeks} semaines, soit <strong>${formatMinutes(o.programme.plannedMinutes)}</strong> prévues (somme des durées des modules) : le tronc commun et les modules du fonds de l’apprenant.</p>` : ''}
${o.issuanceRule ? html`<div class="box" id="regle-certificat"><p><strong>Règle de délivrance du certificat :</strong> ${o.issuanceRule}</p></div>` : ''}
${o.courseProgress ?? ''}
${o.fixedFund ? html`<p class="box">Ce lien fixe le fonds (<code>fund=${o.fixedFund}</code>) : tous les apprenants voient le module de ce fonds, quelle que soit leur entreprise.</p>` : ''}
${
  o.rows.length > 0
    ? html`<table class="funds">
<caption class="sr-only">Module affiché pour chaque fonds de formation</caption>
<thead><tr><th scope="col">Fonds</th><th scope="col">Module affiché</th><th scope="col">Variantes de branche</th><th scope="col">Aperçu</th></tr></thead>
<tbody>
${o.rows.map(
  (r) => html`<tr>
<th scope="row">${r.fund ? html`${r.fund.name}${r.fund.historicalName ? html`<br><span class="muted">anciennement ${r.fund.historicalName}</span>` : ''}` : 'Tous les apprenants'}</th>
<td>${r.module ? html`${r.module.title}<br><span class="muted"><code>${r.module.id}</code>, version ${r.module.version}</span>${(r.followedBy ?? []).map((t) => html`<br>puis : ${t.title} <span class="muted"><code>${t.id}</code>, version ${t.version}</span>`)}` : html`<strong>Aucun module</strong> : ces apprenants verront un message d’erreur.`}</td>
<td>${
    r.variants.length === 0
      ? html`<span class="muted">Aucune</span>`
      : html`<ul>${r.variants.map(
          (va) =>
            html`<li>${va.title} — pour ${va.branches.map((b) => `${b.name} (IDCC ${b.idcc})`).join(', ')} ${previewButton(va.id, `Aperçu de la variante`, r.fund?.slug ?? null)}</li>`,
        )}</ul>`
  }</td>
<td>${r.module ? previewButton(r.module.id, r.fund ? `Aperçu comme ${r.fund.name}` : 'Aperçu', r.fund?.slug ?? null) : ''}</td>
</tr>`,
)}
</tbody></table>`
    : ''
}
<div class="actions"><a href="${withToken('/catalog/course/learners', o.session.token)}">Apprenants du cours et leurs profils</a> <a href="${withToken('/lti-services/course-team', o.session.token)}">Progression sur ce lien et notes transmises</a></div>
<details>
<summary>Comment paramétrer ce lien dans Studio</summary>
<p>Dans le composant LTI, champ « Custom parameters », ajoutez une ligne :</p>
<ul>
<li>rien, ou <code>view=parcours</code> : « Mon parcours », les modules de l’apprenant semaine par semaine, son temps et son certificat ;</li>
<li><code>theme=&lt;thème&gt;</code> : chaque apprenant voit les modules de son fonds pour ce thème, l’un après l’autre (c’est l’usage normal) ;</li>
<li><code>module=&lt;identifiant&gt;</code> : tout le monde voit le même module ;</li>
<li>en plus, facultatif : <code>fund=&lt;fonds&gt;</code> pour une session de cours réservée à un fonds.</li>
</ul>
<table><caption>Thèmes disponibles</caption><thead><tr><th scope="col">Paramètre</th><th scope="col">Thème</th><th scope="col">Tronc</th></tr></thead>
<tbody>${o.themes.map((t) => html`<tr><td><code>theme=${t.slug}</code></td><td>${t.title}</td><td>${t.trunk === 'common' ? 'commun' : 'sectoriel'}</td></tr>`)}</tbody></table>
<table><caption>Modules disponibles</caption><thead><tr><th scope="col">Paramètre</th><th scope="col">Module</th><th scope="col">Fonds</th></tr></thead>
<tbody>${o.modules.map((m) => html`<tr><td><code>module=${m.id}</code></td><td>${m.title}</td><td>${m.fund}</td></tr>`)}</tbody></table>
</details>`;
  return catalogPage({
    title: 'Vue de l’équipe pédagogique',
    body,
    session: o.session,
    bodyData: { 'emargement-page': 'course-team' },
  });
}

export interface LearnerListOptions {
  session: PageSession;
  courseTitle: string;
  learners: {
    id: string;
    name: string;
    company: string | null;
    fund: string | null;
    completed: number;
    started: number;
  }[];
}

export function renderCourseLearners(o: LearnerListOptions): string {
  const body = html`<h1>Apprenants du cours</h1>
<p>${o.courseTitle}. Les apprenants apparaissent ici après leur premier lancement d’un module.</p>
${
  o.learners.length === 0
    ? html`<p>Aucun apprenant pour l’instant.</p>`
    : html`<table>
<caption class="sr-only">Apprenants, entreprise, fonds et modules</caption>
<thead><tr><th scope="col">Apprenant</th><th scope="col">Entreprise</th><th scope="col">Fonds</th><th scope="col">Modules terminés</th><th scope="col">Profil</th></tr></thead>
<tbody>${o.learners.map(
        (
          l,
        ) => html`<tr><th scope="row">${l.name}</th><td>${l.company ?? html`<span class="muted">profil non rempli</span>`}</td><td>${l.fund ?? '—'}</td><td>${l.completed} sur ${l.started} commencés</td>
<td><a href="${withToken(`/catalog/course/learners/${l.id}/profile`, o.session.token)}">Corriger le profil<span class="sr-only"> de ${l.name}</span></a></td></tr>`,
      )}</tbody></table>`
}
<div class="actions"><a href="${withToken('/catalog/course', o.session.token)}">Retour à la vue de l’équipe pédagogique</a></div>`;
  return catalogPage({
    title: 'Apprenants du cours',
    body,
    session: o.session,
    bodyData: { 'emargement-page': 'course-learners' },
  });
}

// ───────────────────────────── Messages ─────────────────────────────

/** A French page for a learner when the link cannot be served (unknown module or theme…). */
export function renderMessagePage(options: {
  title: string;
  message: string;
  advice: string;
  reference: string;
  session?: PageSession | null;
}): string {
  const body = html`<div class="box error" role="alert">
<h1>${options.title}</h1>
<p>${options.message}</p>
<p>${options.advice}</p>
<p class="muted">Référence à donner à l’équipe du cours : <code>${options.reference}</code></p>
</div>`;
  return catalogPage({ title: options.title, body, session: options.session ?? null });
}

const PLACEHOLDER_STYLE = stylesheet('video-placeholder', new URL('./assets/video-placeholder.css', import.meta.url), {
  base: false,
});
const PLACEHOLDER_SCRIPT = script('video-placeholder', new URL('./assets/video-placeholder.js', import.meta.url));

export function renderVideoPlaceholder(): string {
  // Shown inside a video frame: the title comes from the query string and is set by a tiny script so
  // the page itself stays static (and cacheable).
  return `<!doctype html>
<html lang="fr">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Vidéo bientôt disponible</title>
${PLACEHOLDER_STYLE}
${PLACEHOLDER_SCRIPT}
</head>
<body>
<div>
<p class="big">La vidéo arrive bientôt</p>
<p id="titre"></p>
<p>En attendant, tout ce qu’elle dit est écrit dans la transcription, juste en dessous.</p>
</div>
</body>
</html>`;
}

// ───────────────────────────── Mon parcours ─────────────────────────────

export type ParcoursStatus = 'todo' | 'started' | 'done';

const STATUS_LABELS: Record<ParcoursStatus, string> = { todo: 'à faire', started: 'en cours', done: 'terminé' };

export interface ParcoursModule {
  id: string;
  title: string;
  themeTitle: string;
  nominalMinutes: number;
  status: ParcoursStatus;
  /** Credited time in seconds; null when the time tracking is not available. */
  creditedSeconds: number | null;
  href: string;
}

export interface ParcoursWeek {
  week: number | null;
  title: string;
  modules: ParcoursModule[];
}

export interface ParcoursCertificate {
  /** The download link of the valid certificate, once issued. */
  pdfHref: string | null;
  /** The certificate page (request, history). */
  pageHref: string;
  /** What is still missing, in plain French. */
  missing: string[];
}

export interface ParcoursPageOptions {
  session: PageSession;
  trackTitle: string;
  fundName: string | null;
  weeks: ParcoursWeek[];
  /** Sum of the nominal durations of the learner's modules. */
  plannedMinutes: number;
  /** Credited time over the whole course, in seconds; null when unknown. */
  totalSeconds: number | null;
  timeHref: string | null;
  certificate: ParcoursCertificate | null;
  notice?: string | undefined;
  /** Sections other capabilities add (registered fragments), shown before the certificate. */
  extra?: SafeHtml[];
}

/** "1 h 05", "45 min": how the learner reads a duration (the one style of src/common/paris-time.ts). */
export function formatMinutes(totalMinutes: number): string {
  return formatDuration(Math.round(totalMinutes) * 60);
}

/**
 * "Mon parcours": the learner's modules week by week with their status and time, one "what next" button,
 * their time against the planned duration, and their certificate.
 */
export function renderParcoursPage(o: ParcoursPageOptions): string {
  const all = o.weeks.flatMap((w) => w.modules);
  const done = all.filter((m) => m.status === 'done').length;
  const next = all.find((m) => m.status === 'started') ?? all.find((m) => m.status === 'todo') ?? null;
  const minutes = o.totalSeconds === null ? null : Math.floor(o.totalSeconds / 60);
  const nextButton = next
    ? html`<p><a class="button" id="parcours-suivant" href="${next.href}">${next.status === 'started' ? 'Reprendre' : all.some((m) => m.status !== 'todo') ? 'Continuer avec' : 'Commencer par'} : ${next.title}</a></p>`
    : o.certificate?.pdfHref
      ? html`<p><a class="button" id="parcours-suivant" href="${o.certificate.pdfHref}">Télécharger mon certificat</a></p>`
      : o.certificate
        ? html`<p><a class="button" id="parcours-suivant" href="${o.certificate.pageHref}">Voir mon certificat</a></p>`
        : html`<p id="parcours-suivant">Vous avez terminé tous vos modules.</p>`;
  const certificate = o.certificate
    ? o.certificate.pdfHref
      ? html`<p>Votre certificat de réalisation est délivré. <a href="${o.certificate.pdfHref}">Télécharger le certificat (PDF)</a> · <a href="${o.certificate.pageHref}">Détails</a></p>`
      : html`<p>Votre certificat sera délivré quand il ne manquera plus rien. Il manque encore :</p>
<ul>${o.certificate.missing.map((m) => html`<li>${m}</li>`)}</ul>
<p><a href="${o.certificate.pageHref}">Voir la page du certificat</a></p>`
    : html`<p class="muted">Le certificat n’est pas proposé dans ce cours.</p>`;
  const body = html`${o.notice ? html`<div class="box notice" role="status">${o.notice}</div>` : ''}
<p class="kicker">${o.trackTitle}${o.fundName ? ` · ${o.fundName}` : ''}</p>
<h1>Mon parcours</h1>
<div class="box parcours-summary">
<p><strong>Modules terminés : ${done} sur ${all.length}.</strong></p>
<p>Temps de formation enregistré : <strong>${minutes === null ? 'pas encore disponible' : formatMinutes(minutes)}</strong> sur ${formatMinutes(o.plannedMinutes)} prévues.${o.timeHref ? html` <a href="${o.timeHref}">Votre temps de connexion</a>` : ''}</p>
${nextButton}
</div>
${o.weeks.map(
  (w, wi) => html`<section class="week" aria-labelledby="semaine-${wi + 1}">
<h2 id="semaine-${wi + 1}">${w.title}</h2>
<ol class="parcours">${w.modules.map(
    (m) => html`<li class="parcours-module" data-status="${m.status}" data-module-id="${m.id}">
<a href="${m.href}">${m.title}</a>
<span class="muted">${m.themeTitle} · environ ${m.nominalMinutes} min</span>
<span class="status status-${m.status}">${m.status === 'done' ? html`<span aria-hidden="true">✓ </span>` : ''}${STATUS_LABELS[m.status]}${m.creditedSeconds !== null && m.creditedSeconds > 0 ? ` · ${formatMinutes(Math.floor(m.creditedSeconds / 60))} enregistrées` : ''}</span>
</li>`,
  )}</ol>
</section>`,
)}
${o.extra ?? []}
<section aria-labelledby="certificat"><h2 id="certificat">Mon certificat</h2>${certificate}</section>
<div class="actions"><a href="${withToken('/catalog/profile', o.session.token)}">Voir ou corriger mon profil</a></div>`;
  return catalogPage({
    title: 'Mon parcours',
    body,
    session: o.session,
    bodyData: { 'emargement-page': 'parcours' },
  });
}

// ───────────────────────────── Course progress by week (course team, parcours link) ─────────────────────────────

export interface CourseWeekProgress {
  title: string;
  done: number;
  started: number;
  notStarted: number;
}

export function renderCourseProgressByWeek(weeks: readonly CourseWeekProgress[], learners: number): SafeHtml {
  if (learners === 0) return html`<p>Aucun apprenant n’a encore ouvert son parcours dans ce cours.</p>`;
  return html`<table class="weeks">
<caption>Progression du cours par semaine (${learners} apprenant${learners > 1 ? 's' : ''} avec un profil)</caption>
<thead><tr><th scope="col">Semaine</th><th scope="col">Semaine terminée</th><th scope="col">En cours</th><th scope="col">Pas commencée</th></tr></thead>
<tbody>${weeks.map((w) => html`<tr><th scope="row">${w.title}</th><td>${w.done}</td><td>${w.started}</td><td>${w.notStarted}</td></tr>`)}</tbody>
</table>`;
}
