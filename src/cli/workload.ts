/**
 * Deterministic test workloads: `total` events of which exactly `round(total * dupRate)` repeat
 * an earlier key, spread over topics and shuffled, so a run knows its exact expected counts. A
 * share of the duplicates (`conflictRate`) carry a different payload: each on a key of its own
 * that has no other copy, so whichever copy arrives first, exactly one conflict per such key.
 */
import type { LogEvent } from '../log-event.js';

export interface WorkloadOptions {
  readonly total: number;
  /** Share of events that repeat a key already in the workload, 0 ≤ dupRate < 1. */
  readonly dupRate: number;
  readonly topics: readonly string[];
  readonly source?: string;
  readonly seed?: number;
  /** Prefix of the generated event ids, to keep runs apart. */
  readonly idPrefix?: string;
  /** Share of the duplicates whose payload differs from the original's, 0 ≤ conflictRate ≤ 1. */
  readonly conflictRate?: number;
}

export interface Workload {
  readonly events: LogEvent[];
  readonly unique: number;
  readonly duplicates: number;
  /** Duplicates that differ from their original (each a conflict). */
  readonly conflicts: number;
}

/** mulberry32: a small seeded PRNG, so a workload is the same on every run. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function makeWorkload(options: WorkloadOptions): Workload {
  const { total, dupRate, topics } = options;
  if (!(dupRate >= 0 && dupRate < 1)) throw new Error('dupRate must be in [0, 1)');
  if (topics.length === 0) throw new Error('at least one topic is needed');
  const rnd = random(options.seed ?? 42);
  const duplicates = Math.round(total * dupRate);
  const unique = total - duplicates;
  const prefix = options.idPrefix ?? 'evt';
  const base = Date.UTC(2024, 0, 1);
  const events: LogEvent[] = [];
  for (let i = 0; i < unique; i++) {
    events.push({
      topic: topics[i % topics.length] ?? 'default',
      event_id: `${prefix}-${i}`,
      timestamp: new Date(base + i * 1000).toISOString(),
      source: options.source ?? 'workload',
      payload: { seq: i, level: i % 10 === 0 ? 'error' : 'info', message: `event number ${i}` },
    });
  }
  const conflictRate = options.conflictRate ?? 0;
  if (!(conflictRate >= 0 && conflictRate <= 1)) throw new Error('conflictRate must be in [0, 1]');
  // Conflicting copies go to the first keys, one each; plain copies to the other keys.
  const conflicts = Math.round(duplicates * conflictRate);
  if (conflicts > unique || (conflicts === unique && conflicts < duplicates)) {
    throw new Error(
      `${conflicts} conflicting copies need as many keys, and the plain copies keys of their own: ` +
        `only ${unique} unique keys; lower dupRate or conflictRate`,
    );
  }
  for (let i = 0; i < conflicts; i++) {
    const original = events[i];
    if (original !== undefined) {
      events.push({ ...original, payload: { ...original.payload, changed: true } });
    }
  }
  const plainKeys = unique - conflicts;
  for (let i = conflicts; i < duplicates; i++) {
    const original = events[conflicts + Math.floor(rnd() * plainKeys)];
    if (original !== undefined) events.push({ ...original });
  }
  for (let i = events.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    const a = events[i];
    const b = events[j];
    if (a !== undefined && b !== undefined) {
      events[i] = b;
      events[j] = a;
    }
  }
  return { events, unique, duplicates, conflicts };
}

export function chunk<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
