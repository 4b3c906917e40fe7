import type { FastifyRequest } from 'fastify';
import { html, page, type SafeHtml, stylesheet } from '../http/html.js';
import { csrfField } from './auth.js';
import { type Principal, ROLE_LABELS } from './rules.js';

/** Wider than the LMS pages: the portal shows tables. */
const PORTAL_STYLE = stylesheet('portal', new URL('./assets/portal.css', import.meta.url));

export interface NavItem {
  href: string;
  label: string;
  operatorsOnly?: boolean;
}

export const PORTAL_NAV: NavItem[] = [
  { href: '/portal/entonnoir', label: 'Entonnoir' },
  { href: '/portal/exports', label: 'Exports' },
  { href: '/portal/dossiers', label: 'N° de dossier OPCO' },
  { href: '/portal/resume-hebdo', label: 'Résumé par courriel' },
  { href: '/portal/jetons', label: 'Jetons d’API' },
  { href: '/portal/journal', label: 'Journal des téléchargements' },
  { href: '/portal/comptes', label: 'Comptes', operatorsOnly: true },
  { href: '/docs', label: 'Documentation de l’API' },
];

export function scopeLabel(principal: Principal, fundName?: string): string {
  return principal.role === 'operator'
    ? ROLE_LABELS.operator
    : `${ROLE_LABELS.fund_staff} : ${fundName ?? principal.fundSlug ?? ''}`;
}

/** Every signed-in portal page: header with the person's scope, navigation and sign-out. */
export function portalPage(options: {
  request: FastifyRequest;
  principal: Principal;
  title: string;
  current: string;
  body: SafeHtml;
  fundName?: string;
  head?: SafeHtml;
}): string {
  const { principal, request } = options;
  const items = PORTAL_NAV.filter((i) => !i.operatorsOnly || principal.role === 'operator');
  return page({
    title: options.title,
    frameable: false,
    head: html`${PORTAL_STYLE}${options.head ?? ''}`,
    body: html`<header class="portal-head">
<p><strong>Émargement — portail des fonds</strong><br>
<span class="muted">${principal.displayName} (${scopeLabel(principal, options.fundName)})</span></p>
<nav aria-label="Portail"><ul>
${items.map(
  (i) =>
    html`<li><a href="${i.href}"${i.href === options.current ? html` aria-current="page"` : ''}>${i.label}</a></li>`,
)}
<li><form method="post" action="/portal/deconnexion">${csrfField(request, principal)}<button type="submit" class="secondary">Se déconnecter</button></form></li>
</ul></nav>
</header>
${options.body}`,
  });
}

export function loginPage(options: {
  csrf: string;
  next: string;
  username?: string;
  error?: string;
  info?: string;
}): string {
  return page({
    title: 'Connexion au portail des fonds',
    frameable: false,
    head: PORTAL_STYLE,
    body: html`<h1>Connexion au portail des fonds</h1>
<p>Ce portail est réservé aux équipes des fonds de formation (OPCO) et aux opérateurs du service.</p>
${options.error ? html`<div class="alert" role="alert" id="erreur">${options.error}</div>` : ''}
${options.info ? html`<div class="notice" role="status">${options.info}</div>` : ''}
<form method="post" action="/portal/connexion" class="box"${options.error ? html` aria-describedby="erreur"` : ''}>
<input type="hidden" name="_csrf" value="${options.csrf}">
<input type="hidden" name="suite" value="${options.next}">
<label for="identifiant">Identifiant</label>
<input id="identifiant" name="identifiant" autocomplete="username" required maxlength="200" value="${options.username ?? ''}"${options.username ? '' : html` autofocus`}>
<label for="mot_de_passe">Mot de passe</label>
<input id="mot_de_passe" name="mot_de_passe" type="password" autocomplete="current-password" required maxlength="1000"${options.username ? html` autofocus` : ''}>
<p><button type="submit">Se connecter</button></p>
</form>
<p class="muted">Mot de passe oublié ? Demandez à un opérateur du service de le réinitialiser : vous recevrez un mot de passe provisoire à changer dès la connexion.</p>`,
  });
}

