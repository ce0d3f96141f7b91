/**
 * One worker's consumer of the JetStream queue: pulls messages from the shared durable consumer,
 * applies them under the poison-message policy and acknowledges each one (and waits for the
 * server to confirm) only after the store committed it.
 *
 * On a failure that is not the message's fault (the store is away), the batch stays in this
 * consumer's hands and is retried on the next call, telling the server it is still being worked
 * on, so a store outage does not use up the messages' deliveries. A message delivered
 * `maxDeliver` times (each earlier delivery ended without an acknowledgement: its worker died)
 * is parked in the dead-letter table without being applied again.
 */
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';
import type { Consumer, ConsumerMessages, JsMsg } from '@nats-io/jetstream';
import { consumerShard } from '../../store/counter-shards.js';
import type { DeadLetterStore, EventApplier, QueuedBatch } from '../../store/store.js';
import { tracedApply } from '../../tracing.js';
import { applyDeliveredWithPoisonPolicy } from '../poison-policy.js';
import {
  addResults,
  bodyBytes,
  EMPTY_RESULT,
  groupSize,
  type ConsumeResult,
  type QueueConsumer,
} from '../queue.js';
import { mapNatsError } from './jetstream-connection.js';

/** What a consumer needs of its queue. */
export interface ConsumerAccess {
  /** The shared durable consumer (the stream and consumer are created first if missing). */
  consumer(): Promise<Consumer>;
  /** The ledger id of a message, by its Nats-Msg-Id. */
  receiptKey(msgId: string): string;
}

export interface JetStreamConsumerOptions {
  readonly batchMessages: number;
  readonly blockMs: number;
  readonly maxDeliver: number;
  readonly onWarning?: ((message: string, error?: unknown) => void) | undefined;
}

/** A delivered message as a queue message. */
interface Delivered extends QueuedBatch {
  readonly msg: JsMsg;
  readonly count: number;
}

/** The client asks the server for messages at most this long (its minimum is one second). */
const PULL_EXPIRES_MS = 5000;
const TIMED_OUT = Symbol('timed out');

export class JetStreamConsumer implements QueueConsumer {
  private readonly shard: number;
  private messages: ConsumerMessages | undefined;
  private iterator: AsyncIterator<JsMsg> | undefined;
  /** A read of the iterator that a timeout left waiting: its message is taken by the next read. */
  private pendingRead: Promise<IteratorResult<JsMsg>> | undefined;
  /** Messages read and not acknowledged after a failure: retried first. */
  private held: Delivered[] = [];
  private closed = false;

  constructor(
    readonly name: string,
    private readonly queue: ConsumerAccess,
    private readonly store: EventApplier & DeadLetterStore,
    private readonly options: JetStreamConsumerOptions,
    private readonly onClose: () => void,
  ) {
    this.shard = consumerShard(name);
  }

  async processNext(signal: AbortSignal): Promise<ConsumeResult> {
    let batch = this.held;
    this.held = [];
    if (batch.length > 0) {
      for (const d of batch) d.msg.working();
    } else {
      batch = await this.read(signal);
    }
    let total = EMPTY_RESULT;
    let rest = batch;
    try {
      while (rest.length > 0) {
        const take = groupSize(rest, rest.length, (d) => bodyBytes(d.body));
        const chunk = rest.slice(0, take);
        total = addResults(total, await this.apply(chunk));
        await this.ack(chunk);
        rest = rest.slice(take);
      }
      return total;
    } catch (error) {
      this.held = rest;
      throw error;
    }
  }

