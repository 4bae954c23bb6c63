import { startTollgate } from './app.ts';
import { ConfigError, loadConfig } from './config.ts';
import { createLogger } from './logger.ts';
import { PolicyCompileError } from './authz/compile.ts';
import { MasterKeyMismatchError } from './tokens/keyring.ts';

/** Process entry: configuration, stores, server, listen; closes cleanly on SIGINT and SIGTERM. */
async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(`tollgate: ${error.message}`);
      process.exit(2);
    }
    throw error;
  }

  const logger = createLogger(config.logLevel);
  let tollgate;
  try {
    tollgate = await startTollgate({ config, logger });
  } catch (error) {
    if (error instanceof PolicyCompileError || error instanceof MasterKeyMismatchError) {
      logger.fatal(error.message);
      process.exit(2);
    }
    logger.fatal({ err: error }, 'tollgate failed to start');
    process.exit(1);
  }

  let address: string;
  try {
    address = await tollgate.gateway.app.listen({ host: config.host, port: config.port });
  } catch (error) {
    const code = (error as { code?: string }).code;
    const hint = code === 'EADDRINUSE' ? 'the port is in use: stop the other process or set PORT' : code === 'EADDRNOTAVAIL' ? 'the address is not on this machine: set HOST' : 'check HOST and PORT';
    logger.fatal({ err: error, host: config.host, port: config.port }, `tollgate cannot listen on ${config.host}:${config.port}: ${hint}`);
    await tollgate.close().catch(() => undefined);
    process.exit(1);
  }
  logger.info({ address, mode: config.databaseUrl ? 'services' : 'embedded', redis: config.redisUrl ? 'redis' : 'in-memory' }, `tollgate listening on ${address}/graphql`);

  let closing = false;
  const shutdown = async (signal: string) => {
    if (closing) return;
    closing = true;
    logger.info({ signal }, 'tollgate stopping');
    const timer = setTimeout(() => {
      logger.error('shutdown timed out after 10 s; exiting');
      process.exit(1);
    }, 10_000);
    timer.unref();
    await tollgate.close();
    logger.info('tollgate stopped');
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
}

await main();
