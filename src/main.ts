/**
 * Process entry: read the configuration, start the roles it names, stop cleanly on SIGTERM or
 * SIGINT (a second signal exits at once).
 */
import { pino } from 'pino';
import { ConfigError, loadConfig, type Config } from './config.js';
import { startService } from './service.js';

let config: Config;
try {
  config = loadConfig();
} catch (error) {
  if (error instanceof ConfigError) {
    process.stderr.write(`${error.message}\n`);
    process.exit(2);
  }
  throw error;
}

const logger = pino({ level: config.logLevel, base: { pid: process.pid, role: config.role } });

try {
  const service = await startService(config, logger);
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals++;
    if (signals > 1) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    logger.info({ signal }, 'stopping: no new requests, finishing the batches in hand');
    const force = setTimeout(() => {
      logger.error('shutdown timed out');
      process.exit(1);
    }, config.shutdownTimeoutMs + 2000);
    force.unref();
    service.stop().then(
      (clean) => {
        logger.info({ clean }, 'stopped');
        process.exit(clean ? 0 : 1);
      },
      (error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
} catch (error) {
  logger.fatal({ err: error }, 'could not start');
  process.exit(1);
}
