import { laPosteSiretValid, luhnValid } from '../common/siret.js';
import type { Block, ModuleManifest, QuizBlock } from './model.js';
import type { Civility, HeadcountBand } from './tables.js';

// ───────────────────────────── SIRET ─────────────────────────────

export { LA_POSTE_SIREN, luhnValid } from '../common/siret.js';

/** Spaces, dots and dashes are how people copy a SIRET from a payslip; they carry no meaning. */
export function normalizeSiret(input: string): string {
  return input.replace(/[\s.\u00a0\u202f-]/g, '');
}

export type SiretCheck =
  | { ok: true; siret: string }
  | { ok: false; reason: 'empty' | 'format' | 'key'; message: string };

export function checkSiret(input: string): SiretCheck {
  const siret = normalizeSiret(input);
  if (siret === '') return { ok: false, reason: 'empty', message: 'Indiquez le numéro SIRET de votre entreprise.' };
  if (!/^\d{14}$/.test(siret)) {
    return {
      ok: false,
      reason: 'format',
      message: `Le numéro SIRET compte 14 chiffres (vous en avez saisi ${siret.replace(/\D/g, '').length}${/\D/.test(siret) ? ', avec des caractères qui ne sont pas des chiffres' : ''}).`,
    };
  }
  const keyOk = luhnValid(siret) || laPosteSiretValid(siret);
  if (!keyOk) {
    return {
      ok: false,
      reason: 'key',
      message:
        'Ce numéro SIRET n’existe pas : un chiffre est sans doute mal recopié. Vérifiez-le sur une fiche de paie.',
    };
  }
  return { ok: true, siret };
}

// ───────────────────────────── Eligibility ─────────────────────────────

export const HEADCOUNT_BANDS: readonly { value: HeadcountBand; label: string }[] = [
  { value: '0-9', label: 'Moins de 10 salariés' },
  { value: '10-49', label: 'De 10 à 49 salariés' },
  { value: '50-249', label: 'De 50 à 249 salariés' },
  { value: '250+', label: '250 salariés ou plus' },
];

/** The programme is for TPE-PME: companies with fewer than 250 employees. */
export const MAX_HEADCOUNT_EXCLUSIVE = 250;

export type Eligibility = { eligible: true } | { eligible: false; reason: 'company_too_large'; message: string };

export function checkEligibility(input: { headcountBand: HeadcountBand }): Eligibility {
  if (input.headcountBand === '250+') {
    return {
      eligible: false,
      reason: 'company_too_large',
      message: `Cette formation est réservée aux TPE et PME, c’est-à-dire aux entreprises de moins de ${MAX_HEADCOUNT_EXCLUSIVE} salariés. Les fonds qui la financent l’ont décidé ainsi : une entreprise de ${MAX_HEADCOUNT_EXCLUSIVE} salariés ou plus ne peut pas y être inscrite.`,
    };
  }
  return { eligible: true };
}

// ───────────────────────────── Onboarding form ─────────────────────────────

export const CIVILITIES: readonly { value: Civility; label: string }[] = [
  { value: 'madame', label: 'Madame' },
  { value: 'monsieur', label: 'Monsieur' },
  { value: 'non_precise', label: 'Je préfère ne pas le préciser' },
];

/** What the learner typed, as strings, exactly as sent back to them when something is wrong. */
export interface OnboardingInput {
  civility: string;
  familyName: string;
  givenName: string;
  companyName: string;
  siret: string;
  headcountBand: string;
  idcc: string;
  fund: string;
}

export const ONBOARDING_FIELDS: readonly (keyof OnboardingInput)[] = [
  'civility',
  'familyName',
  'givenName',
  'companyName',
  'siret',
  'headcountBand',
  'idcc',
  'fund',
];

export interface ValidProfile {
  civility: Civility;
  familyName: string;
  givenName: string;
  companyName: string;
  siret: string;
  headcountBand: HeadcountBand;
  idcc: string | null;
  fundSlug: string;
}

