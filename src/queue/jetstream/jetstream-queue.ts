/**
 * Queue backend on NATS JetStream. One work-queue stream (file storage, `replicas` copies) holds
 * one message per accepted request; every worker of every process pulls from one durable consumer
 * with explicit acknowledgement, sent only after the store committed. A message a dead worker
 * left unacknowledged is redelivered after `claimIdleMs` (the consumer's ack_wait); the store's
 * ledger makes a redelivery count once.
 *
 * The subject of a message carries its event count (`<stream>.n.<count>`), so the depth in events
 * is read from the stream itself (per-subject message counts) and is shared by every process.
 * The bound: a publish is refused when the stream already holds `maxEvents` events (checked
 * against that shared depth; concurrent publishers may pass it by what they publish at the same
 * instant), and the stream's own limits (max messages = maxEvents, max bytes, discard new) refuse
 * a message at the server, atomically.
 */
import { randomUUID } from 'node:crypto';
import {
  AckPolicy,
  DiscardPolicy,
  jetstream,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
  type JetStreamClient,
  type JetStreamManager,
} from '@nats-io/jetstream';
import { headers } from '@nats-io/transport-node';
import { AggregatorError, QueueUnavailableError } from '../../errors.js';
import type { AcceptedBatch } from '../../log-event.js';
import { consumerShard } from '../../store/counter-shards.js';
import type { DeadLetterStore, EventApplier, ReceiptStore } from '../../store/store.js';
import { applyDeliveredWithPoisonPolicy } from '../poison-policy.js';
import type { DurabilityInfo, Queue, QueueConsumer, QueueDepth } from '../queue.js';
import { connectNats, mapNatsError, type LiveConnection } from './jetstream-connection.js';
import { JetStreamConsumer } from './jetstream-consumer.js';

export interface JetStreamQueueOptions {
  /** nats://host:port (several separated by commas). */
  readonly url: string;
  /** Stream name; also the first token of its subjects. */
  readonly stream: string;
  /** Copies of each message in a NATS cluster (1 on a single server). */
  readonly replicas: number;
  readonly maxEvents: number;
  /** The stream's byte limit; 0 for none. */
  readonly maxBytes: number;
  /** Deliveries of a message after which it is parked instead of applied (each ended a worker). */
  readonly maxDeliver: number;
  readonly retryAfterSeconds: number;
  readonly batchMessages: number;
  readonly blockMs: number;
  /** The consumer's ack_wait: how long a delivered message stays with its worker. */
  readonly claimIdleMs: number;
  readonly ledgerRetentionMs: number;
  readonly onWarning?: (message: string, error?: unknown) => void;
}

/** What the JetStream queue needs of the store: applying, parking, pruning the ledger. */
export type JetStreamStore = EventApplier & DeadLetterStore & ReceiptStore;

/** The durable consumer every worker shares. */
export const CONSUMER = 'workers';
/** How long the server remembers a Nats-Msg-Id to drop a re-sent publish. */
const DUPLICATE_WINDOW_MS = 120_000;
const PUBLISH_TIMEOUT_MS = 5000;
/** A message id as enqueue returns it: the stream sequence and the Nats-Msg-Id. */
const MESSAGE_ID = /^(\d+)\.([0-9a-f-]{36})$/;
/** Orphaned messages (see reclaimOrphans) taken per maintenance pass at most. */
const ORPHANS_PER_PASS = 1000;

export class JetStreamQueue implements Queue {
  readonly kind = 'jetstream' as const;
  private readonly consumers = new Set<JetStreamConsumer>();
  private ready: Promise<void> | undefined;

  private constructor(
    private readonly conn: LiveConnection,
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly store: JetStreamStore,
    private readonly options: JetStreamQueueOptions,
  ) {}

  /** Connects and creates (or updates) the stream and the consumer. */
  static async open(
    store: JetStreamStore,
    options: JetStreamQueueOptions,
  ): Promise<JetStreamQueue> {
    const conn = await connectNats(options.url, `aggregator-${options.stream}`);
    try {
      const jsm = await jetstreamManager(conn.nc);
      const queue = new JetStreamQueue(conn, jetstream(conn.nc), jsm, store, options);
      await queue.ensureStream();
      return queue;
    } catch (error) {
      await conn.nc.close().catch(() => undefined);
      throw mapNatsError(error);
    }
  }

