import { escapeHtml } from '../http/html.js';

/**
 * Pure rules of the funds' weekly digest: which week it covers, who may receive it, and its text.
 * No clock, no I/O. The digest says, for one fund, who registered, who got their certificate, and who
 * has stopped (no activity for INACTIVE_DAYS days) during the last complete week.
 */

export const INACTIVE_DAYS = 14;
/** Names listed per section; beyond, the digest gives the count and points to the portal. */
export const LIST_LIMIT = 30;

const DAY_MS = 86_400_000;

export interface DigestWeek {
  /** Monday (Paris) of the ISO week covered, `YYYY-MM-DD`, and the Sunday that ends it. */
  monday: string;
  sunday: string;
  /** Instants: Monday 00:00 Paris (inclusive) to the next Monday 00:00 Paris (exclusive). */
  startMs: number;
  endMs: number;
}

/**
 * The last complete ISO week (Paris) before `nowMs`. `mondayOf` gives the Monday of a Paris day and
 * `dayStartMs` the instant a Paris day starts (the exports' date rules, passed in to keep this pure).
 */
export function digestWeek(
  today: string,
  mondayOf: (day: string) => string,
  dayStartMs: (day: string) => number,
): DigestWeek {
  const thisMonday = mondayOf(today);
  const monday = shiftDay(thisMonday, -7);
  return {
    monday,
    sunday: shiftDay(thisMonday, -1),
    startMs: dayStartMs(monday),
    endMs: dayStartMs(thisMonday),
  };
}

export function shiftDay(day: string, days: number): string {
  const [y, m, d] = day.split('-').map(Number) as [number, number, number];
  return new Date(Date.UTC(y, m - 1, d + days)).toISOString().slice(0, 10);
}

/** The window in which a learner's last activity makes them "newly inactive" in the week covered. */
export function inactivityWindow(week: DigestWeek): { fromMs: number; toMs: number } {
  return { fromMs: week.startMs - INACTIVE_DAYS * DAY_MS, toMs: week.endMs - INACTIVE_DAYS * DAY_MS };
}

const ADDRESS = /^[^\s<>@",;]+@[^\s<>@",;]+\.[^\s<>@",;]+$/;

/** Portal usernames are e-mail addresses for fund staff; one that is not cannot receive the digest. */
export function recipientOf(username: string): string | null {
  return ADDRESS.test(username) ? username : null;
}

export interface DigestLearner {
  familyName: string;
  givenName: string;
  companyName: string;
  idcc: string | null;
  /** Paris day of the event (registration, certificate, last activity), `dd/mm/yyyy`. */
  day: string;
}

export interface DigestContent {
  fundName: string;
  displayName: string;
  /** `dd/mm/yyyy` */
  from: string;
  to: string;
  registrations: DigestLearner[];
  certificates: DigestLearner[];
  newlyInactive: DigestLearner[];
  /** Every learner of the fund without activity for INACTIVE_DAYS days and without a certificate. */
  inactiveTotal: number;
  portalUrl: string;
}

export interface DigestMessage {
  subject: string;
  text: string;
  html: string;
}

const plural = (n: number, one: string, many: string) => `${n} ${n > 1 ? many : one}`;

function line(l: DigestLearner): string {
  return `${l.givenName} ${l.familyName} — ${l.companyName}${l.idcc ? ` (IDCC ${l.idcc})` : ''}, le ${l.day}`;
}

interface Section {
  title: string;
  empty: string;
  learners: DigestLearner[];
}

function sections(c: DigestContent): Section[] {
  return [
    {
      title: `Nouvelles inscriptions : ${c.registrations.length}`,
      empty: 'Aucune nouvelle inscription cette semaine.',
      learners: c.registrations,
    },
    {
      title: `Attestations délivrées : ${c.certificates.length}`,
      empty: 'Aucune attestation délivrée cette semaine.',
      learners: c.certificates,
    },
    {
      title: `Sans activité depuis ${INACTIVE_DAYS} jours (devenus inactifs cette semaine) : ${c.newlyInactive.length}`,
      empty: `Personne n’est devenu inactif cette semaine.`,
      learners: c.newlyInactive,
    },
  ];
}

/** The digest as plain text and simple HTML, in French, for one fund and week. */
export function composeDigest(c: DigestContent): DigestMessage {
  const subject = `Émargement — ${c.fundName} : résumé de la semaine du ${c.from} au ${c.to}`;
  const intro = `Bonjour ${c.displayName},\n\nVoici ce qui s’est passé pour les apprenants de ${c.fundName} du ${c.from} au ${c.to}.`;
  const total = `En tout, ${plural(c.inactiveTotal, 'apprenant n’a', 'apprenants n’ont')} aucune activité depuis au moins ${INACTIVE_DAYS} jours et pas encore d’attestation.`;
  const footer = `Détails, entonnoir et exports : ${c.portalUrl}/portal/entonnoir\nVous recevez ce courriel parce que vous l’avez demandé sur le portail. Pour ne plus le recevoir : ${c.portalUrl}/portal/resume-hebdo`;
  const textSections = sections(c).map((s) => {
    const shown = s.learners.slice(0, LIST_LIMIT).map((l) => `- ${line(l)}`);
    const more =
      s.learners.length > LIST_LIMIT ? [`- et ${s.learners.length - LIST_LIMIT} autres (voir le portail)`] : [];
    return [s.title, ...(s.learners.length === 0 ? [s.empty] : [...shown, ...more])].join('\n');
  });
  const text = [intro, ...textSections, total, footer].join('\n\n');
  const htmlSections = sections(c).map((s) => {
    const items = s.learners
      .slice(0, LIST_LIMIT)
      .map((l) => `<li>${escapeHtml(line(l))}</li>`)
      .join('');
    const more =
      s.learners.length > LIST_LIMIT ? `<li>et ${s.learners.length - LIST_LIMIT} autres (voir le portail)</li>` : '';
    return `<h2>${escapeHtml(s.title)}</h2>${s.learners.length === 0 ? `<p>${escapeHtml(s.empty)}</p>` : `<ul>${items}${more}</ul>`}`;
  });
  const html = `<!doctype html><html lang="fr"><head><meta charset="utf-8"><title>${escapeHtml(subject)}</title></head><body>
<p>${escapeHtml(`Bonjour ${c.displayName},`)}</p>
<p>${escapeHtml(`Voici ce qui s’est passé pour les apprenants de ${c.fundName} du ${c.from} au ${c.to}.`)}</p>
${htmlSections.join('\n')}
<p>${escapeHtml(total)}</p>
<p><a href="${escapeHtml(`${c.portalUrl}/portal/entonnoir`)}">Détails, entonnoir et exports sur le portail</a></p>
<p>Vous recevez ce courriel parce que vous l’avez demandé sur le portail. <a href="${escapeHtml(`${c.portalUrl}/portal/resume-hebdo`)}">Ne plus le recevoir</a>.</p>
</body></html>`;
  return { subject, text, html };
}
