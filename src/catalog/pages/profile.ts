import type { LaunchSession } from '../../lti/index.js';
import { findLearner, type LearnerIdentity } from '../repository/launch-context.js';
import { findProfile, type ProfileRow, upsertProfile } from '../repository/profiles.js';
import type { CatalogSnapshot } from '../repository/snapshot.js';
import {
  checkEligibility,
  ONBOARDING_FIELDS,
  type OnboardingInput,
  splitFullName,
  validateOnboarding,
} from '../rules.js';
import { type CatalogContext, type Page, type PageRequest, page } from '../runtime.js';
import type { ProfileAuthorRole } from '../tables.js';
import { renderProfileForm } from '../views/profile.js';
import { fundChoices, pageSession } from './common.js';

type FieldErrors = Partial<Record<keyof OnboardingInput, string>>;
type BackLink = { href: string; label: string };

/** The form fields as typed (missing ones empty). */
export function profileInput(body: Partial<Record<keyof OnboardingInput, unknown>>): OnboardingInput {
  const out = {} as OnboardingInput;
  for (const f of ONBOARDING_FIELDS) out[f] = typeof body[f] === 'string' ? (body[f] as string) : '';
  return out;
}

function profileValues(p: ProfileRow): OnboardingInput {
  return {
    civility: p.civility,
    familyName: p.familyName,
    givenName: p.givenName,
    companyName: p.companyName,
    siret: p.companySiret,
    headcountBand: p.headcountBand,
    idcc: p.idcc ?? '',
    fund: p.fundSlug,
  };
}

/** The learner's first form: their names from the LMS, the link's fund when it fixes one. */
export async function onboardingPage(
  ctx: CatalogContext,
  session: LaunchSession,
  token: string,
  fixedFund: string | null,
  state: {
    values?: OnboardingInput;
    errors?: FieldErrors;
    refusal?: string;
    status?: number;
    /** The learner as the caller has just read them (null: not found); read here when undefined. */
    learner?: LearnerIdentity | null;
  } = {},
  snapshot?: CatalogSnapshot,
): Promise<Page> {
  const { funds, branches } = await fundChoices(ctx, snapshot);
  let values = state.values;
  if (!values) {
    const learner = state.learner !== undefined ? state.learner : await findLearner(ctx.db, session.learnerId);
    const names = splitFullName({
      name: learner?.name,
      given_name: learner?.givenName,
      family_name: learner?.familyName,
    });
    values = { ...profileInput({}), givenName: names.givenName, familyName: names.familyName, fund: fixedFund ?? '' };
  }
  const fixed = fixedFund ? (funds.find((f) => f.slug === fixedFund) ?? null) : null;
  return page(
    renderProfileForm({
      mode: 'onboarding',
      action: '/catalog/onboarding',
      session: pageSession(ctx, session, token),
      values,
      errors: state.errors,
      refusal: state.refusal,
      funds,
      branches,
      fixedFund: fixed,
    }),
    state.status ?? 200,
  );
}

/** The learner's own profile form, filled from what is stored; null without a profile. */
export async function ownProfilePage(
  ctx: CatalogContext,
  session: LaunchSession,
  token: string,
  backLink: BackLink,
): Promise<Page | null> {
  const profile = await findProfile(ctx.db, session.learnerId);
  if (!profile) return null;
  const { funds, branches } = await fundChoices(ctx);
  return page(
    renderProfileForm({
      mode: 'profile',
      action: '/catalog/profile',
      session: pageSession(ctx, session, token),
      values: profileValues(profile),
      funds,
      branches,
      backLink,
    }),
  );
}

/** A learner's profile as the course team sees it (their LMS names when they have none yet). */
export async function learnerProfilePage(
  ctx: CatalogContext,
  session: LaunchSession,
  token: string,
  learner: { id: string; name: string | null; givenName: string | null; familyName: string | null },
  backLink: BackLink,
): Promise<Page> {
  const profile = await findProfile(ctx.db, learner.id);
  const names = splitFullName({
    name: learner.name,
    given_name: learner.givenName,
    family_name: learner.familyName,
  });
  const { funds, branches } = await fundChoices(ctx);
  return page(
    renderProfileForm({
      mode: 'course_team',
      action: `/catalog/course/learners/${learner.id}/profile`,
      session: pageSession(ctx, session, token),
      values: profile ? profileValues(profile) : { ...profileInput({}), ...names },
      funds,
      branches,
      learnerLabel: profile ? `${profile.givenName} ${profile.familyName}` : (learner.name ?? 'l’apprenant'),
      backLink,
    }),
  );
}

/** Validates and saves a profile; answers with the form again when something is wrong or refused. */
export async function saveProfileForm(
  ctx: CatalogContext,
  request: PageRequest,
  args: {
    session: LaunchSession;
    token: string;
    learnerId: string;
    body: Partial<Record<keyof OnboardingInput, unknown>>;
    mode: 'onboarding' | 'profile' | 'course_team';
    action: string;
    fixedFund: string | null;
    learnerLabel?: string;
    backLink?: BackLink;
  },
): Promise<{ saved: true } | { saved: false; page: Page }> {
  const values = profileInput(args.body);
  const { funds, branches } = await fundChoices(ctx);
  const fixed = args.fixedFund ? (funds.find((f) => f.slug === args.fixedFund) ?? null) : null;
  const render = (status: number, extra: { errors?: FieldErrors; refusal?: string }): Page =>
    page(
      renderProfileForm({
        mode: args.mode,
        action: args.action,
        session: pageSession(ctx, args.session, args.token),
        values,
        errors: extra.errors,
        refusal: extra.refusal,
        funds,
        branches,
        fixedFund: fixed,
        learnerLabel: args.learnerLabel,
        backLink: args.backLink,
      }),
      status,
    );
  const result = validateOnboarding(values, { funds, branches, fixedFund: fixed?.slug ?? null });
  if (!result.ok) {
    request.log.info({ fields: Object.keys(result.errors), mode: args.mode }, 'profile form refused: validation');
    return { saved: false, page: render(422, { errors: result.errors }) };
  }
  const eligibility = checkEligibility(result.profile);
  if (!eligibility.eligible) {
    request.log.info({ reason: eligibility.reason, mode: args.mode }, 'profile refused: not eligible');
    return { saved: false, page: render(200, { refusal: eligibility.message }) };
  }
  await upsertProfile(ctx.db, args.learnerId, result.profile, {
    learnerId: args.session.learnerId,
    role: args.session.role as ProfileAuthorRole,
  });
  request.log.info({ mode: args.mode, fund: result.profile.fundSlug, byRole: args.session.role }, 'profile saved');
  return { saved: true };
}

/** After a save: the form again, filled from what is now stored, with a confirmation. */
export async function savedProfilePage(
  ctx: CatalogContext,
  args: {
    session: LaunchSession;
    token: string;
    learnerId: string;
    mode: 'profile' | 'course_team';
    action: string;
    notice: string;
    backLink: BackLink;
  },
): Promise<Page> {
  const profile = (await findProfile(ctx.db, args.learnerId)) as ProfileRow;
  const { funds, branches } = await fundChoices(ctx);
  return page(
    renderProfileForm({
      mode: args.mode,
      action: args.action,
      session: pageSession(ctx, args.session, args.token),
      values: profileValues(profile),
      notice: args.notice,
      funds,
      branches,
      learnerLabel: args.mode === 'course_team' ? `${profile.givenName} ${profile.familyName}` : undefined,
      backLink: args.backLink,
    }),
  );
}