export interface OnboardingContext {
  funds: readonly { slug: string; name: string }[];
  branches: readonly { idcc: string; fundSlug: string }[];
  /** Set when the course team fixed the fund of the link (custom `fund=`): the learner cannot pick another. */
  fixedFund?: string | null;
}

export type OnboardingResult =
  | { ok: true; profile: ValidProfile }
  | { ok: false; errors: Partial<Record<keyof OnboardingInput, string>> };

const MAX_NAME = 100;
const MAX_COMPANY = 200;

// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this strips.
const CONTROL_CHARS = /[\u0000-\u001f\u007f]/g;

function cleanText(value: string): string {
  // Control characters never belong in a name; collapsing spaces keeps certificates tidy.
  return value.replace(CONTROL_CHARS, ' ').replace(/\s+/g, ' ').trim();
}

export function validateOnboarding(input: OnboardingInput, ctx: OnboardingContext): OnboardingResult {
  const errors: Partial<Record<keyof OnboardingInput, string>> = {};

  const civility = CIVILITIES.find((c) => c.value === input.civility)?.value;
  if (!civility) errors.civility = 'Choisissez une civilité.';

  const familyName = cleanText(input.familyName);
  if (familyName === '') errors.familyName = 'Indiquez votre nom.';
  else if (familyName.length > MAX_NAME) errors.familyName = `Le nom ne doit pas dépasser ${MAX_NAME} caractères.`;

  const givenName = cleanText(input.givenName);
  if (givenName === '') errors.givenName = 'Indiquez votre prénom.';
  else if (givenName.length > MAX_NAME) errors.givenName = `Le prénom ne doit pas dépasser ${MAX_NAME} caractères.`;

  const companyName = cleanText(input.companyName);
  if (companyName === '') errors.companyName = 'Indiquez le nom de l’entreprise qui vous emploie.';
  else if (companyName.length > MAX_COMPANY) {
    errors.companyName = `Le nom de l’entreprise ne doit pas dépasser ${MAX_COMPANY} caractères.`;
  }

  const siret = checkSiret(input.siret);
  if (!siret.ok) errors.siret = siret.message;

  const headcountBand = HEADCOUNT_BANDS.find((b) => b.value === input.headcountBand)?.value;
  if (!headcountBand) errors.headcountBand = 'Choisissez le nombre de salariés de l’entreprise.';

  const fundName = (slug: string) => ctx.funds.find((f) => f.slug === slug)?.name ?? slug;
  let idcc: string | null = null;
  let branchFund: string | null = null;
  const idccInput = input.idcc.trim();
  if (idccInput !== '') {
    const branch = ctx.branches.find((b) => b.idcc === idccInput);
    if (!branch) errors.idcc = 'Choisissez une convention collective dans la liste, ou « Je ne sais pas ».';
    else {
      idcc = branch.idcc;
      branchFund = branch.fundSlug;
    }
  }

  let fundSlug: string | null = null;
  const fundInput = ctx.fixedFund ?? input.fund.trim();
  if (fundInput !== '') {
    if (!ctx.funds.some((f) => f.slug === fundInput)) errors.fund = 'Choisissez un fonds dans la liste.';
    else fundSlug = fundInput;
  }
  if (branchFund !== null) {
    if (fundSlug !== null && fundSlug !== branchFund) {
      errors.idcc = `Cette convention collective relève de ${fundName(branchFund)}, pas de ${fundName(fundSlug)}. Corrigez l’un des deux choix, ou choisissez « Je ne sais pas ».`;
    } else fundSlug = branchFund;
  }
  if (fundSlug === null && errors.fund === undefined && errors.idcc === undefined) {
    errors.fund = 'Choisissez le fonds de formation (OPCO) de votre entreprise, ou sa convention collective.';
  }

  if (Object.keys(errors).length > 0) return { ok: false, errors };
  return {
    ok: true,
    profile: {
      civility: civility as Civility,
      familyName,
      givenName,
      companyName,
      siret: (siret as { siret: string }).siret,
      headcountBand: headcountBand as HeadcountBand,
      idcc,
      fundSlug: fundSlug as string,
    },
  };
}

