import type { Response as InjectResponse } from 'light-my-request';
import type { App } from '../../src/app.js';
import type { Db } from '../../src/db/index.js';
import { createToken, createUser, type PortalRole } from '../../src/portal/index.js';
import { dom } from '../helpers/dom.js';

export const PASSWORD = 'une phrase de passe assez longue';

export async function insertFund(
  db: Db,
  slug: string,
  name = slug.toUpperCase(),
  historicalName: string | null = null,
) {
  await db
    .insertInto('funds')
    .values({
      slug,
      name,
      historical_name: historicalName,
      sectors: JSON.stringify(['Secteur']),
      position: 1,
      version: 1,
    })
    .onConflict((oc) => oc.column('slug').doNothing())
    .execute();
}

export async function insertBranch(db: Db, idcc: string, fundSlug: string, name = `Branche ${idcc}`) {
  await db
    .insertInto('branches')
    .values({ idcc, name, fund_slug: fundSlug, version: 1 })
    .onConflict((oc) => oc.column('idcc').doNothing())
    .execute();
}

export async function addUser(
  db: Db,
  username: string,
  role: PortalRole,
  fundSlug: string | null,
  password = PASSWORD,
): Promise<string> {
  const { user } = await createUser(db, { username, displayName: `Nom ${username}`, role, fundSlug, password });
  return user.id;
}

export async function addToken(db: Db, userId: string, name = 'script'): Promise<string> {
  return (await createToken(db, userId, name, null)).token;
}

/** The cookies a response sets, as a Cookie header fragment map. */
export function setCookies(res: InjectResponse): Record<string, string> {
  const out: Record<string, string> = {};
  for (const c of res.cookies as Array<{ name: string; value: string }>) out[c.name] = c.value;
  return out;
}

export function cookieHeader(cookies: Record<string, string>): string {
  return Object.entries(cookies)
    .map(([k, v]) => `${k}=${v}`)
    .join('; ');
}

export function hiddenField(body: string, name: string): string {
  const value = [...dom(body).querySelectorAll('input')]
    .find((i) => i.getAttribute('name') === name)
    ?.getAttribute('value');
  if (value === null || value === undefined) throw new Error(`no hidden field ${name} in page`);
  return value;
}

export interface Browser {
  cookies: Record<string, string>;
  ip: string;
}

/** Opens the sign-in page like a browser: the pre-session cookie and the form's CSRF token. */
export async function openLogin(app: App, ip = '203.0.113.10'): Promise<{ browser: Browser; csrf: string }> {
  const res = await app.inject({ method: 'GET', url: '/portal/connexion', remoteAddress: ip });
  if (res.statusCode !== 200) throw new Error(`login page answered ${res.statusCode}`);
  return { browser: { cookies: setCookies(res), ip }, csrf: hiddenField(res.body, '_csrf') };
}

export async function postLogin(
  app: App,
  browser: Browser,
  csrf: string,
  username: string,
  password: string,
): Promise<InjectResponse> {
  const res = await app.inject({
    method: 'POST',
    url: '/portal/connexion',
    remoteAddress: browser.ip,
    headers: { cookie: cookieHeader(browser.cookies), 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams({ identifiant: username, mot_de_passe: password, _csrf: csrf }).toString(),
  });
  Object.assign(browser.cookies, setCookies(res));
  for (const [k, v] of Object.entries(browser.cookies)) if (v === '') delete browser.cookies[k];
  return res;
}

/** Signs in and returns the browser holding the session cookie. */
export async function signIn(app: App, username: string, password = PASSWORD, ip?: string): Promise<Browser> {
  const { browser, csrf } = await openLogin(app, ip);
  const res = await postLogin(app, browser, csrf, username, password);
  if (res.statusCode !== 303) throw new Error(`sign-in answered ${res.statusCode}`);
  return browser;
}

export async function get(app: App, browser: Browser | null, url: string): Promise<InjectResponse> {
  return app.inject({
    method: 'GET',
    url,
    remoteAddress: browser?.ip ?? '203.0.113.10',
    headers: browser ? { cookie: cookieHeader(browser.cookies), accept: 'text/html' } : { accept: 'text/html' },
  });
}

export async function post(
  app: App,
  browser: Browser,
  url: string,
  form: Record<string, string>,
  headers: Record<string, string> = {},
): Promise<InjectResponse> {
  const res = await app.inject({
    method: 'POST',
    url,
    remoteAddress: browser.ip,
    headers: {
      cookie: cookieHeader(browser.cookies),
      'content-type': 'application/x-www-form-urlencoded',
      accept: 'text/html',
      ...headers,
    },
    payload: new URLSearchParams(form).toString(),
  });
  Object.assign(browser.cookies, setCookies(res));
  for (const [k, v] of Object.entries(browser.cookies)) if (v === '') delete browser.cookies[k];
  return res;
}

/** The CSRF token of the session, read from any signed-in page. */
export async function csrfOf(app: App, browser: Browser, url = '/portal/jetons'): Promise<string> {
  const res = await get(app, browser, url);
  if (res.statusCode !== 200) throw new Error(`${url} answered ${res.statusCode}`);
  return hiddenField(res.body, '_csrf');
}

export function bearer(token: string): Record<string, string> {
  return { authorization: `Bearer ${token}` };
}

/** The staff most scope tests need: AKTO's and Atlas's fund staff and an operator, signed in and with tokens. */
export async function seedStaff(db: Db, app: App) {
  const aktoId = await addUser(db, 'staff@akto.test', 'fund_staff', 'akto');
  const atlasId = await addUser(db, 'staff@atlas.test', 'fund_staff', 'atlas');
  const opsId = await addUser(db, 'ops@fun.test', 'operator', null);
  return {
    aktoToken: await addToken(db, aktoId),
    atlasToken: await addToken(db, atlasId),
    opsToken: await addToken(db, opsId),
    akto: await signIn(app, 'staff@akto.test'),
    atlas: await signIn(app, 'staff@atlas.test'),
    ops: await signIn(app, 'ops@fun.test'),
  };
}
