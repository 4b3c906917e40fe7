import { randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import { listFunds, listModules, listThemes } from '../catalog/index.js';
import type { Db } from '../db/index.js';
import { BadRequestError, ForbiddenError } from '../http/errors.js';
import type { ToolSigningKey } from './access-tokens.js';
import { findDeepLinkingLaunch } from './repository.js';
import {
  deepLinkingResponseClaims,
  type LtiResourceLinkItem,
  resourceLinkItem,
  type Selection,
  selectionKey,
} from './rules.js';

/** Deep Linking 2.0 §4.4.1: the settings a deep-linking request carries (those the tool relies on). */
export interface DeepLinkingSettings {
  deep_link_return_url: string;
  accept_types: string[];
  accept_multiple?: boolean;
  data?: string;
}

/** The settings, or why this platform cannot take what the tool places. */
export function checkDeepLinkingSettings(raw: unknown): DeepLinkingSettings {
  const s = (typeof raw === 'object' && raw !== null ? raw : {}) as Record<string, unknown>;
  const url = typeof s.deep_link_return_url === 'string' ? s.deep_link_return_url : '';
  let parsed: URL | null = null;
  try {
    parsed = new URL(url);
  } catch {
    parsed = null;
  }
  // The URL becomes a form action in our page: only http(s), never javascript: or data:.
  if (!parsed || (parsed.protocol !== 'https:' && parsed.protocol !== 'http:')) {
    throw new BadRequestError(
      'deep_linking_no_return_url',
      'La plateforme n’a pas indiqué où renvoyer votre choix : relancez l’ajout de contenu depuis Studio.',
      'deep_linking_settings.deep_link_return_url is missing or not an http(s) URL',
    );
  }
  const acceptTypes = Array.isArray(s.accept_types)
    ? s.accept_types.filter((t): t is string => typeof t === 'string')
    : [];
  if (!acceptTypes.includes('ltiResourceLink')) {
    throw new BadRequestError(
      'deep_linking_type_refused',
      'La plateforme n’accepte pas les liens vers des modules à cet endroit du cours.',
      `accept_types ${acceptTypes.join(',')} lacks ltiResourceLink`,
    );
  }
  return {
    deep_link_return_url: parsed.toString(),
    accept_types: acceptTypes,
    ...(s.accept_multiple === false ? { accept_multiple: false } : {}),
    ...(typeof s.data === 'string' ? { data: s.data } : {}),
  };
}

export interface PickerEntry {
  value: string;
  title: string;
  detail: string;
}

export interface PickerCatalogue {
  /** "Mon parcours" of each track. */
  parcours: PickerEntry[];
  /** Common-trunk themes: their modules in sequence, the same for everyone. */
  commonThemes: PickerEntry[];
  common: PickerEntry[];
  themes: PickerEntry[];
  funds: { slug: string; name: string; historicalName: string | null; modules: PickerEntry[] }[];
}

/** What a course team may place, from the catalogue (active modules only). */
export async function pickerCatalogue(db: Db): Promise<PickerCatalogue> {
  const [modules, themes, funds] = await Promise.all([listModules(db), listThemes(db), listFunds(db)]);
  const ambiguous = new Set(
    themes.filter((t, i) => themes.findIndex((u) => u.slug === t.slug) !== i).map((t) => t.slug),
  );
  const common = modules
    .filter((m) => m.fundSlug === null && m.trunk === 'common')
    .map((m) => ({
      value: `module:${m.id}`,
      title: m.title,
      detail: `Tronc commun · ${m.themeTitle} · ${m.nominalMinutes} min`,
    }));
  const tracks = [...new Map(themes.map((t) => [t.trackId, t.trackTitle])).entries()];
  const parcours = tracks.map(([id, title]) => ({
    value: selectionKey({ kind: 'parcours', track: tracks.length > 1 ? id : null }),
    title: `Mon parcours — ${title}`,
    detail: 'Les modules de l’apprenant semaine par semaine, son temps et son certificat',
  }));
  const commonThemes = themes
    .filter((t) => t.trunk === 'common')
    .map((t) => ({
      value: selectionKey({ kind: 'theme', slug: t.slug, track: ambiguous.has(t.slug) ? t.trackId : null }),
      title: t.title,
      detail: `${t.trackTitle} · tronc commun, ses modules l’un après l’autre`,
    }));
  const sector = themes
    .filter((t) => t.trunk === 'sector')
    .map((t) => ({
      value: selectionKey({ kind: 'theme', slug: t.slug, track: ambiguous.has(t.slug) ? t.trackId : null }),
      title: t.title,
      detail: `${t.trackTitle} · le contenu s’adapte au fonds de l’apprenant`,
    }));
  return {
    parcours,
    commonThemes,
    common,
    themes: sector,
    funds: funds.map((f) => ({
      slug: f.slug,
      name: f.name,
      historicalName: f.historicalName,
      modules: modules
        .filter((m) => m.fundSlug === f.slug)
        .map((m) => ({
          value: `module:${m.id}`,
          title: m.title,
          detail:
            m.branches.length > 0
              ? `${m.themeTitle} · variante pour les conventions collectives ${m.branches.join(', ')}`
              : `${m.themeTitle} · ${m.nominalMinutes} min`,
        })),
    })),
  };
}

/** Turns the picked values into ltiResourceLink items; anything not in the catalogue is refused. */
export async function itemsFor(db: Db, selections: Selection[], launchUrl: string): Promise<LtiResourceLinkItem[]> {
  const [modules, themes, funds] = await Promise.all([listModules(db), listThemes(db), listFunds(db)]);
  return selections.map((selection) => {
    if (selection.kind === 'parcours') {
      const trackIds = [...new Set(themes.map((t) => t.trackId))];
      const trackId = selection.track ?? (trackIds.length === 1 ? trackIds[0] : undefined);
      const theme = themes.find((t) => t.trackId === trackId);
      if (!theme) throw unknownChoice(selectionKey(selection));
      return resourceLinkItem({
        selection,
        title: 'Mon parcours',
        text: `${theme.trackTitle} — les modules de l’apprenant semaine par semaine, son temps et son certificat.`,
        launchUrl,
      });
    }
    if (selection.kind === 'module') {
      const m = modules.find((x) => x.id === selection.id);
      if (!m) throw unknownChoice(selectionKey(selection));
      const fund = m.fundSlug ? funds.find((f) => f.slug === m.fundSlug)?.name : null;
      return resourceLinkItem({
        selection,
        title: m.title,
        text: fund ? `${m.themeTitle} — module de ${fund}` : `${m.themeTitle} — tronc commun`,
        launchUrl,
      });
    }
    const matching = themes.filter(
      (t) => t.slug === selection.slug && (selection.track === null || t.trackId === selection.track),
    );
    if (matching.length !== 1) throw unknownChoice(selectionKey(selection));
    const theme = matching[0] as (typeof themes)[number];
    return resourceLinkItem({
      selection,
      title: theme.title,
      text:
        theme.trunk === 'sector'
          ? 'Chaque apprenant voit les modules de son fonds de formation, l’un après l’autre.'
          : 'Les mêmes modules pour tous les apprenants, l’un après l’autre.',
      launchUrl,
    });
  });
}

function unknownChoice(key: string) {
  return new BadRequestError(
    'deep_linking_unknown_choice',
    'Un des contenus choisis n’existe plus : rechargez la liste et choisissez à nouveau.',
    `${key} is not in the catalogue`,
  );
}

export interface DeepLinkingContext {
  returnUrl: string;
  clientId: string;
  platformIssuer: string;
  deploymentId: string;
  settings: DeepLinkingSettings;
}

/** The deep-linking request a session came from; any other session cannot answer one. */
export async function deepLinkingContext(db: Db, launchId: string): Promise<DeepLinkingContext> {
  const launch = await findDeepLinkingLaunch(db, launchId);
  if (launch?.message_type !== 'LtiDeepLinkingRequest') {
    throw new ForbiddenError(
      'not_a_deep_linking_session',
      'Ajoutez des contenus depuis Studio (bouton « Ajouter du contenu » du composant LTI).',
      'session does not come from an LtiDeepLinkingRequest',
    );
  }
  if (launch.removed_at) {
    throw new ForbiddenError('registration_removed', undefined, 'registration of this launch was removed');
  }
  const settings = checkDeepLinkingSettings(launch.deep_linking);
  return {
    returnUrl: settings.deep_link_return_url,
    clientId: launch.client_id,
    platformIssuer: launch.issuer,
    deploymentId: launch.deployment_id,
    settings,
  };
}

/** Deep Linking 2.0 §4.4: the LtiDeepLinkingResponse JWT, signed RS256 by the tool's current key. */
export async function signDeepLinkingResponse(
  key: ToolSigningKey,
  ctx: DeepLinkingContext,
  items: LtiResourceLinkItem[],
  message?: string,
): Promise<string> {
  const claims = deepLinkingResponseClaims({
    clientId: ctx.clientId,
    platformIssuer: ctx.platformIssuer,
    deploymentId: ctx.deploymentId,
    nowSeconds: Date.now() / 1000,
    nonce: randomUUID(),
    items,
    data: ctx.settings.data,
    ...(message ? { message } : {}),
  });
  return new SignJWT(claims).setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT' }).sign(key.privateKey);
}