/**
 * Open edX shares only the full `name` (when PII sharing is on), no given/family split: the first word
 * is taken as the given name and the rest as the family name, for the learner to correct if needed.
 */
export function splitFullName(claims: {
  name?: string | null;
  given_name?: string | null;
  family_name?: string | null;
}): {
  givenName: string;
  familyName: string;
} {
  const given = claims.given_name?.trim() ?? '';
  const family = claims.family_name?.trim() ?? '';
  if (given || family) return { givenName: given, familyName: family };
  const full = cleanText(claims.name ?? '');
  const space = full.indexOf(' ');
  if (space < 0) return { givenName: full, familyName: '' };
  return { givenName: full.slice(0, space), familyName: full.slice(space + 1) };
}

// ───────────────────────────── Launch routing ─────────────────────────────

/** What a resource link asks for, read from its custom parameters (Studio or deep linking). */
export interface LinkTarget {
  module: string | null;
  theme: string | null;
  fund: string | null;
  track: string | null;
  /** `view=parcours`: the learner's programme ("Mon parcours"), whatever else the link says. */
  view: string | null;
}

export function parseLinkTarget(custom: Readonly<Record<string, unknown>> | null | undefined): LinkTarget {
  const get = (key: string): string | null => {
    const v = custom?.[key];
    if (typeof v !== 'string') return null;
    const t = v.trim();
    // An unsubstituted LTI variable such as "$Context.id" means "not set".
    return t === '' || t.startsWith('$') ? null : t;
  };
  return { module: get('module'), theme: get('theme'), fund: get('fund'), track: get('track'), view: get('view') };
}

/**
 * A link that shows "Mon parcours": `view=parcours`, or a link with neither `module=` nor `theme=` (what a
 * course team gets when it adds the tool to a unit without custom parameters).
 */
export function isParcoursTarget(target: LinkTarget): boolean {
  return target.view === 'parcours' || (target.module === null && target.theme === null);
}

export interface RoutingModule {
  id: string;
  trackId: string;
  theme: string;
  /** null: common trunk. */
  fund: string | null;
  branches: readonly string[];
  /** Place in its theme: 1 for module.yaml, N for module-N.yaml. */
  position: number;
}

export interface RoutingTheme {
  trackId: string;
  slug: string;
  trunk: 'common' | 'sector';
  /** The theme's order in the track. */
  position: number;
  week: number | null;
  moduleCount: number;
}

export interface RoutingCatalog {
  modules: readonly RoutingModule[];
  themes: readonly RoutingTheme[];
  funds: readonly { slug: string }[];
}

export type RouteSource = 'link_module' | 'common_trunk' | 'link_fund' | 'profile';

export type Route =
  | {
      ok: true;
      moduleId: string;
      /** The fund the module was chosen for; null for a fixed or common-trunk module. */
      fundSlug: string | null;
      source: RouteSource;
      /** A branch variant was chosen over the fund's default module. */
      variant: boolean;
    }
  | { ok: false; reason: 'no_target' }
  | { ok: false; reason: 'unknown_module'; value: string }
  | { ok: false; reason: 'unknown_theme'; value: string }
  | { ok: false; reason: 'ambiguous_theme'; value: string }
  | { ok: false; reason: 'unknown_fund'; value: string }
  | { ok: false; reason: 'needs_fund'; theme: string }
  | { ok: false; reason: 'no_module_for_fund'; theme: string; fund: string };

export interface RoutingProfile {
  fundSlug: string;
  idcc: string | null;
}

