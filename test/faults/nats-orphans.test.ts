/**
 * Messages a work-queue stream keeps below its consumer's acknowledgement floor. After nats-server
 * is killed, the consumer's floor can come back persisted past messages whose removal was not: the
 * server never delivers them again, and the queue depth would count them forever (seen with
 * nats-server 2.9 under the kill -9 of nats-crash.test.ts). The test makes that state on purpose
 * with a private nats-server: it keeps a copy of the stream's message blocks, lets the messages be
 * acknowledged (one batch applied by the service, one acknowledged without being applied, as if
 * the store had lost it), stops the server, puts the old blocks back and starts it again. The
 * queue's maintenance must then apply what was never applied, count nothing twice and empty the
 * stream.
 */
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import { AckPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { afterEach, describe, expect, it } from 'vitest';
import type { AcceptedBatch } from '../../src/log-event.js';
import { CONSUMER, JetStreamQueue } from '../../src/queue/jetstream/jetstream-queue.js';
import { openPgliteStore } from '../../src/store/pglite/pglite-store.js';
import type { Store } from '../../src/store/store.js';
import { faultBackends, suiteTitle } from '../helpers/fault-resources.js';
import { startPrivateNats, type PrivateNats } from '../helpers/private-nats.js';
import { createResources, type TestResources } from '../helpers/test-service.js';

const STREAM = 'ORPHANS';

/** Waits until the queue reaches its restarted server again. */
async function reconnected(queue: JetStreamQueue): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      await queue.ping();
      return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await sleep(100);
    }
  }
}

/** An accepted batch of `count` events of topic `topic`, as the API would queue it. */
function batch(topic: string, count: number): AcceptedBatch {
  const events = Array.from({ length: count }, (_, i) => ({
    topic,
    event_id: `${topic}-${i}`,
    timestamp: '2026-01-01T00:00:00Z',
    source: 'orphans',
    payload: { i },
  }));
  return { body: JSON.stringify({ events }), eventCount: count };
}

for (const backend of faultBackends((b) => b === 'postgres-jetstream', { focused: true })) {
  describe.skipIf(backend.skip !== undefined)(
    suiteTitle('JetStream messages left below the acknowledgement floor', backend),
    () => {
      let nats: PrivateNats | undefined;
      let resources: TestResources | undefined;
      let store: Store | undefined;
      let queue: JetStreamQueue | undefined;
      afterEach(async () => {
        await queue?.close();
        await store?.close();
        await resources?.dispose();
        await nats?.dispose();
      });

      it('are applied once (or found applied) and deleted by maintenance', async () => {
        nats = await startPrivateNats();
        resources = await createResources('pglite-inbox');
        store = await openPgliteStore(resources.env.DATA_DIR ?? '');
        const warnings: string[] = [];
        queue = await JetStreamQueue.open(store, {
          url: nats.url,
          stream: STREAM,
          replicas: 1,
          maxEvents: 10_000,
          maxBytes: 0,
          maxDeliver: 20,
          retryAfterSeconds: 1,
          batchMessages: 10,
          blockMs: 100,
          claimIdleMs: 1000,
          ledgerRetentionMs: 60_000,
          onWarning: (message) => warnings.push(message),
        });
        const applied = await queue.enqueue(batch('applied', 3));
        await queue.enqueue(batch('lost', 2));
        await queue.enqueue(batch('lost-too', 4));
        expect(await queue.depth()).toEqual({ messages: 3, events: 9 });

        // The stream's message blocks while all three messages are in it.
        await nats.stop();
        const blocks = join(nats.storeDir, 'jetstream', '$G', 'streams', STREAM, 'msgs');
        const saved = mkdtempSync(join(tmpdir(), 'agg-nats-blocks-'));
        cpSync(blocks, saved, { recursive: true });
        await nats.start();
        await reconnected(queue);

        // The first message applied by the service, then every message acknowledged by a client
        // that applies nothing: the other two are what a store that lost them would leave.
        const first = await store.applyBatches(
          [{ id: queue.receiptKey(applied), body: String(batch('applied', 3).body) }],
          0,
        );
        expect(first.received).toBe(3);
        const nc = await connect({ servers: nats.url });
        const consumer = await jetstream(nc).consumers.get(STREAM, CONSUMER);
        const fetched = await consumer.fetch({ max_messages: 3, expires: 2000 });
        let acknowledged = 0;
        for await (const msg of fetched) {
          await msg.ackAck();
          acknowledged += 1;
        }
        await nc.close();
        expect(acknowledged).toBe(3);
        expect(await queue.depth()).toEqual({ messages: 0, events: 0 });

        // The removals forgotten, the acknowledgements kept.
        await nats.stop();
        rmSync(blocks, { recursive: true });
        cpSync(saved, blocks, { recursive: true });
        rmSync(saved, { recursive: true });
        await nats.start();
        await reconnected(queue);
        const nc2 = await connect({ servers: nats.url });
        const info = await (await jetstreamManager(nc2)).consumers.info(STREAM, CONSUMER);
        await nc2.close();
        expect(info.config.ack_policy).toBe(AckPolicy.Explicit);
        expect(info.ack_floor.stream_seq, 'the consumer remembers every acknowledgement').toBe(3);
        expect(info.num_pending, 'and will deliver nothing').toBe(0);
        expect(await queue.depth(), 'the orphans are still counted').toEqual({
          messages: 3,
          events: 9,
        });

        await queue.maintain();
        expect(await queue.depth()).toEqual({ messages: 0, events: 0 });
        const stats = await store.counters();
        expect(stats.received, 'the applied message is not counted again').toBe(9);
        expect(stats.uniqueProcessed).toBe(9);
        expect(stats.duplicateDropped).toBe(0);
        expect(warnings.some((w) => w.includes('3 message(s)'))).toBe(true);

        // A second pass finds nothing.
        await queue.maintain();
        expect((await store.counters()).received).toBe(9);
      }, 60_000);
    },
  );
}