export function passwordPage(options: {
  request: FastifyRequest;
  principal: Principal;
  forced: boolean;
  error?: string;
  done?: boolean;
}): string {
  const { request, principal } = options;
  return portalPage({
    request,
    principal,
    title: 'Changer de mot de passe',
    current: '/portal/mot-de-passe',
    body: html`<h1>Changer de mot de passe</h1>
${options.forced ? html`<div class="alert" role="alert">Votre mot de passe est provisoire : choisissez-en un nouveau pour continuer.</div>` : ''}
${options.error ? html`<div class="alert" role="alert" id="erreur">${options.error}</div>` : ''}
${options.done ? html`<div class="notice" role="status">Votre mot de passe a été changé. Vos autres sessions ont été fermées.</div>` : ''}
<form method="post" action="/portal/mot-de-passe" class="box">
${csrfField(request, principal)}
<label for="actuel">Mot de passe actuel</label>
<input id="actuel" name="actuel" type="password" autocomplete="current-password" required maxlength="1000">
<label for="nouveau">Nouveau mot de passe</label>
<input id="nouveau" name="nouveau" type="password" autocomplete="new-password" required minlength="12" maxlength="200" aria-describedby="aide-mdp">
<p id="aide-mdp" class="muted">Au moins 12 caractères. Une phrase de plusieurs mots est facile à retenir et difficile à deviner.</p>
<label for="confirmation">Nouveau mot de passe, une deuxième fois</label>
<input id="confirmation" name="confirmation" type="password" autocomplete="new-password" required maxlength="200">
<p><button type="submit">Enregistrer le nouveau mot de passe</button></p>
</form>`,
  });
}

const dateTime = new Intl.DateTimeFormat('fr-FR', { timeZone: 'Europe/Paris', dateStyle: 'short', timeStyle: 'short' });

export function formatParis(date: Date | null | undefined): string {
  return date ? dateTime.format(date) : '—';
}

export interface TokenView {
  id: string;
  name: string;
  prefix: string;
  created_at: Date;
  expires_at: Date | null;
  last_used_at: Date | null;
  revoked_at: Date | null;
}

export function tokensPage(options: {
  request: FastifyRequest;
  principal: Principal;
  tokens: TokenView[];
  created?: { name: string; token: string };
  notice?: string;
  error?: string;
}): string {
  const { request, principal } = options;
  const state = (t: TokenView) =>
    t.revoked_at
      ? `révoqué le ${formatParis(t.revoked_at)}`
      : t.expires_at && t.expires_at.getTime() <= Date.now()
        ? 'expiré'
        : 'actif';
  return portalPage({
    request,
    principal,
    title: 'Jetons d’API',
    current: '/portal/jetons',
    body: html`<h1>Jetons d’API</h1>
<p>Un jeton permet à un script de télécharger les exports sans passer par cette page
(en-tête <code>Authorization: Bearer &lt;jeton&gt;</code>, voir la <a href="/docs">documentation de l’API</a>).
Il donne exactement les mêmes droits que votre compte. Gardez-le secret comme un mot de passe.</p>
${options.error ? html`<div class="alert" role="alert">${options.error}</div>` : ''}
${options.notice ? html`<div class="notice" role="status">${options.notice}</div>` : ''}
${
  options.created
    ? html`<div class="notice" role="status"><p><strong>Jeton « ${options.created.name} » créé.</strong>
Copiez-le maintenant : il ne sera plus jamais affiché.</p>
<p class="secret" id="nouveau-jeton">${options.created.token}</p></div>`
    : ''
}
<h2>Créer un jeton</h2>
<form method="post" action="/portal/jetons" class="box">
${csrfField(request, principal)}
<label for="nom">Nom du jeton (à quoi il sert)</label>
<input id="nom" name="nom" required maxlength="100" placeholder="Par exemple : export mensuel">
<label for="duree_jours">Validité en jours (laisser vide pour un jeton sans date de fin)</label>
<input id="duree_jours" name="duree_jours" inputmode="numeric" pattern="[0-9]*" maxlength="4">
<p><button type="submit">Créer le jeton</button></p>
</form>
<h2>Vos jetons</h2>
${
  options.tokens.length === 0
    ? html`<p>Vous n’avez encore aucun jeton.</p>`
    : html`<div class="table-wrap"><table>
<caption class="sr-only">Vos jetons d’API</caption>
<thead><tr><th scope="col">Nom</th><th scope="col">Début du jeton</th><th scope="col">Créé le</th><th scope="col">Dernier usage</th><th scope="col">Fin de validité</th><th scope="col">État</th><th scope="col"><span class="sr-only">Action</span></th></tr></thead>
<tbody>
${options.tokens.map(
  (t) => html`<tr><td>${t.name}</td><td><code>${t.prefix}…</code></td><td>${formatParis(t.created_at)}</td>
<td>${formatParis(t.last_used_at)}</td><td>${t.expires_at ? formatParis(t.expires_at) : 'aucune'}</td><td>${state(t)}</td>
<td class="row-actions">${
    t.revoked_at
      ? ''
      : html`<form method="post" action="/portal/jetons/${t.id}/revoquer">${csrfField(request, principal)}<button type="submit" class="secondary">Révoquer<span class="sr-only"> le jeton ${t.name}</span></button></form>`
  }</td></tr>`,
)}
</tbody></table></div>`
}`,
  });
}

