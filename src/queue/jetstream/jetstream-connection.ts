/**
 * The NATS side of the JetStream queue: one connection that knows whether it is up, and the one
 * place NATS and JetStream failures become the registry's errors.
 */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { JetStreamApiError } from '@nats-io/jetstream';
import { AggregatorError, QueueUnavailableError } from '../../errors.js';

/** A NATS connection and whether it is connected right now (so a publish fails fast when not). */
export interface LiveConnection {
  readonly nc: NatsConnection;
  connected(): boolean;
}

/**
 * Opens a connection to `url` (nats://host:port, several separated by commas) that reconnects
 * forever; rejects with QueueUnavailableError if the first connection fails.
 */
export async function connectNats(url: string, name: string): Promise<LiveConnection> {
  let nc: NatsConnection;
  try {
    nc = await connect({
      servers: url.split(',').map((s) => s.trim()),
      name,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      timeout: 5000,
    });
  } catch (error) {
    throw new QueueUnavailableError(error);
  }
  let up = true;
  void (async () => {
    for await (const status of nc.status()) {
      if (status.type === 'disconnect' || status.type === 'reconnecting') up = false;
      else if (status.type === 'reconnect') up = true;
    }
  })().catch(() => undefined);
  return { nc, connected: () => up && !nc.isClosed() };
}

/**
 * JetStream API error codes meaning the stream is at its limits (discard new): a full queue.
 * 10077: "maximum messages exceeded", 10047/10023: insufficient resources / storage.
 */
const FULL_CODES = new Set([10077, 10047, 10023, 10054]);

/** The one place NATS failures become the registry's errors. */
export function mapNatsError(error: unknown, retryAfterSeconds = 1): Error {
  if (error instanceof AggregatorError) return error;
  const message = error instanceof Error ? error.message : String(error);
  if (
    (error instanceof JetStreamApiError && FULL_CODES.has(error.code)) ||
    /maximum (messages|bytes|messages per subject) exceeded|insufficient resources/i.test(message)
  ) {
    return new AggregatorError(
      'AGG_ERR_QUEUE_FULL',
      'the JetStream stream is full; retry later',
      [],
      {
        cause: error,
        retryAfterSeconds,
      },
    );
  }
  // Anything else between us and the server (no responders, timeouts, a closed or reconnecting
  // connection, a stream without a leader) means the queue cannot be reached right now.
  return new QueueUnavailableError(error);
}
