import { buildApp } from './app.js';
import { GRACEFUL_STOP_MS } from './common/background.js';
import { ConfigError, loadConfig } from './config/index.js';

async function main(): Promise<void> {
  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig(process.env, { persistSecret: true });
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(78); // EX_CONFIG
    }
    throw error;
  }

  const app = await buildApp({ config });
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    app.log.info({ signal }, 'stopping: no new connections, finishing in-flight requests');
    const timer = setTimeout(() => {
      app.log.error(`graceful stop took over ${GRACEFUL_STOP_MS / 1000} s, exiting`);
      process.exit(1);
    }, GRACEFUL_STOP_MS);
    timer.unref();
    await app.close();
    app.log.info('stopped');
    process.exit(0);
  };
  process.once('SIGTERM', () => void stop('SIGTERM'));
  process.once('SIGINT', () => void stop('SIGINT'));

  // Background work (score delivery, membership sync, sweeps) starts once this resolves: see
  // src/common/background.ts.
  await app.listen({ port: config.port, host: config.host });
  app.log.info({ publicUrl: config.publicUrl, database: app.dbKind }, 'Émargement is listening');
}

main().catch((error: unknown) => {
  process.stderr.write(`Émargement failed to start: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
