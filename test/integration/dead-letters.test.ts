/**
 * A message the database refuses (a poison message) must not block the queue: it goes to the
 * dead-letter table with the reason, and the messages around it are stored. The API refuses such
 * data at the door, so the poison is put straight into the queue through its port, as a message
 * from an older or buggy publisher path would arrive.
 */
import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { event, publish, request, waitForDrain } from '../helpers/http.js';
import {
  createResources,
  startTestService,
  suiteBackends,
  type TestResources,
  type TestService,
} from '../helpers/test-service.js';

for (const backend of suiteBackends()) {
  describe.skipIf(backend.skip !== undefined)(
    `dead letters on ${backend.name}${backend.skip ? ` (SKIPPED: ${backend.skip})` : ''}`,
    () => {
      let resources: TestResources | undefined;
      const services: TestService[] = [];
      afterEach(async () => {
        for (const s of services.splice(0)) await s.stop();
        await resources?.dispose();
      });

      it('a poison message is parked with its reason and never blocks the ones behind it', async () => {
        resources = await createResources(backend.name);
        const topic = `t-${randomUUID().slice(0, 8)}`;
        // One process: PGlite's data directory belongs to a single process.
        const api = await startTestService(backend.name, {}, resources);
        services.push(api);
        expect((await publish(api.url, [event(topic, 1), event(topic, 2)])).status).toBe(200);
        const poison = JSON.stringify({
          events: [
            { topic, event_id: 'p1', timestamp: 'not a date', source: 's', payload: {} },
            { topic, event_id: 'p2', timestamp: '2024-01-01T00:00:00Z', source: 's', payload: {} },
          ],
        });
        await api.service.queue.enqueue({ body: poison, eventCount: 2 });
        expect((await publish(api.url, [event(topic, 3)])).status).toBe(200);

        const s = await waitForDrain(api.url, 3, 30_000);
        expect(s).toMatchObject({ received: 3, unique_processed: 3, duplicate_dropped: 0 });
        const q = await request<{ queue_size: number }>(`${api.url}/queue/stats`);
        expect(q.body.queue_size).toBe(0);
        expect(await api.service.store.deadLetterCount()).toBe(1);
        // The whole message is parked: its valid event p2 is not stored on its own.
        const stored = await request<{ event_id: string }[]>(`${api.url}/events?topic=${topic}`);
        expect(stored.body.map((e) => e.event_id).sort()).toEqual(['1', '2', '3']);
        // An operator sees it, with the database's reason and the message as queued.
        const listed = await request<{
          total: number;
          dead_letters: { message_id: string; reason: string; body: string }[];
        }>(`${api.url}/dead-letters`);
        expect(listed.body.total).toBe(1);
        const letter = listed.body.dead_letters[0];
        expect(letter?.reason).toMatch(/refused.*not a date|invalid input syntax/i);
        expect(letter?.body).toMatch(/"event_id": ?"p1"/);
        expect(letter?.message_id).toMatch(
          backend.name.endsWith('redis') ? /:stream\/\d+-\d+$/ : /^inbox-\d+$/,
        );
      });
    },
  );
}