  /** The subject every message of this stream is published under, by its event count. */
  private subject(eventCount: number): string {
    return `${this.options.stream}.n.${eventCount}`;
  }

  /** Creates the stream and the durable consumer if missing (again after the server lost them). */
  ensureStream(force = false): Promise<void> {
    if (this.ready === undefined || force) {
      this.ready = this.createStream().catch((error: unknown) => {
        this.ready = undefined;
        throw mapNatsError(error);
      });
    }
    return this.ready;
  }

  private async createStream(): Promise<void> {
    const o = this.options;
    const config = {
      name: o.stream,
      subjects: [`${o.stream}.n.*`],
      retention: RetentionPolicy.Workqueue,
      storage: StorageType.File,
      num_replicas: o.replicas,
      max_msgs: o.maxEvents,
      max_bytes: o.maxBytes > 0 ? o.maxBytes : -1,
      discard: DiscardPolicy.New,
      duplicate_window: DUPLICATE_WINDOW_MS * 1_000_000,
    };
    try {
      await this.jsm.streams.info(o.stream);
      await this.jsm.streams.update(o.stream, config);
    } catch (error) {
      if (!isNotFound(error)) throw error;
      await this.jsm.streams.add(config);
    }
    const consumer = {
      durable_name: CONSUMER,
      ack_policy: AckPolicy.Explicit,
      ack_wait: o.claimIdleMs * 1_000_000,
      max_deliver: o.maxDeliver,
      max_ack_pending: -1,
    };
    try {
      await this.jsm.consumers.info(o.stream, CONSUMER);
      await this.jsm.consumers.update(o.stream, CONSUMER, consumer);
    } catch (error) {
      if (!isNotFound(error)) throw error;
      await this.jsm.consumers.add(o.stream, consumer);
    }
  }

  async enqueue(batch: AcceptedBatch): Promise<string> {
    if (!this.conn.connected()) throw new QueueUnavailableError(new Error('NATS disconnected'));
    await this.ensureStream();
    const depth = await this.depth();
    if (depth.events > 0 && depth.events + batch.eventCount > this.options.maxEvents) {
      throw new AggregatorError('AGG_ERR_QUEUE_FULL', undefined, [], {
        retryAfterSeconds: this.options.retryAfterSeconds,
      });
    }
    // The Nats-Msg-Id makes a re-sent publish (after a lost acknowledgement) a no-op on the server
    // inside the duplicate window; the ledger knows the message by it.
    const msgID = randomUUID();
    try {
      const h = headers();
      if (batch.traceparent !== undefined) h.set('traceparent', batch.traceparent);
      const ack = await this.js.publish(this.subject(batch.eventCount), batch.body, {
        msgID,
        timeout: PUBLISH_TIMEOUT_MS,
        headers: h,
      });
      return `${ack.seq}.${msgID}`;
    } catch (error) {
      throw mapNatsError(error, this.options.retryAfterSeconds);
    }
  }

  async depth(): Promise<QueueDepth> {
    try {
      const info = await this.jsm.streams.info(this.options.stream, {
        subjects_filter: `${this.options.stream}.n.*`,
      });
      let events = 0;
      for (const [subject, count] of Object.entries(info.state.subjects ?? {})) {
        events += Number(subject.slice(subject.lastIndexOf('.') + 1)) * count;
      }
      return { messages: info.state.messages, events };
    } catch (error) {
      throw mapNatsError(error);
    }
  }

  receiptKey(messageId: string): string {
    const match = MESSAGE_ID.exec(messageId);
    return `${this.options.stream}/${match?.[2] ?? messageId}`;
  }

  async isQueued(messageId: string): Promise<boolean> {
    const match = MESSAGE_ID.exec(messageId);
    if (match === null) return false;
    try {
      const msg = await this.jsm.streams.getMessage(this.options.stream, { seq: Number(match[1]) });
      return msg !== null && msg.header.get('Nats-Msg-Id') === match[2];
    } catch (error) {
      if (isNotFound(error)) return false;
      throw mapNatsError(error);
    }
  }

  createConsumer(name: string): QueueConsumer {
    const consumer = new JetStreamConsumer(
      name,
      {
        consumer: async () => {
          await this.ensureStream();
          return this.js.consumers.get(this.options.stream, CONSUMER);
        },
        receiptKey: (msgId) => `${this.options.stream}/${msgId}`,
      },
      this.store,
      this.options,
      () => this.consumers.delete(consumer),
    );
    this.consumers.add(consumer);
    return consumer;
  }

