import { createHash, randomUUID } from 'node:crypto';
import { createRemoteJWKSet, exportJWK, generateKeyPair, type JWK, type JWTPayload, jwtVerify, SignJWT } from 'jose';

/**
 * A small LTI 1.3 platform (LTI Core 1.3 §4–§5, Security Framework 1.0 §5.1.1) living inside the service in
 * development, shaped like Open edX's LTI consumer: one issuer, one client ID, deployment "1", its RSA key
 * published at a keyset URL, an authentication endpoint answering the tool's OIDC authentication request
 * with an auto-submitted form_post of the id_token, and Open edX's claims (docs/operations/demo-lms.md).
 * Its key lives in memory: each start makes a new one (the tool refetches the keyset on an unknown kid).
 */

const LTI = 'https://purl.imsglobal.org/spec/lti/claim/';
const LIS = 'http://purl.imsglobal.org/vocab/lis/v2/';
const DL = 'https://purl.imsglobal.org/spec/lti-dl/claim/';

export type DemoRole = 'learner' | 'instructor';
export type DemoMessageType = 'LtiResourceLinkRequest' | 'LtiDeepLinkingRequest';

/** Open edX's role map (v11): a learner is a context Learner, course staff an Administrator + Instructor. */
const ROLES: Record<DemoRole, string[]> = {
  learner: [`${LIS}system/person#None`, `${LIS}institution/person#None`, `${LIS}membership#Learner`],
  instructor: [
    `${LIS}system/person#None`,
    `${LIS}institution/person#None`,
    `${LIS}membership#Administrator`,
    `${LIS}membership#Instructor`,
  ],
};

export interface DemoUser {
  sub: string;
  name: string;
  email: string;
  username: string;
  role: DemoRole;
}

export interface DemoUnit {
  /** Stable id in URLs. */
  slug: string;
  title: string;
  /** The resource link's custom parameters (Studio's `key=value` lines, or what deep linking placed). */
  custom: Record<string, string>;
}

/** What the platform remembers between the login initiation and its authentication endpoint. */
export interface LaunchHint {
  user: DemoUser;
  unit: DemoUnit;
  messageType: DemoMessageType;
  /** A fund fixed on theme links (custom `fund=`), as a course run per fund would. */
  fund: string | null;
}

export interface DemoUrls {
  issuer: string;
  authLoginUrl: string;
  accessTokenUrl: string;
  jwksUrl: string;
  deepLinkReturnUrl: string;
}

export const DEMO_CLIENT_ID = 'emargement-demo';
export const DEMO_DEPLOYMENT_ID = '1';
export const DEMO_PLATFORM_NAME = 'Plateforme de démonstration';
export const DEMO_COURSE = {
  id: 'course-v1:DEMO+TPE-PME+2026',
  title: 'Transition numérique des TPE-PME (démonstration)',
};

export function demoUrls(publicUrl: string): DemoUrls {
  const base = `${publicUrl}/demo`;
  return {
    issuer: base,
    authLoginUrl: `${base}/lti/authorize`,
    accessTokenUrl: `${base}/lti/token`,
    jwksUrl: `${base}/lti/jwks`,
    deepLinkReturnUrl: `${base}/lti/deep-linking-return`,
  };
}

/** The resource link id Open edX would send: the LTI component's usage key. */
export function usageKey(unit: DemoUnit): string {
  const block = createHash('sha256').update(unit.slug).digest('hex').slice(0, 32);
  return `block-v1:DEMO+TPE-PME+2026+type@lti_consumer+block@${block}`;
}

export class DemoPlatform {
  readonly urls: DemoUrls;
  readonly #toolJwks: ReturnType<typeof createRemoteJWKSet>;

  private constructor(
    readonly toolUrl: string,
    private readonly kid: string,
    private readonly privateKey: CryptoKey,
    private readonly publicKey: CryptoKey,
    private readonly publicJwk: JWK,
  ) {
    this.urls = demoUrls(toolUrl);
    this.#toolJwks = createRemoteJWKSet(new URL(`${toolUrl}/.well-known/jwks.json`));
  }