  /** Up to a batch of messages: waits up to blockMs for the first, then takes what has arrived. */
  private async read(signal: AbortSignal): Promise<Delivered[]> {
    if (this.iterator === undefined) {
      try {
        const consumer = await this.queue.consumer();
        this.messages = await consumer.consume({
          max_messages: this.options.batchMessages,
          expires: PULL_EXPIRES_MS,
        });
        this.iterator = this.messages[Symbol.asyncIterator]();
      } catch (error) {
        throw mapNatsError(error);
      }
    }
    const batch: Delivered[] = [];
    // The wait ends with the first message too: a timer left running would keep its listener on
    // `signal` for blockMs, and fast reads would pile them up.
    const waited = new AbortController();
    const stop = () => waited.abort();
    signal.addEventListener('abort', stop, { once: true });
    let first: JsMsg | undefined;
    try {
      first = await this.next(
        sleep(this.options.blockMs, TIMED_OUT, { signal: waited.signal }).catch(() => TIMED_OUT),
      );
    } finally {
      signal.removeEventListener('abort', stop);
      waited.abort();
    }
    if (first === undefined) return batch;
    batch.push(toDelivered(first, this.queue));
    while (batch.length < this.options.batchMessages) {
      const more = await this.next(nextTurn(TIMED_OUT));
      if (more === undefined) break;
      batch.push(toDelivered(more, this.queue));
    }
    return batch;
  }

  /** The next message, or undefined if `timeout` settles first (the read stays pending). */
  private async next(timeout: Promise<typeof TIMED_OUT>): Promise<JsMsg | undefined> {
    const iterator = this.iterator;
    if (iterator === undefined) return undefined;
    this.pendingRead ??= iterator.next();
    const result = await Promise.race([this.pendingRead, timeout]);
    if (result === TIMED_OUT) return undefined;
    this.pendingRead = undefined;
    if (result.done === true) {
      // The subscription ended (closed, or the consumer was deleted): start again next time.
      this.iterator = undefined;
      this.messages = undefined;
      return undefined;
    }
    return result.value;
  }

  /**
   * Applies messages in one transaction under the poison-message policy; messages past their
   * deliveries are parked without being applied.
   */
  private async apply(chunk: Delivered[]): Promise<ConsumeResult> {
    const exhausted = chunk.filter(
      (d) => this.options.maxDeliver > 0 && d.msg.info.deliveryCount >= this.options.maxDeliver,
    );
    let total = EMPTY_RESULT;
    for (const d of exhausted) {
      await this.store.deadLetter({
        messageId: d.id,
        body: d.body,
        reason: `delivered ${d.msg.info.deliveryCount} times without an acknowledgement (each delivery ended its worker)`,
        eventCount: d.count,
      });
      this.options.onWarning?.(
        `message ${d.id} moved to dead letters after ${d.msg.info.deliveryCount} deliveries`,
      );
      total = addResults(total, { ...EMPTY_RESULT, deadLettered: 1 });
    }
    const messages = chunk.filter((d) => !exhausted.includes(d));
    if (messages.length === 0) return total;
    const result = await tracedApply(
      messages.map((d) => d.traceparent),
      () =>
        applyDeliveredWithPoisonPolicy(this.store, messages, this.shard, this.options.onWarning),
    );
    return addResults(total, result);
  }

  /** Acknowledges messages and waits for the server to confirm each acknowledgement. */
  private async ack(chunk: Delivered[]): Promise<void> {
    try {
      await Promise.all(chunk.map((d) => d.msg.ackAck()));
    } catch (error) {
      throw mapNatsError(error);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.onClose();
    // Messages this consumer holds go back to the others now rather than after the ack wait.
    for (const d of this.held) d.msg.nak();
    this.held = [];
    // The iterator finishes closing only once read to its end; a read left waiting by a timeout
    // ends with it, and a message it still brings goes back at once too.
    const closing = this.messages?.close();
    void closing?.catch(() => undefined);
    const pending = this.pendingRead;
    this.pendingRead = undefined;
    this.iterator = undefined;
    this.messages = undefined;
    if (pending !== undefined) {
      const last = await Promise.race([pending, sleep(100, undefined)]).catch(() => undefined);
      if (last !== undefined && last.done !== true) last.value.nak();
    }
  }
}

function toDelivered(msg: JsMsg, queue: ConsumerAccess): Delivered {
  const subject = msg.subject;
  const msgId = msg.headers?.get('Nats-Msg-Id') ?? `seq-${msg.seq}`;
  return {
    msg,
    id: queue.receiptKey(msgId),
    body: msg.string(),
    traceparent: msg.headers?.get('traceparent') || undefined,
    count: Number(subject.slice(subject.lastIndexOf('.') + 1)),
  };
}