export interface AccountView {
  id: string;
  username: string;
  display_name: string;
  role: 'operator' | 'fund_staff';
  fund_slug: string | null;
  disabled_at: Date | null;
  must_change_password: boolean;
}

export function accountsPage(options: {
  request: FastifyRequest;
  principal: Principal;
  accounts: AccountView[];
  reset?: { username: string; password: string };
  notice?: string;
}): string {
  const { request, principal } = options;
  return portalPage({
    request,
    principal,
    title: 'Comptes du portail',
    current: '/portal/comptes',
    body: html`<h1>Comptes du portail</h1>
<p>Les comptes se créent avec <code>npm run cli -- users add</code>. Ici, un opérateur peut réinitialiser un mot de passe ou suspendre un compte.</p>
${options.notice ? html`<div class="notice" role="status">${options.notice}</div>` : ''}
${
  options.reset
    ? html`<div class="notice" role="status"><p>Mot de passe provisoire de <strong>${options.reset.username}</strong>,
à transmettre par un canal sûr (il ne sera plus affiché ; il devra être changé à la connexion) :</p>
<p class="secret">${options.reset.password}</p></div>`
    : ''
}
<div class="table-wrap"><table>
<caption class="sr-only">Comptes du portail</caption>
<thead><tr><th scope="col">Identifiant</th><th scope="col">Nom</th><th scope="col">Rôle</th><th scope="col">Fonds</th><th scope="col">État</th><th scope="col">Actions</th></tr></thead>
<tbody>
${options.accounts.map(
  (
    a,
  ) => html`<tr><td>${a.username}</td><td>${a.display_name}</td><td>${ROLE_LABELS[a.role]}</td><td>${a.fund_slug ?? 'tous'}</td>
<td>${a.disabled_at ? 'suspendu' : a.must_change_password ? 'mot de passe provisoire' : 'actif'}</td>
<td class="row-actions">
<form method="post" action="/portal/comptes/${a.id}/reinitialiser">${csrfField(request, principal)}<button type="submit" class="secondary">Réinitialiser le mot de passe<span class="sr-only"> de ${a.username}</span></button></form>
${
  a.id === principal.userId
    ? ''
    : html`<form method="post" action="/portal/comptes/${a.id}/${a.disabled_at ? 'reactiver' : 'suspendre'}">${csrfField(request, principal)}<button type="submit" class="secondary">${a.disabled_at ? 'Réactiver' : 'Suspendre'}<span class="sr-only"> ${a.username}</span></button></form>`
}
</td></tr>`,
)}
</tbody></table></div>`,
  });
}

export interface AuditView {
  at: Date;
  actor_username: string;
  actor_fund_slug: string | null;
  via: string;
  action: string;
  details: Record<string, unknown>;
  row_count: number | null;
  status: string;
}

const STATUS_LABELS: Record<string, string> = {
  started: 'en cours',
  completed: 'terminé',
  failed: 'interrompu',
  done: 'fait',
};

const EXPORT_LABELS: Record<string, string> = { summary: 'synthèse', connections: 'journal des connexions' };

const VIA_LABELS: Record<string, string> = {
  session: 'portail',
  token: 'API (jeton)',
  cli: 'ligne de commande',
  signin: 'formulaire de connexion',
};

/** Audit actions shown in the journal's security table, with what a person reads for each. */
export const SECURITY_EVENT_LABELS: Readonly<Record<string, string>> = Object.freeze({
  'signin.refused': 'Connexion refusée',
  'access.denied': 'Accès refusé',
  'file_numbers.read': 'Liste des entreprises consultée',
  'token.created': 'Jeton créé',
  'token.revoked': 'Jeton révoqué',
  'account.created': 'Compte créé',
  'account.password_reset': 'Mot de passe réinitialisé',
  'account.password_changed': 'Mot de passe changé',
  'account.disabled': 'Compte suspendu',
  'account.enabled': 'Compte réactivé',
});

