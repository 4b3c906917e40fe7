/**
 * The browser's part of an LTI 1.3 launch, as plain HTTP on keep-alive loopback sockets:
 * GET the tool's OIDC login URL (the iframe src Open edX renders) → follow the redirect to the platform's
 * auth URL → read the auto-POST form it answers → POST id_token + state to the tool → follow the tool's
 * own redirects → the final page. A pair counts only if the final page is 200 and carries the side's marker.
 */
import { Agent, request as httpRequest, type IncomingHttpHeaders } from 'node:http';

export interface HttpResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

export interface HttpClient {
  request(
    method: 'GET' | 'POST',
    url: string,
    options?: { headers?: Record<string, string>; body?: string },
  ): Promise<HttpResponse>;
  close(): void;
}

export function httpClient(maxSockets: number): HttpClient {
  const agent = new Agent({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets });
  return {
    request(method, url, options = {}) {
      return new Promise((resolve, reject) => {
        const headers: Record<string, string> = { ...options.headers };
        if (options.body !== undefined) headers['content-length'] = String(Buffer.byteLength(options.body));
        const req = httpRequest(url, { method, agent, headers }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () =>
            resolve({
              status: res.statusCode ?? 0,
              headers: res.headers,
              body: Buffer.concat(chunks).toString('utf8'),
            }),
          );
          res.on('error', reject);
        });
        req.on('error', reject);
        req.end(options.body);
      });
    },
    close: () => agent.destroy(),
  };
}

/** One browser's cookies for one origin: enough for ltijs's signed `state…` and platform cookies. */
export class CookieJar {
  readonly #cookies = new Map<string, string>();

  store(setCookie: string[] | undefined): void {
    for (const line of setCookie ?? []) {
      const [pair = '', ...attributes] = line.split(';');
      const eq = pair.indexOf('=');
      if (eq <= 0) continue;
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const expired = attributes.some((a) => {
        const [k = '', v = ''] = a.split('=');
        const key = k.trim().toLowerCase();
        return (key === 'max-age' && Number(v) <= 0) || (key === 'expires' && Date.parse(v) <= Date.now());
      });
      if (expired || value === '') this.#cookies.delete(name);
      else this.#cookies.set(name, value);
    }
  }

  header(): Record<string, string> {
    if (this.#cookies.size === 0) return {};
    return { cookie: [...this.#cookies].map(([k, v]) => `${k}=${v}`).join('; ') };
  }

  get size(): number {
    return this.#cookies.size;
  }
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };
export function decodeEntities(text: string): string {
  return text.replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (whole, code: string) => {
    if (code[0] === '#') {
      const n = code[1] === 'x' || code[1] === 'X' ? Number.parseInt(code.slice(2), 16) : Number(code.slice(1));
      return String.fromCodePoint(n);
    }
    return ENTITIES[code.toLowerCase()] ?? whole;
  });
}

export interface AutoPostForm {
  action: string;
  fields: Record<string, string>;
}

/** The platform's auto-submitting form (OIDC `response_mode=form_post`): its action and hidden fields. */
export function parseAutoPostForm(html: string, baseUrl: string): AutoPostForm {
  const form = /<form\b([^>]*)>([\s\S]*?)<\/form>/i.exec(html);
  if (!form) throw new Error('no form in the platform answer');
  const attrs = form[1] ?? '';
  const action = /\baction\s*=\s*("([^"]*)"|'([^']*)')/i.exec(attrs);
  if (!action) throw new Error('form without action');
  const method = /\bmethod\s*=\s*("([^"]*)"|'([^']*)')/i.exec(attrs);
  if (method && (method[2] ?? method[3] ?? '').toLowerCase() !== 'post') throw new Error('form is not a POST');
  const fields: Record<string, string> = {};
  for (const input of (form[2] ?? '').matchAll(/<input\b([^>]*)>/gi)) {
    const a = input[1] ?? '';
    const name = /\bname\s*=\s*("([^"]*)"|'([^']*)')/i.exec(a);
    const value = /\bvalue\s*=\s*("([^"]*)"|'([^']*)')/i.exec(a);
    if (name) fields[decodeEntities(name[2] ?? name[3] ?? '')] = decodeEntities(value?.[2] ?? value?.[3] ?? '');
  }
  return { action: new URL(decodeEntities(action[2] ?? action[3] ?? ''), baseUrl).toString(), fields };
}

export interface LaunchSide {
  /** The tool's OIDC login URL for this user, with the query Open edX puts on the iframe src. */
  loginUrl(user: number): string;
  /** Keep the tool's cookies between the requests of one pair (ltijs needs them; ours must not). */
  keepToolCookies: boolean;
  /** The final page is the tool page for this launch (not an error page that happens to be 200). */
  isFinalPage(body: string): boolean;
}