  static async create(toolUrl: string): Promise<DemoPlatform> {
    const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
    const kid = randomUUID();
    const jwk = await exportJWK(publicKey);
    return new DemoPlatform(toolUrl, kid, privateKey, publicKey, {
      kty: 'RSA',
      n: jwk.n,
      e: jwk.e,
      kid,
      key_ops: ['verify'],
    });
  }

  /** Security Framework §6.3: the keyset the tool fetches (Open edX publishes kid + key_ops, no alg/use). */
  jwks(): { keys: JWK[] } {
    return { keys: [this.publicJwk] };
  }

  /** LTI Core §4.1 third-party initiated login: the iframe's src, on the tool's login URL. */
  async loginInitiationUrl(hint: LaunchHint): Promise<string> {
    const messageHint = await new SignJWT({ hint } as unknown as JWTPayload)
      .setProtectedHeader({ alg: 'RS256', kid: this.kid })
      .setIssuer(this.urls.issuer)
      .setAudience(`${this.urls.issuer}#hint`)
      .setIssuedAt()
      .setExpirationTime('10m')
      .sign(this.privateKey);
    const target =
      hint.messageType === 'LtiDeepLinkingRequest' ? `${this.toolUrl}/lti/deep-linking` : `${this.toolUrl}/lti/launch`;
    const u = new URL(`${this.toolUrl}/lti/login`);
    u.search = new URLSearchParams({
      iss: this.urls.issuer,
      client_id: DEMO_CLIENT_ID,
      lti_deployment_id: DEMO_DEPLOYMENT_ID,
      target_link_uri: target,
      login_hint: hint.user.sub,
      lti_message_hint: messageHint,
    }).toString();
    return u.toString();
  }