  /**
   * Ledger rows exist so a redelivered message is not applied twice; a message can come back only
   * while it is in the stream, so rows older than its oldest message (less the retention, a margin
   * for clock differences) can go.
   */
  async maintain(): Promise<void> {
    try {
      await this.ensureStream();
      await this.reclaimOrphans();
      const info = await this.jsm.streams.info(this.options.stream);
      let cutoff = Date.now() - this.options.ledgerRetentionMs;
      if (info.state.messages > 0) {
        const oldest = Date.parse(info.state.first_ts);
        if (Number.isFinite(oldest))
          cutoff = Math.min(cutoff, oldest - this.options.ledgerRetentionMs);
      }
      await this.store.pruneLedger(new Date(cutoff));
    } catch (error) {
      throw mapNatsError(error);
    }
  }

  /**
   * Takes care of messages the stream still holds at or below the consumer's acknowledgement
   * floor. On a work-queue stream an acknowledged message is removed, but after nats-server is
   * killed the consumer's floor can come back persisted past messages whose removal was not
   * (seen with nats-server 2.9): the server never delivers them again and they stay counted in
   * the depth forever. Each such message, oldest first, is applied under the poison-message
   * policy (a no-op by the ledger when it was applied before its acknowledgement, which is the
   * usual case) and then deleted from the stream. Resolves with the number deleted (at most
   * ORPHANS_PER_PASS per call); errors as the JetStream API calls (mapped by the caller).
   */
  async reclaimOrphans(): Promise<number> {
    const { stream } = this.options;
    const floor = (await this.jsm.consumers.info(stream, CONSUMER)).ack_floor.stream_seq;
    let reclaimed = 0;
    while (reclaimed < ORPHANS_PER_PASS) {
      const { state } = await this.jsm.streams.info(stream);
      if (state.messages === 0 || state.first_seq > floor) break;
      const seq = state.first_seq;
      const msg = await this.jsm.streams.getMessage(stream, { seq }).catch((error: unknown) => {
        if (isNotFound(error)) return null;
        throw error;
      });
      if (msg !== null) {
        const msgId = msg.header.get('Nats-Msg-Id') || `seq-${seq}`;
        const subject = msg.subject;
        await applyDeliveredWithPoisonPolicy(
          this.store,
          [
            {
              id: this.receiptKey(msgId),
              body: msg.string(),
              traceparent: msg.header.get('traceparent') || undefined,
              count: Number(subject.slice(subject.lastIndexOf('.') + 1)),
            },
          ],
          consumerShard(`${CONSUMER}-orphans`),
          this.options.onWarning,
        );
        await this.jsm.streams.deleteMessage(stream, seq, false).catch((error: unknown) => {
          if (!isNotFound(error)) throw error;
        });
      }
      reclaimed += 1;
    }
    if (reclaimed > 0) {
      this.options.onWarning?.(
        `${reclaimed} message(s) left in stream ${stream} at or below the consumer's acknowledgement floor ${floor} were applied (or found applied) and deleted`,
      );
    }
    return reclaimed;
  }

  async durability(): Promise<DurabilityInfo> {
    try {
      const info = await this.jsm.streams.info(this.options.stream);
      const replicas = info.config.num_replicas;
      // JetStream acknowledges a publish once a quorum of the replicas stored it; on one server the
      // file store is written but not fsynced at each message (sync_interval, 2 min by default).
      return replicas > 1
        ? { mode: `jetstream-file-r${replicas}`, survivesServerCrash: true }
        : { mode: 'jetstream-file-r1', survivesServerCrash: false };
    } catch (error) {
      throw mapNatsError(error);
    }
  }

  async ping(): Promise<void> {
    if (!this.conn.connected()) throw new QueueUnavailableError(new Error('NATS disconnected'));
    try {
      await this.jsm.getAccountInfo();
    } catch (error) {
      throw mapNatsError(error);
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.consumers].map((c) => c.close()));
    await this.conn.nc.close().catch(() => undefined);
  }
}

/** Whether a JetStream API error says the stream, consumer or message does not exist. */
export function isNotFound(error: unknown): boolean {
  const message = error instanceof Error ? error.message : String(error);
  return /not found|no message found/i.test(message);
}
