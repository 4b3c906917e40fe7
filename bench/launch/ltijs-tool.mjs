/**
 * The peer of the launch bench: ltijs 5.9.9 as a tool, in its own process, on plain `node` (no TypeScript
 * loader: the tsx loader turns on source maps, which makes every `new Error()` — Sequelize makes one per
 * query — several times dearer), with ltijs-sequelize over an in-memory SQLite database (ltijs wants
 * MongoDB; none runs here). Forked by ./run.ts, which sends the platform to register over IPC and gets
 * `ready` back once the tool listens.
 *
 * ltijs is configured as its documentation says for a tool on http behind no proxy: signed cookies,
 * default `tokenMaxAge` (10 s), platform keys by JWK_SET (the keyset URL, as Open edX gives it). Its launch
 * is: POST id_token + state (checked against the `state<state>` cookie set at login) → 302 to the app route
 * with `?ltik=` → GET with the ltik and the platform session cookie → onConnect → the page below.
 */
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { answerProfilerMessages } from './profiler.mjs';

const require = createRequire(import.meta.url);
const lti = require('ltijs').Provider;
const SequelizeDb = require('ltijs-sequelize');

/** ltijs-sequelize on an in-memory SQLite (the default), or on PostgreSQL (run.ts --ltijs-db pg). */
function database(spec) {
  if (spec?.dialect !== 'postgres') {
    return new SequelizeDb('ltijs', 'bench', '', { dialect: 'sqlite', storage: ':memory:', logging: false });
  }
  const url = new URL(spec.url);
  return new SequelizeDb(url.pathname.slice(1), decodeURIComponent(url.username), decodeURIComponent(url.password), {
    dialect: 'postgres',
    host: url.hostname,
    port: Number(url.port || 5432),
    logging: false,
  });
}

/**
 * @param {{ port: number, issuer: string, clientId: string, authLoginUrl: string, accessTokenUrl: string,
 *   jwksUrl: string, database: { dialect: 'sqlite' } | { dialect: 'postgres', url: string } }} setup
 */
async function start(setup) {
  const db = database(setup.database);
  lti.setup(
    'bench-ltijs-encryption-key-0123456789',
    { plugin: db },
    { appRoute: '/launch', loginRoute: '/login', keysetRoute: '/keys' },
  );
  lti.onConnect((_token, _req, res) => {
    const { user, platformContext } = res.locals.token;
    res.send(
      `<!doctype html><title>ltijs</title><p data-launched="ltijs">launched ${user} on ${platformContext?.resource?.id ?? '?'}</p>`,
    );
  });
  // The defaults answer 401 with JSON; keep the status, make the reason visible to the bench.
  lti.onInvalidToken((_req, res) => res.status(401).send(`invalid token: ${JSON.stringify(res.locals.err)}`));
  lti.onSessionTimeout((_req, res) => res.status(401).send(`session timeout: ${JSON.stringify(res.locals.err)}`));
  // Umzug logs its migrations on the console at deploy; the bench ignores this process's stdout.
  await lti.deploy({ serverless: true, silent: true });
  await lti.registerPlatform({
    url: setup.issuer,
    name: 'Fake Open edX',
    clientId: setup.clientId,
    authenticationEndpoint: setup.authLoginUrl,
    accesstokenEndpoint: setup.accessTokenUrl,
    authConfig: { method: 'JWK_SET', key: setup.jwksUrl },
  });
  // ltijs's own listen() is `app.listen(port)` on every interface; serverless mode lets us bind loopback.
  const server = createServer(lti.app);
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(setup.port, '127.0.0.1', resolve);
  });
}

answerProfilerMessages();
process.once('message', (setup) => {
  start(setup).then(
    () => process.send?.({ type: 'ready' }),
    (error) => {
      process.send?.({ type: 'error', message: error instanceof Error ? error.stack : String(error) });
      process.exit(1);
    },
  );
});
process.on('disconnect', () => process.exit(0));
