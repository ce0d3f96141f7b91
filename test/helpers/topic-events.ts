/** Reads a topic's stored events through the API, as a shipper's user would see them. */
import type { LogEvent } from '../../src/log-event.js';
import { request } from './http.js';

/** A stored event as GET /events answers it, its payload parsed by the test. */
export type ListedEvent = LogEvent & { readonly id: number; readonly processed_at: string };

/** Every stored event of `topic` (up to 1000), through GET /events. */
export async function topicEvents(base: string, topic: string): Promise<ListedEvent[]> {
  const reply = await request<ListedEvent[]>(
    `${base}/events?topic=${encodeURIComponent(topic)}&limit=1000`,
  );
  if (reply.status !== 200) throw new Error(`GET /events answered ${reply.status}`);
  return reply.body;
}

/** Per-source counts of a topic, through GET /topics/{topic}/dedup. */
export async function sourceCounts(
  base: string,
  topic: string,
): Promise<{ source: string; events: number; unique: number; duplicates: number }[]> {
  const reply = await request<{
    sources: { source: string; events: number; unique: number; duplicates: number }[];
  }>(`${base}/topics/${encodeURIComponent(topic)}/dedup`);
  if (reply.status !== 200) throw new Error(`GET /topics/…/dedup answered ${reply.status}`);
  return reply.body.sources;
}

/** Whether GET /stats/verify finds the counting equations hold. */
export async function verifiedConsistent(base: string): Promise<boolean> {
  const reply = await request<{ consistent: boolean }>(`${base}/stats/verify`);
  return reply.body.consistent;
}