/**
 * The injection: which module a learner sees behind a link. A fixed module (`module=`) is the same for
 * everyone. For a theme (`theme=`), the fund comes from the link (`fund=`, one course run per fund),
 * else from the learner's profile; within that fund a branch variant listing the learner's IDCC wins over
 * the fund's default module. Common-trunk themes need no fund.
 */
export function resolveModule(target: LinkTarget, profile: RoutingProfile | null, catalog: RoutingCatalog): Route {
  if (target.module !== null) {
    const m = catalog.modules.find((x) => x.id === target.module);
    if (!m) return { ok: false, reason: 'unknown_module', value: target.module };
    return { ok: true, moduleId: m.id, fundSlug: m.fund, source: 'link_module', variant: m.branches.length > 0 };
  }
  if (target.theme === null) return { ok: false, reason: 'no_target' };

  const themes = catalog.themes.filter(
    (t) => t.slug === target.theme && (target.track === null || t.trackId === target.track),
  );
  if (themes.length === 0) return { ok: false, reason: 'unknown_theme', value: target.theme };
  if (themes.length > 1) return { ok: false, reason: 'ambiguous_theme', value: target.theme };
  const theme = themes[0] as (typeof themes)[number];
  // A theme link opens the theme's first module; the page leads on to the next ones.
  const first = Math.min(
    ...catalog.modules.filter((m) => m.trackId === theme.trackId && m.theme === theme.slug).map((m) => m.position),
  );
  const inTheme = catalog.modules.filter(
    (m) => m.trackId === theme.trackId && m.theme === theme.slug && m.position === first,
  );

  if (theme.trunk === 'common') {
    const common = inTheme.find((m) => m.fund === null && m.branches.length === 0);
    if (!common) return { ok: false, reason: 'no_module_for_fund', theme: theme.slug, fund: 'common' };
    return { ok: true, moduleId: common.id, fundSlug: null, source: 'common_trunk', variant: false };
  }

  let fund: string;
  let source: RouteSource;
  if (target.fund !== null) {
    if (!catalog.funds.some((f) => f.slug === target.fund)) {
      return { ok: false, reason: 'unknown_fund', value: target.fund };
    }
    fund = target.fund;
    source = 'link_fund';
  } else if (profile !== null) {
    fund = profile.fundSlug;
    source = 'profile';
  } else {
    return { ok: false, reason: 'needs_fund', theme: theme.slug };
  }

  const ofFund = inTheme.filter((m) => m.fund === fund);
  const idcc = profile?.idcc ?? null;
  if (idcc !== null) {
    const variant = ofFund.find((m) => m.branches.includes(idcc));
    if (variant) return { ok: true, moduleId: variant.id, fundSlug: fund, source, variant: true };
  }
  const byDefault = ofFund.find((m) => m.branches.length === 0);
  if (!byDefault) return { ok: false, reason: 'no_module_for_fund', theme: theme.slug, fund };
  return { ok: true, moduleId: byDefault.id, fundSlug: fund, source, variant: false };
}

// ───────────────────────────── The learner's programme ─────────────────────────────

export interface ProgrammeEntry {
  moduleId: string;
  trackId: string;
  theme: string;
  trunk: 'common' | 'sector';
  /** Place in the theme. */
  position: number;
  /** The theme's week; null for a track without pacing. */
  week: number | null;
  /** A branch variant was chosen over the default module of this position. */
  variant: boolean;
}

/**
 * The modules a learner follows in a track, in order: for each theme (track order) and each position of
 * the theme, the common-trunk module, or their fund's module — the branch variant listing their IDCC
 * when there is one, else the fund's default. A position without a module is skipped (not yet written).
 */
