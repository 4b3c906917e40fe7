import { html, raw, type SafeHtml, script } from '../../http/html.js';
import { CIVILITIES, HEADCOUNT_BANDS, ONBOARDING_FIELDS, type OnboardingInput } from '../rules.js';
import { catalogPage, type PageSession } from '../views.js';

/** The profile form's script, at a content-hashed URL cached for good. */
const FORM_SCRIPT = script('catalog-form', new URL('../assets/form.js', import.meta.url));

/** The onboarding and profile form (learner, or course team correcting a learner). */

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
${FORM_SCRIPT}`;

  return catalogPage({ title, body, session: o.session, bodyData: { 'emargement-page': o.mode } });
}
