/**
 * Group commit of atomic applies (src/store/sql/apply-groups.ts): requests that arrive while
 * statements run go together in the next one, within the limits, and each gets its own outcomes
 * back; a group the database refuses is retried request by request. The runner here answers as
 * APPLY_ACCEPTED_GROUP does (one row per event, by request); the SQL itself is covered by the
 * Store contract suite on both stores.
 */
import { describe, expect, it } from 'vitest';
import {
  AcceptedApplyGroups,
  type GroupOutcomeRow,
  type GroupLimits,
} from '../../src/store/sql/apply-groups.js';

const body = (ids: string[]) =>
  Buffer.from(JSON.stringify({ events: ids.map((event_id) => ({ event_id })) }));

/** A runner that records each statement's requests and stores first copies, like the SQL. */
function recordingRunner(refuse = (_id: string) => false) {
  const statements: string[][][] = [];
  const stored = new Set<string>();
  const run = async (bodies: Buffer): Promise<GroupOutcomeRow[]> => {
    await new Promise((r) => setTimeout(r, 5));
    const requests = (JSON.parse(bodies.toString()) as { events: { event_id: string }[] }[]).map(
      (b) => b.events.map((e) => e.event_id),
    );
    statements.push(requests);
    if (requests.flat().some(refuse)) throw new Error('refused');
    return requests.flatMap((ids, r) =>
      ids.map((id, i) => {
        const kind = stored.has(id) ? ('D' as const) : ('S' as const);
        stored.add(id);
        return { request: r + 1, index: i + 1, kind, first_at: null };
      }),
    );
  };
  return { run, statements };
}

const limits = (over: Partial<GroupLimits> = {}): GroupLimits => ({
  inFlight: 1,
  maxEvents: 1000,
  maxBytes: 1 << 20,
  ...over,
});

describe('group commit of atomic applies', () => {
  it('applies a lone request at once, and the requests arriving meanwhile together', async () => {
    const { run, statements } = recordingRunner();
    const groups = new AcceptedApplyGroups(run, limits());
    const answers = await Promise.all(
      Array.from({ length: 10 }, (_, i) => groups.apply(body([`e${i}`, 'x']), 2, 64)),
    );
    expect(statements.map((s) => s.length)).toEqual([1, 9]);
    expect(answers.map((a) => a.map((o) => o.outcome))).toEqual([
      ['stored', 'stored'],
      ...Array.from({ length: 9 }, () => ['stored', 'duplicate']),
    ]);
  });

  it('keeps a statement within the event limit; a larger request goes alone', async () => {
    const { run, statements } = recordingRunner();
    const groups = new AcceptedApplyGroups(run, limits({ maxEvents: 4 }));
    await Promise.all([
      groups.apply(body(['a']), 1, 64),
      groups.apply(body(['b', 'c']), 2, 64),
      groups.apply(body(['d', 'e']), 2, 64),
      groups.apply(body(['f', 'g', 'h', 'i', 'j']), 5, 64),
    ]);
    expect(statements).toEqual([
      [['a']],
      [
        ['b', 'c'],
        ['d', 'e'],
      ],
      [['f', 'g', 'h', 'i', 'j']],
    ]);
  });

  it('a refused group is retried request by request: only the refused request fails', async () => {
    const { run, statements } = recordingRunner((id) => id === 'bad');
    const groups = new AcceptedApplyGroups(run, limits());
    const answers = await Promise.allSettled([
      groups.apply(body(['first']), 1, 64),
      groups.apply(body(['ok1']), 1, 64),
      groups.apply(body(['bad']), 1, 64),
      groups.apply(body(['ok2']), 1, 64),
    ]);
    expect(answers.map((a) => a.status)).toEqual([
      'fulfilled',
      'fulfilled',
      'rejected',
      'fulfilled',
    ]);
    expect(statements).toEqual([
      [['first']],
      [['ok1'], ['bad'], ['ok2']],
      [['ok1']],
      [['bad']],
      [['ok2']],
    ]);
  });
});
