/** Reads a topic's stored events through the API, as a shipper's user would see them. */
import type { StoredEvent } from '../../src/log-event.js';
import { request } from './http.js';

/** Every stored event of `topic` (up to 1000), through GET /events. */
export async function topicEvents(base: string, topic: string): Promise<StoredEvent[]> {
  const reply = await request<StoredEvent[]>(
    `${base}/events?topic=${encodeURIComponent(topic)}&limit=1000`,
  );
  if (reply.status !== 200) throw new Error(`GET /events answered ${reply.status}`);
  return reply.body;
}