  async #readHint(token: string): Promise<LaunchHint> {
    const { payload } = await jwtVerify(token, this.publicKey, {
      issuer: this.urls.issuer,
      audience: `${this.urls.issuer}#hint`,
      algorithms: ['RS256'],
    });
    return (payload as unknown as { hint: LaunchHint }).hint;
  }

  /**
   * The authentication endpoint (OIDC Core §3.1.2.1 as LTI Core §5.1.1.1 fixes it): checks the tool's
   * authentication request, then answers the id_token (LTI Core §5.1.2) and state, to be form-posted to the
   * redirect_uri. Returns the French reason when the request is not acceptable.
   */
  async authorize(
    params: URLSearchParams,
  ): Promise<{ ok: true; action: string; fields: Record<string, string> } | { ok: false; error: string }> {
    const get = (k: string) => params.get(k) ?? '';
    if (get('scope') !== 'openid') return { ok: false, error: 'scope doit valoir « openid »' };
    if (get('response_type') !== 'id_token') return { ok: false, error: 'response_type doit valoir « id_token »' };
    if (get('response_mode') !== 'form_post') return { ok: false, error: 'response_mode doit valoir « form_post »' };
    if (get('prompt') !== 'none') return { ok: false, error: 'prompt doit valoir « none »' };
    if (get('client_id') !== DEMO_CLIENT_ID) return { ok: false, error: 'client_id inconnu' };
    if (!get('nonce') || !get('state')) return { ok: false, error: 'nonce et state sont obligatoires' };
    const redirectUri = get('redirect_uri');
    if (![`${this.toolUrl}/lti/launch`, `${this.toolUrl}/lti/deep-linking`].includes(redirectUri)) {
      return { ok: false, error: 'redirect_uri n’est pas une adresse enregistrée de l’outil' };
    }
    let hint: LaunchHint;
    try {
      hint = await this.#readHint(get('lti_message_hint'));
    } catch {
      return { ok: false, error: 'lancement expiré ou inconnu : rouvrez la page de l’unité' };
    }
    if (get('login_hint') !== hint.user.sub) return { ok: false, error: 'login_hint ne correspond pas au lancement' };
    if (hint.messageType === 'LtiDeepLinkingRequest' && hint.user.role !== 'instructor') {
      return { ok: false, error: 'seule l’équipe pédagogique peut choisir un contenu' };
    }
    const idToken = await this.#idToken(hint, get('nonce'), redirectUri);
    return { ok: true, action: redirectUri, fields: { state: get('state'), id_token: idToken } };
  }

  async #idToken(hint: LaunchHint, nonce: string, targetLinkUri: string): Promise<string> {
    const { user, unit, messageType } = hint;
    const claims: Record<string, unknown> = {
      [`${LTI}message_type`]: messageType,
      [`${LTI}version`]: '1.3.0',
      azp: DEMO_CLIENT_ID,
      [`${LTI}deployment_id`]: DEMO_DEPLOYMENT_ID,
      [`${LTI}target_link_uri`]: targetLinkUri,
      [`${LTI}roles`]: ROLES[user.role],
      name: user.name,
      email: user.email,
      preferred_username: user.username,
      [`${LTI}context`]: {
        id: DEMO_COURSE.id,
        type: ['http://purl.imsglobal.org/vocab/lis/v2/course#CourseOffering'],
        title: DEMO_COURSE.title,
        label: DEMO_COURSE.id,
      },
      [`${LTI}tool_platform`]: { guid: DEMO_CLIENT_ID, name: DEMO_PLATFORM_NAME },
      nonce,
    };
    if (messageType === 'LtiResourceLinkRequest') {
      claims[`${LTI}resource_link`] = { id: usageKey(unit), title: unit.title };
      claims[`${LTI}launch_presentation`] = { document_target: 'iframe' };
      const custom = { ...unit.custom, ...(hint.fund && unit.custom.theme ? { fund: hint.fund } : {}) };
      if (Object.keys(custom).length > 0) claims[`${LTI}custom`] = custom;
    } else {
      // Deep Linking 2.0 §4.4.1.
      claims[`${DL}deep_linking_settings`] = {
        accept_types: ['ltiResourceLink'],
        accept_presentation_document_targets: ['iframe'],
        accept_multiple: true,
        auto_create: true,
        deep_link_return_url: this.urls.deepLinkReturnUrl,
        data: unit.slug,
      };
    }
    return new SignJWT(claims as JWTPayload)
      .setProtectedHeader({ alg: 'RS256', kid: this.kid, typ: 'JWT' })
      .setIssuer(this.urls.issuer)
      .setSubject(user.sub)
      .setAudience(DEMO_CLIENT_ID)
      .setIssuedAt()
      .setExpirationTime('1h')
      .sign(this.privateKey);
  }

  /**
   * Deep Linking 2.0 §4.4: the tool's response, signed with its key (keyset fetched from the tool's JWKS URL,
   * Security Framework §6.3): issuer = our client ID, audience = our issuer. Returns the links it placed.
   */
  async readDeepLinkingResponse(jwt: string): Promise<{ title: string; custom: Record<string, string> }[]> {
    const { payload } = await jwtVerify(jwt, this.#toolJwks, {
      issuer: DEMO_CLIENT_ID,
      audience: this.urls.issuer,
      algorithms: ['RS256'],
    });
    if (payload[`${LTI}message_type`] !== 'LtiDeepLinkingResponse') throw new Error('not an LtiDeepLinkingResponse');
    const items = payload[`${DL}content_items`];
    if (!Array.isArray(items)) return [];
    return items
      .filter((i): i is { type: string; title?: unknown; custom?: unknown } => typeof i === 'object' && i !== null)
      .filter((i) => i.type === 'ltiResourceLink')
      .map((i) => ({
        title: typeof i.title === 'string' ? i.title : 'Module',
        custom: Object.fromEntries(
          Object.entries((i.custom ?? {}) as Record<string, unknown>).filter(
            (e): e is [string, string] => typeof e[1] === 'string',
          ),
        ),
      }));
  }
}
