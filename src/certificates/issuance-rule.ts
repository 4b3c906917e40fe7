import { formatDuration } from '../common/paris-time.js';

/** The issuance rule of a course and the eligibility it gives. Pure. */

export type ModulesRequirement = 'none' | 'sector' | 'all';

export interface IssuanceRule {
  /** Which modules must be completed: none, every sector-trunk module, or every module. */
  modulesRequired: ModulesRequirement;
  /** Least credited time (modules + estimated common trunk), in minutes; null = no time condition. */
  minCreditedMinutes: number | null;
  /** Issue as soon as the rule is met, without waiting for the learner's request. */
  autoIssue: boolean;
  /**
   * The planned duration printed when the learner's programme does not give one; certificates print the
   * sum of the nominal durations of the learner's modules (docs/programme.md).
   */
  plannedMinutes: number;
  /** The session's dates, when the course has fixed ones; otherwise first and last activity. */
  sessionStart: string | null;
  sessionEnd: string | null;
}

export const DEFAULT_RULE: IssuanceRule = Object.freeze({
  modulesRequired: 'sector',
  minCreditedMinutes: null,
  autoIssue: true,
  plannedMinutes: 240,
  sessionStart: null,
  sessionEnd: null,
});

/** A rule without any condition would certify a learner who never came: refuse it. */
export function ruleProblems(rule: IssuanceRule): string[] {
  const problems: string[] = [];
  if (rule.modulesRequired === 'none' && (rule.minCreditedMinutes === null || rule.minCreditedMinutes <= 0)) {
    problems.push('La règle doit exiger des modules terminés, un temps minimum, ou les deux.');
  }
  if (rule.minCreditedMinutes !== null && (!Number.isInteger(rule.minCreditedMinutes) || rule.minCreditedMinutes < 0)) {
    problems.push('Le temps minimum doit être un nombre entier de minutes.');
  }
  if (!Number.isInteger(rule.plannedMinutes) || rule.plannedMinutes <= 0) {
    problems.push('La durée prévue doit être un nombre entier de minutes, plus grand que zéro.');
  }
  if ((rule.sessionStart === null) !== (rule.sessionEnd === null)) {
    problems.push('Indiquez les deux dates de la session, ou aucune.');
  } else if (rule.sessionStart !== null && rule.sessionEnd !== null && rule.sessionStart > rule.sessionEnd) {
    problems.push('La date de fin de session est avant la date de début.');
  }
  return problems;
}

/**
 * The rule in plain French, for the course-team page and "Mon parcours": what completion it requires,
 * the least time, and whether the certificate comes by itself.
 */
export function describeIssuanceRule(rule: IssuanceRule, programme?: { common: number; sector: number }): string {
  const parts: string[] = [];
  if (rule.modulesRequired === 'all') {
    parts.push(
      programme
        ? `les ${programme.common + programme.sector} modules du parcours de l’apprenant terminés (tronc commun et modules de son secteur)`
        : 'tous les modules du parcours de l’apprenant terminés (tronc commun et modules de son secteur)',
    );
  } else if (rule.modulesRequired === 'sector') {
    parts.push(
      programme
        ? `les ${programme.sector} modules de son secteur terminés (semaines du tronc sectoriel)`
        : 'tous les modules de son secteur terminés',
    );
  }
  if (rule.minCreditedMinutes !== null && rule.minCreditedMinutes > 0) {
    parts.push(`au moins ${formatDuration(rule.minCreditedMinutes * 60)} de temps de formation enregistré`);
  }
  const condition = parts.length > 0 ? parts.join(', et ') : 'aucune condition (règle incomplète)';
  const how = rule.autoIssue
    ? 'Le certificat est délivré automatiquement dès que la règle est remplie.'
    : 'L’apprenant demande son certificat une fois la règle remplie.';
  return `il faut ${condition}. ${how} « Modules terminés » et la durée prévue portent sur le parcours de l’apprenant (somme des durées des modules).`;
}

export interface EligibilityFacts {
  modules: ReadonlyArray<{ trunk: 'common' | 'sector'; completed: boolean }>;
  totalCreditedSeconds: number;
}

export interface Eligibility {
  eligible: boolean;
  /** What is still missing, in plain French, for the learner's page. */
  missing: string[];
  sectorCompleted: number;
  sectorTotal: number;
  allCompleted: number;
  allTotal: number;
}

export function evaluateEligibility(rule: IssuanceRule, facts: EligibilityFacts): Eligibility {
  const sector = facts.modules.filter((m) => m.trunk === 'sector');
  const sectorCompleted = sector.filter((m) => m.completed).length;
  const allCompleted = facts.modules.filter((m) => m.completed).length;
  const missing: string[] = [];
  if (ruleProblems(rule).length > 0) missing.push('La règle de délivrance de ce cours est incomplète.');
  if (rule.modulesRequired === 'sector') {
    if (sector.length === 0) missing.push('Aucun module de votre secteur n’est encore disponible.');
    else if (sectorCompleted < sector.length)
      missing.push(
        plural(
          sector.length - sectorCompleted,
          'module de votre secteur à terminer',
          'modules de votre secteur à terminer',
        ),
      );
  }
  if (rule.modulesRequired === 'all') {
    if (facts.modules.length === 0) missing.push('Aucun module n’est encore disponible.');
    else if (allCompleted < facts.modules.length)
      missing.push(plural(facts.modules.length - allCompleted, 'module à terminer', 'modules à terminer'));
  }
  if (rule.minCreditedMinutes !== null && rule.minCreditedMinutes > 0) {
    const needed = rule.minCreditedMinutes * 60 - facts.totalCreditedSeconds;
    if (needed > 0) missing.push(`encore ${formatDuration(Math.ceil(needed / 60) * 60)} de formation`);
  }
  return {
    eligible: missing.length === 0,
    missing,
    sectorCompleted,
    sectorTotal: sector.length,
    allCompleted,
    allTotal: facts.modules.length,
  };
}

function plural(n: number, one: string, many: string): string {
  return `${n} ${n > 1 ? many : one}`;
}