const SIGNIN_REASONS: Record<string, string> = {
  invalid: 'identifiant ou mot de passe incorrect',
  throttled: 'trop d’essais',
};

function describeSecurityEvent(e: AuditView): string {
  const d = e.details;
  const parts: string[] = [];
  if (e.action === 'signin.refused') {
    parts.push(`identifiant « ${String(d.username ?? '')} »`, `adresse ${String(d.ip ?? '?')}`);
    if (typeof d.reason === 'string') parts.push(SIGNIN_REASONS[d.reason] ?? d.reason);
  }
  if (e.action === 'access.denied') parts.push(`${String(d.method ?? '')} ${String(d.path ?? '')}`.trim());
  if (typeof d.fund === 'string') parts.push(`fonds ${d.fund}`);
  if (typeof d.companies === 'number') parts.push(`${d.companies} entreprise(s)`);
  if (typeof d.username === 'string' && e.action !== 'signin.refused') parts.push(`compte ${d.username}`);
  if (typeof d.prefix === 'string') parts.push(`jeton ${d.prefix}…`);
  return parts.join(' · ');
}

const FILTER_LABELS: Record<string, string> = {
  fund: 'fonds',
  courseId: 'session',
  branch: 'branche',
  from: 'du',
  to: 'au',
  status: 'statut',
};

export function describeFilter(details: Record<string, unknown>): string {
  const filter = (details.filter ?? {}) as Record<string, unknown>;
  const parts = Object.entries(filter)
    .filter(([, v]) => v !== undefined && v !== null && v !== '')
    .map(([k, v]) => `${FILTER_LABELS[k] ?? k} = ${String(v)}`);
  return parts.length ? parts.join(', ') : 'aucun filtre';
}

export function journalPage(options: {
  request: FastifyRequest;
  principal: Principal;
  entries: AuditView[];
  securityEvents?: AuditView[];
}): string {
  const { request, principal } = options;
  return portalPage({
    request,
    principal,
    title: 'Journal des téléchargements',
    current: '/portal/journal',
    body: html`<h1>Journal des téléchargements</h1>
<p>${
      principal.role === 'operator'
        ? 'Les 200 derniers téléchargements, tous fonds confondus.'
        : 'Les 200 derniers téléchargements faits par les comptes de votre fonds.'
    }</p>
<div class="table-wrap"><table>
<caption class="sr-only">Téléchargements, du plus récent au plus ancien</caption>
<thead><tr><th scope="col">Quand</th><th scope="col">Qui</th><th scope="col">Par</th><th scope="col">Quoi</th><th scope="col">Filtre</th><th scope="col" class="num">Lignes</th><th scope="col">État</th></tr></thead>
<tbody>
${options.entries.map(
  (
    e,
  ) => html`<tr><td>${formatParis(e.at)}</td><td>${e.actor_username}${e.actor_fund_slug ? ` (${e.actor_fund_slug})` : ''}</td>
<td>${VIA_LABELS[e.via] ?? e.via}</td><td>${EXPORT_LABELS[String(e.details.export)] ?? e.action} ${String(e.details.format ?? '').toUpperCase()}${e.details.variant === 'excel' ? ' pour Excel' : ''}</td>
<td>${describeFilter(e.details)}</td><td class="num">${e.row_count ?? '—'}</td><td>${STATUS_LABELS[e.status] ?? e.status}</td></tr>`,
)}
</tbody></table></div>
<h2>Événements de sécurité</h2>
<p>${
      principal.role === 'operator'
        ? 'Les 200 derniers : connexions refusées, accès refusés, consultations de la liste des entreprises, jetons et comptes.'
        : 'Les 200 derniers concernant les comptes de votre fonds.'
    }</p>
<div class="table-wrap"><table id="securite">
<caption class="sr-only">Événements de sécurité, du plus récent au plus ancien</caption>
<thead><tr><th scope="col">Quand</th><th scope="col">Qui</th><th scope="col">Par</th><th scope="col">Quoi</th><th scope="col">Détail</th></tr></thead>
<tbody>
${(options.securityEvents ?? []).map(
  (
    e,
  ) => html`<tr><td>${formatParis(e.at)}</td><td>${e.actor_username}${e.actor_fund_slug ? ` (${e.actor_fund_slug})` : ''}</td>
<td>${VIA_LABELS[e.via] ?? e.via}</td><td>${SECURITY_EVENT_LABELS[e.action] ?? e.action}</td><td>${describeSecurityEvent(e)}</td></tr>`,
)}
</tbody></table></div>`,
  });
}
