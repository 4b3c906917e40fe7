import { escapeHtml, html, raw, type SafeHtml, script } from '../../http/html.js';
import { inlineMarkdown, markdown } from '../markdown.js';
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
} from '../model.js';
import { type ProgressState, progressOf, scoreQuiz } from '../rules.js';
import type { QuizAnswersRecord } from '../tables.js';
import { catalogPage, type PageSession, withToken } from '../views.js';

/** The module page's script (blocks seen, quiz), at a content-hashed URL cached for good. */
const MODULE_SCRIPT = script('catalog-module', new URL('../assets/module.js', import.meta.url));

/** The module page: its blocks (video, tutorial, testimonial, activity, quiz), progress and glossary. */

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
${MODULE_SCRIPT}`;

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
