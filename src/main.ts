/**
 * Process entry: read the configuration, start the roles it names, stop cleanly on SIGTERM or
 * SIGINT (a second signal exits at once, except in a forked worker).
 */
import { pino } from 'pino';
import { ConfigError, loadConfig, type Config } from './config.js';
import { startService, type Service } from './service.js';
import { startTracing } from './tracing.js';
import { announceWorkerReady } from './worker/worker-ipc.js';

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

const logger = pino({
  level: config.logLevel,
  base: { pid: process.pid, role: config.role },
  // Keys are never written, whatever a future log line includes.
  redact: ['req.headers.authorization', 'req.headers["x-api-key"]'],
});

let service: Service | undefined;
// Spans are sent in the background; stopping flushes what is left.
const stopTracing = startTracing(config.otelEndpoint);
let signals = 0;

const forked = process.send !== undefined;

function stop(signal: NodeJS.Signals): void {
  signals++;
  // A forked worker hears of one shutdown several ways (the parent's SIGTERM, a signal to the
  // whole process group, the channel closing); only the first counts, the timeout bounds it.
  if (forked && signals > 1) return;
  if (signals > 1) {
    logger.warn({ signal }, 'second signal: exiting now');
    process.exit(1);
  }
  if (service === undefined) {
    // Still starting: nothing was accepted yet, so there is nothing to finish.
    logger.info({ signal }, 'stopping before the start completed');
    process.exit(0);
  }
  logger.info({ signal }, 'stopping: no new requests, finishing the batches in hand');
  const force = setTimeout(() => {
    logger.error('shutdown timed out');
    process.exit(1);
  }, config.shutdownTimeoutMs + 2000);
  force.unref();
  service.stop().then(
    async (clean) => {
      await stopTracing().catch(() => undefined);
      logger.info({ clean }, 'stopped');
      process.exit(clean ? 0 : 1);
    },
    (error: unknown) => {
      logger.error({ err: error }, 'shutdown failed');
      process.exit(1);
    },
  );
}

// Handlers come first, so a signal during the start is not lost.
process.on('SIGTERM', stop);
if (!forked) {
  process.on('SIGINT', stop);
} else {
  // A worker process forked by the API process: Ctrl-C reaches the whole process group, and the
  // parent passes SIGTERM on itself; if the parent dies (even by kill -9) the IPC channel closes,
  // and the worker stops instead of running on as an orphan.
  process.on('SIGINT', () => undefined);
  // A failed message to the parent would otherwise throw from the channel as an uncaught error.
  process.on('error', (error) => logger.warn({ err: error }, 'parent channel error'));
  process.on('disconnect', () => stop('SIGTERM'));
  // The parent may have died while this process was still loading its modules.
  if (!process.connected) stop('SIGTERM');
}

try {
  service = await startService(config, logger);
  // A forked worker tells its parent it has started: from now on it may hold batches.
  announceWorkerReady();
} catch (error) {
  logger.fatal({ err: error }, 'could not start');
  process.exit(1);
}