export interface PairResult {
  ok: boolean;
  ms: number;
  error?: string;
  requests: number;
}

const MAX_TOOL_REDIRECTS = 3;

/** One full OIDC login + launch, timed from the login GET to the final page's last byte. */
export async function launchPair(
  client: HttpClient,
  side: LaunchSide,
  user: number,
  platformCookies: () => Record<string, string>,
): Promise<PairResult> {
  const started = performance.now();
  const jar = new CookieJar();
  let requests = 0;
  const toolHeaders = () => (side.keepToolCookies ? jar.header() : {});
  const fail = (error: string): PairResult => ({ ok: false, ms: performance.now() - started, error, requests });
  try {
    const loginUrl = side.loginUrl(user);
    const login = await client.request('GET', loginUrl, { headers: toolHeaders() });
    requests++;
    jar.store(login.headers['set-cookie']);
    if (login.status !== 302 && login.status !== 303) return fail(`login answered ${login.status}`);
    const authUrl = new URL(String(login.headers.location), loginUrl).toString();

    const auth = await client.request('GET', authUrl, { headers: platformCookies() });
    requests++;
    if (auth.status !== 200) return fail(`platform auth answered ${auth.status}: ${auth.body.slice(0, 200)}`);
    const form = parseAutoPostForm(auth.body, authUrl);
    if (!form.fields.id_token || !form.fields.state) return fail('platform form without id_token/state');

    let response = await client.request('POST', form.action, {
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...toolHeaders() },
      body: new URLSearchParams(form.fields).toString(),
    });
    requests++;
    let url = form.action;
    for (let hop = 0; (response.status === 302 || response.status === 303) && hop < MAX_TOOL_REDIRECTS; hop++) {
      jar.store(response.headers['set-cookie']);
      url = new URL(String(response.headers.location), url).toString();
      response = await client.request('GET', url, { headers: toolHeaders() });
      requests++;
    }
    if (response.status !== 200) return fail(`launch answered ${response.status}: ${response.body.slice(0, 300)}`);
    if (!side.isFinalPage(response.body)) return fail(`launch page without marker: ${response.body.slice(0, 300)}`);
    return { ok: true, ms: performance.now() - started, requests };
  } catch (error) {
    return fail(error instanceof Error ? error.message : String(error));
  }
}

export interface LoadResult {
  ok: number;
  failed: number;
  seconds: number;
  latencies: Float64Array;
  errors: Map<string, number>;
  requestsPerPair: number;
  /** Pairs started in the whole run, warm-up included, whatever their outcome. */
  allPairs: number;
}

/**
 * Closed loop: `concurrency` browsers each launch, wait for the final page, launch again. Pairs started
 * during the warm-up are not recorded; no pair starts after the deadline; the figures cover the pairs
 * started in the measured window.
 */
export async function runLoad(options: {
  client: HttpClient;
  side: LaunchSide;
  concurrency: number;
  warmupSeconds: number;
  seconds: number;
  users: number;
  platformCookies: (user: number) => Record<string, string>;
  onPhase?: (phase: 'measure') => void;
}): Promise<LoadResult> {
  const { client, side, concurrency, users } = options;
  const start = performance.now();
  const measureFrom = start + options.warmupSeconds * 1000;
  const deadline = measureFrom + options.seconds * 1000;
  const latencies: number[] = [];
  const errors = new Map<string, number>();
  let next = 0;
  let ok = 0;
  let failed = 0;
  let requests = 0;
  let lastEnd = measureFrom;
  const phase = setTimeout(() => options.onPhase?.('measure'), options.warmupSeconds * 1000);

  const browser = async () => {
    for (;;) {
      const now = performance.now();
      if (now >= deadline) return;
      const user = next++ % users;
      const measured = now >= measureFrom;
      const result = await launchPair(client, side, user, () => options.platformCookies(user));
      if (!measured) continue;
      lastEnd = Math.max(lastEnd, performance.now());
      if (result.ok) {
        ok++;
        requests += result.requests;
        latencies.push(result.ms);
      } else {
        failed++;
        const key = (result.error ?? 'unknown').replace(/[A-Za-z0-9_-]{20,}/g, '…');
        errors.set(key, (errors.get(key) ?? 0) + 1);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, browser));
  clearTimeout(phase);
  const sorted = Float64Array.from(latencies).sort();
  return {
    ok,
    failed,
    seconds: (lastEnd - measureFrom) / 1000,
    latencies: sorted,
    errors,
    requestsPerPair: ok > 0 ? requests / ok : 0,
    allPairs: next,
  };
}

export function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] ?? Number.NaN;
}
