import { html, page, type SafeHtml, stylesheet } from '../http/html.js';
import { DEMO_COURSE, DEMO_PLATFORM_NAME, type DemoUnit, type DemoUser } from './platform.js';

const STYLE = stylesheet('demo', new URL('./assets/demo.css', import.meta.url));

function bar(): SafeHtml {
  return html`<div class="demo-bar" role="note">${DEMO_PLATFORM_NAME} — développement seulement, jamais en production.
  <a href="/">Accueil d’Émargement</a> · <a href="/demo">Cours de démonstration</a></div>`;
}

export interface Persona {
  as: 'learner' | 'instructor';
  sub?: string;
  fund?: string;
}

export function personaQuery(p: Persona, unit: string): string {
  const q = new URLSearchParams({ unit, as: p.as });
  if (p.sub) q.set('sub', p.sub);
  if (p.fund) q.set('fund', p.fund);
  return q.toString();
}

export function demoHome(o: {
  units: DemoUnit[];
  funds: { slug: string; name: string }[];
  returning: { sub: string; name: string | null }[];
  added?: number;
}): string {
  const body = html`${bar()}
<main>
<h1>Essayer Émargement sans LMS</h1>
<p>Cette page joue le rôle d’Open edX : un cours dont les unités affichent Émargement dans un cadre (iframe),
lancé en LTI 1.3 comme le fait FUN MOOC (connexion OIDC initiée par la plateforme, puis envoi du jeton
d’identité signé par formulaire).</p>
${o.added !== undefined ? html`<p class="box" role="status">${o.added} contenu(s) ajouté(s) au cours par Deep Linking.</p>` : ''}
<form method="get" action="/demo/unit" class="box">
<h2>Qui êtes-vous ?</h2>
<fieldset class="choices"><legend>Rôle</legend>
<label><input type="radio" name="as" value="learner" checked> Apprenant ou apprenante</label>
<label><input type="radio" name="as" value="instructor"> Équipe pédagogique (formateur)</label>
</fieldset>
<label for="sub">Apprenant</label>
<select id="sub" name="sub">
<option value="">Nouvel apprenant (première visite)</option>
${o.returning.map((r) => html`<option value="${r.sub}">${r.name ?? r.sub} (déjà venu)</option>`)}
</select>
<label for="fund">Fonds de formation (OPCO) fixé par le lien</label>
<select id="fund" name="fund">
<option value="">Aucun : l’apprenant choisit son fonds à l’arrivée</option>
${o.funds.map((f) => html`<option value="${f.slug}">${f.name}</option>`)}
</select>
<label for="unit">Unité du cours</label>
<select id="unit" name="unit">
${o.units.map((u) => html`<option value="${u.slug}">${u.title}</option>`)}
</select>
<p><button type="submit">Ouvrir l’unité</button></p>
</form>
<div class="box">
<h2>Ajouter un contenu au cours (Deep Linking)</h2>
<p>Comme dans Studio : l’équipe pédagogique choisit un module dans Émargement, qui devient une nouvelle unité du cours.</p>
<p><a class="button" href="/demo/pick">Choisir un module</a></p>
</div>
<h2>Unités du cours « ${DEMO_COURSE.title} »</h2>
<ul>${o.units.map((u) => html`<li>${u.title} <span class="muted">${describe(u)}</span></li>`)}</ul>
</main>`;
  return page({ title: 'Plateforme de démonstration', head: STYLE, body, frameable: false });
}

function describe(u: DemoUnit): string {
  const entries = Object.entries(u.custom);
  return entries.length === 0
    ? '(sans paramètre : le parcours de l’apprenant)'
    : `(${entries.map(([k, v]) => `${k}=${v}`).join(', ')})`;
}

export function demoUnitPage(o: {
  unit: DemoUnit;
  units: DemoUnit[];
  user: DemoUser;
  persona: Persona;
  iframeSrc: string;
  heading?: string;
}): string {
  const body = html`${bar()}
<div class="demo-layout">
<nav aria-label="Sommaire du cours"><p><strong>${DEMO_COURSE.title}</strong></p>
<ol>${o.units.map(
    (u) =>
      html`<li><a href="/demo/unit?${personaQuery(o.persona, u.slug)}" ${u.slug === o.unit.slug ? html`aria-current="page"` : ''}>${u.title}</a></li>`,
  )}</ol>
<p class="muted">Connecté en tant que ${o.user.name} (${o.user.role === 'instructor' ? 'équipe pédagogique' : 'apprenant'}).</p>
<p><a href="/demo">Changer de personne</a></p></nav>
<section><h1>${o.heading ?? o.unit.title}</h1>
<iframe class="lti" id="lti-frame" title="${o.unit.title}" src="${o.iframeSrc}" allow="fullscreen; encrypted-media" allowfullscreen></iframe>
</section></div>`;
  return page({ title: o.unit.title, head: STYLE, body, frameable: false });
}

/** What the platform's authentication endpoint answers: Open edX's auto-submitted launch form. */
export function autoPostForm(action: string, fields: Record<string, string>): string {
  const body = html`<form id="lti-launch" action="${action}" method="post" enctype="application/x-www-form-urlencoded">
${Object.entries(fields).map(([k, v]) => html`<input type="hidden" name="${k}" value="${v}">`)}
<noscript><button type="submit">Continuer</button></noscript>
</form>
<script src="/demo/assets/autopost.js"></script>`;
  return page({ title: 'Lancement', body, frameable: true });
}

export function demoError(message: string): string {
  return page({
    title: 'Lancement refusé',
    body: html`<div class="box error"><h1>La plateforme de démonstration a refusé ce lancement</h1><p>${message}</p>
<p><a href="/demo" target="_top">Retour au cours de démonstration</a></p></div>`,
    frameable: true,
  });
}

export function deepLinkingDone(titles: string[]): string {
  return page({
    title: 'Contenu ajouté',
    body: html`<div class="box"><h1>Contenu ajouté au cours</h1>
<ul>${titles.map((t) => html`<li>${t}</li>`)}</ul>
<p><a href="/demo?added=${titles.length}" target="_top">Retour au cours de démonstration</a></p></div>`,
    frameable: true,
  });
}