export function learnerProgramme(catalog: RoutingCatalog, learner: RoutingProfile, trackId: string): ProgrammeEntry[] {
  const out: ProgrammeEntry[] = [];
  const themes = catalog.themes.filter((t) => t.trackId === trackId).sort((a, b) => a.position - b.position);
  for (const theme of themes) {
    const owner = theme.trunk === 'common' ? null : learner.fundSlug;
    const candidates = catalog.modules.filter(
      (m) => m.trackId === trackId && m.theme === theme.slug && m.fund === owner,
    );
    const positions = [...new Set(candidates.map((m) => m.position))].sort((a, b) => a - b);
    for (const position of positions) {
      const at = candidates.filter((m) => m.position === position);
      const variant =
        owner !== null && learner.idcc !== null
          ? at.find((m) => m.branches.includes(learner.idcc as string))
          : undefined;
      const chosen = variant ?? at.find((m) => m.branches.length === 0);
      if (!chosen) continue;
      out.push({
        moduleId: chosen.id,
        trackId,
        theme: theme.slug,
        trunk: theme.trunk,
        position,
        week: theme.week,
        variant: variant !== undefined,
      });
    }
  }
  return out;
}

/** The track a parcours link shows: `track=` when given, else the only track (null when ambiguous or unknown). */
export function parcoursTrack(target: LinkTarget, catalog: RoutingCatalog): string | null {
  const ids = [...new Set(catalog.themes.map((t) => t.trackId))];
  if (target.track !== null) return ids.includes(target.track) ? target.track : null;
  return ids.length === 1 ? (ids[0] as string) : null;
}

// ───────────────────────────── Completion ─────────────────────────────

export interface ProgressState {
  /** Blocks (quiz included) counted as done, in manifest order. */
  done: string[];
  total: number;
  quizAnswered: boolean;
  complete: boolean;
}

export function quizOf(manifest: Pick<ModuleManifest, 'blocks'>): QuizBlock | null {
  return (manifest.blocks.find((b) => b.type === 'quiz') as QuizBlock | undefined) ?? null;
}

/**
 * A module is complete when every block has been seen and the quiz answered (right or wrong: it is a
 * self-check). The quiz block counts as seen once answered.
 */
export function progressOf(
  manifest: Pick<ModuleManifest, 'blocks'>,
  blocksSeen: Readonly<Record<string, unknown>>,
  quizAnswered: boolean,
): ProgressState {
  const done = manifest.blocks
    .filter((b: Block) => (b.type === 'quiz' ? quizAnswered : Object.hasOwn(blocksSeen, b.id)))
    .map((b) => b.id);
  const hasQuiz = manifest.blocks.some((b) => b.type === 'quiz');
  return {
    done,
    total: manifest.blocks.length,
    quizAnswered: hasQuiz ? quizAnswered : true,
    complete: done.length === manifest.blocks.length,
  };
}

/** A block the learner can mark as seen: any but the quiz, which is done by answering it. */
export function isSeenableBlock(manifest: Pick<ModuleManifest, 'blocks'>, blockId: string): boolean {
  return manifest.blocks.some((b) => b.id === blockId && b.type !== 'quiz');
}

export type QuizScore =
  | { ok: true; correct: number; total: number; results: { correct: boolean; answer: number; explanation: string }[] }
  | { ok: false; message: string };

/** Every question must be answered with the index of one of its choices. */
export function scoreQuiz(quiz: QuizBlock, answers: readonly unknown[]): QuizScore {
  if (answers.length !== quiz.questions.length) {
    return { ok: false, message: 'Répondez à toutes les questions avant de valider.' };
  }
  const results: { correct: boolean; answer: number; explanation: string }[] = [];
  for (let i = 0; i < quiz.questions.length; i++) {
    const q = quiz.questions[i] as QuizBlock['questions'][number];
    const a = answers[i];
    if (typeof a !== 'number' || !Number.isInteger(a) || a < 0 || a >= q.choices.length) {
      return { ok: false, message: 'Répondez à toutes les questions avant de valider.' };
    }
    results.push({ correct: a === q.answer, answer: q.answer, explanation: q.explanation });
  }
  return { ok: true, correct: results.filter((r) => r.correct).length, total: results.length, results };
}
