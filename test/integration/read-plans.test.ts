/**
 * Reads that do not grow with the store: every query shape GET /events (and the histogram) runs is
 * planned by PostgreSQL as an index walk, never a sequential scan nor a sort of everything that
 * matches. The statements are the store's own (captured as it runs them), explained with
 * `EXPLAIN (FORMAT JSON)` on a database with enough rows, analysed, for the planner to choose as
 * it would on a large store.
 *
 * The events table is partitioned by day (migration 0009): the rows span two days, so every
 * listing merges the walks of several partitions' indexes, and a read bounded in time reads only
 * the partitions of its range (pruning). Index names are reported as the parent's.
 *
 * PostgreSQL only: PGlite plans the same SQL, but it is the embedded store for small volumes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GRANULE_EVENTS } from '../../src/search/granule-words.js';
import { migrated } from '../../src/store/migrate.js';
import { PgDriver } from '../../src/store/postgres/pg-driver.js';
import { listEvents } from '../../src/store/sql/events.js';
import { histogram } from '../../src/store/sql/histogram.js';
import { createPartitions, DEFAULT_PARTITION } from '../../src/store/sql/partitions.js';
import { applySearchIndexSetting, GRANULE_INDEX } from '../../src/store/sql/search-indexes.js';
import type { SqlDriver, SqlQueryable } from '../../src/store/sql-driver.js';
import type { EventQuery, HistogramQuery } from '../../src/store/store.js';
import { needsPostgres } from '../helpers/environment.js';
import { createResources, suiteBackends, type TestResources } from '../helpers/test-service.js';

const postgres = suiteBackends().find((b) => needsPostgres(b.name));

const ROWS = 150_000;
/** Rows are one second apart from here, spread over 10 topics and 50 sources. */
const START = '2026-01-01T00:00:00Z';
/**
 * "Now" for the listings, near the newest rows: newest-first listings look at the last day before
 * it first (events.ts), so their windows are planned and checked too.
 */
const NOW = Date.parse('2026-01-02T18:00:00Z');

interface PlanNode {
  'Node Type': string;
  'Index Name'?: string;
  'Index Cond'?: string;
  'Relation Name'?: string;
  Plans?: PlanNode[];
}

/** Every node of a plan tree, depth first. */
function nodes(plan: PlanNode): PlanNode[] {
  return [plan, ...(plan.Plans ?? []).flatMap(nodes)];
}

/** Partitions without rows (the days around the data): a sequential scan of one reads nothing. */
const emptyPartitions = new Set<string>();

/** The node types of a plan, a sequential scan of an empty partition left out. */
function nodeTypes(plan: PlanNode): string[] {
  return nodes(plan)
    .filter(
      (n) => !(n['Node Type'] === 'Seq Scan' && emptyPartitions.has(n['Relation Name'] ?? '')),
    )
    .map((n) => n['Node Type']);
}

/** Index name → the parent index it is the partition of, filled in beforeAll. */
const parentIndex = new Map<string, string>();

/** The plan with each partition's index named as its parent index on events. */
function asParents(plan: PlanNode): PlanNode {
  const name = plan['Index Name'];
  return {
    ...plan,
    ...(name === undefined ? {} : { 'Index Name': parentIndex.get(name) ?? name }),
    ...(plan.Plans === undefined ? {} : { Plans: plan.Plans.map(asParents) }),
  };
}

/** Runs statements for real and keeps the plan PostgreSQL chose for each. */
function explaining(db: SqlQueryable): { db: SqlQueryable; plans: PlanNode[] } {
  const plans: PlanNode[] = [];
  return {
    plans,
    db: {
      async query<Row>(text: string, params?: readonly unknown[]): Promise<Row[]> {
        const [explained] = await db.query<{ 'QUERY PLAN': { Plan: PlanNode }[] }>(
          `EXPLAIN (FORMAT JSON) ${text}`,
          params,
        );
        const plan = explained?.['QUERY PLAN'][0]?.Plan;
        if (plan !== undefined) plans.push(asParents(plan));
        return db.query<Row>(text, params);
      },
      exec: (sql: string) => db.exec(sql),
    },
  };
}

/** The index that finds the search granules of a search or a field filter directly. */
const CONTENT_INDEXES = ['event_granules_words_idx'];

/**
 * A sort is acceptable only of rows already bounded: the bounded scan's window (a CTE of at most
 * SCAN_WINDOW rows) or the matches a content index found.
 */
function boundedSort(sort: PlanNode): boolean {
  const below = nodes(sort).slice(1);
  return (
    below.some((n) => n['Node Type'] === 'CTE Scan') ||
    below.some((n) => CONTENT_INDEXES.includes(n['Index Name'] ?? ''))
  );
}

const page = { limit: 100, offset: 0 } as const;
const cursor = { timestamp: '2026-01-02T12:00:00.000000Z', id: 129_600 } as const;

/** Each listing shape, with the cursor page of each as well. */
const LISTINGS: Record<string, EventQuery> = {
  'newest first, all topics': { ...page },
  'newest first, one topic': { ...page, topic: 't3' },
  'oldest first, one topic': { ...page, topic: 't3', order: 'asc' },
  'by source': { ...page, source: 'host-7' },
  'by source within a topic': { ...page, topic: 't7', source: 'host-7' },
  'by time range': { ...page, since: '2026-01-02T00:00:00Z', until: '2026-01-02T06:00:00Z' },
  'by time range within a topic': {
    ...page,
    topic: 't3',
    since: '2026-01-02T00:00:00Z',
    until: '2026-01-02T06:00:00Z',
  },
  'deep offset': { ...page, topic: 't3', offset: 5000 },
};

/** md5-derived tokens of the generated rows, as the INSERT below writes them. */
const RARE = 'req-a9b7ba'; // 'req-' || substr(md5('1000'), 1, 6): the row g = 1000

/** Shapes with search terms or field filters, first page and cursor page. */
const SEARCHES: Record<string, EventQuery> = {
  'a rare token (1 match)': { ...page, terms: [RARE] },
  'a rare token in a topic': { ...page, topic: 't0', terms: [RARE] },
  'two common words in a topic': { ...page, topic: 't3', terms: ['handled', 'request'] },
  'a common field': { ...page, fields: [{ path: ['http', 'status'], value: 500 }] },
  'a rare field': { ...page, fields: [{ path: ['req'], value: RARE }] },
  'a word and a field in a time range': {
    ...page,
    since: '2026-01-02T00:00:00Z',
    until: '2026-01-02T06:00:00Z',
    terms: ['handled'],
    fields: [{ path: ['level'], value: 'error' }],
  },
};

const HISTOGRAMS: Record<string, HistogramQuery> = {
  '24 hourly buckets of a topic': {
    topic: 't3',
    since: '2026-01-01T12:00:00Z',
    until: '2026-01-02T12:00:00Z',
    interval: '1h',
  },
  'a rare token, all topics': {
    since: '2026-01-01T00:00:00Z',
    until: '2026-01-04T00:00:00Z',
    interval: '1h',
    terms: [RARE],
  },
  'a field in a source': {
    source: 'host-7',
    since: '2026-01-01T00:00:00Z',
    until: '2026-01-02T00:00:00Z',
    interval: '5m',
    fields: [{ path: ['level'], value: 'error' }],
  },
};

describe.skipIf(postgres === undefined || postgres.skip !== undefined)(
  `read plans on postgres${postgres === undefined ? ' (SKIPPED: no PostgreSQL backend requested)' : postgres.skip === undefined ? '' : ` (SKIPPED: ${postgres.skip})`}`,
  () => {
    let resources: TestResources;
    let driver: SqlDriver;

    beforeAll(async () => {
      resources = await createResources(postgres?.name ?? 'postgres-inbox');
      driver = await migrated(
        new PgDriver({ connectionString: resources.databaseUrl ?? '', poolSize: 2 }),
      );
      // Days around the rows' (2026-01-01 and -02), as the upkeep would have created them.
      await createPartitions(driver, { interval: 'day' }, new Date('2026-01-02T12:00:00Z'));
      await driver.query(
        `INSERT INTO events (topic, event_id, "timestamp", source, payload)
         SELECT 't' || (g % 10), g::text, $1::timestamptz + g * interval '1 second',
                'host-' || (g % 50),
                jsonb_build_object('level', (ARRAY['info','warn','error','debug'])[1 + g % 4],
                  'msg', 'request ' || md5(g::text) || ' handled in ' || (g % 997) || 'ms',
                  'http', jsonb_build_object('status', (ARRAY[200,200,200,404,500])[1 + g % 5],
                                             'path', '/api/v1/cart/' || (g % 1000)),
                  'req', 'req-' || substr(md5(g::text), 1, 6))
         FROM generate_series(1, $2::int) AS g`,
        [START, ROWS],
      );
      // Search granules of GRANULE_EVENTS events, as the apply writes them: their words are as
      // long as a store's (several kB each), which is what decides how the planner weighs them.
      await driver.query('SELECT build_event_granules($1)', [GRANULE_EVENTS]);
      await applySearchIndexSetting(driver, true);
      await driver.exec('ANALYZE events');
      await driver.exec('ANALYZE event_granules');
      const indexes = await driver.query<{ child: string; parent: string }>(
        `SELECT c.relname AS child, p.relname AS parent
         FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         JOIN pg_class p ON p.oid = i.inhparent WHERE c.relkind = 'i'`,
      );
      for (const { child, parent } of indexes) parentIndex.set(child, parent);
      const empty = await driver.query<{ name: string }>(
        `SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = 'events'::regclass AND c.reltuples <= 0`,
      );
      for (const { name } of empty) emptyPartitions.add(name);
      expect(emptyPartitions.size).toBeGreaterThan(0);
      expect(emptyPartitions.has('events_p2026010200')).toBe(false);
    }, 120_000);
    afterAll(async () => {
      await driver?.close();
      await resources?.dispose();
    });

    for (const [shape, query] of Object.entries(LISTINGS)) {
      // The cursor replaces the offset: no client pages with both.
      for (const paged of query.offset > 0 ? [false] : [false, true]) {
        it(`${shape}${paged ? ', cursor page' : ''}: an index walk, no full sort`, async () => {
          const { db, plans } = explaining(driver);
          const rows = await listEvents(db, paged ? { ...query, after: cursor } : query, NOW);
          expect(rows.length).toBeGreaterThan(0);
          expect(plans.length).toBeGreaterThan(0);
          for (const plan of plans) {
            const types = nodeTypes(plan);
            expect(types, JSON.stringify(plan)).not.toContain('Seq Scan');
            expect(types, JSON.stringify(plan)).not.toContain('Sort');
            expect(types, JSON.stringify(plan)).not.toContain('Incremental Sort');
            expect(types.some((t) => t.startsWith('Index'))).toBe(true);
          }
        });
      }
    }

    for (const [shape, query] of Object.entries(SEARCHES)) {
      for (const paged of [false, true]) {
        it(`search, ${shape}${paged ? ', cursor page' : ''}: index, bounded sorts only`, async () => {
          const { db, plans } = explaining(driver);
          await listEvents(db, paged ? { ...query, after: cursor } : query, NOW);
          expect(plans.length).toBeGreaterThan(0);
          for (const plan of plans) {
            const all = nodes(plan);
            const text = JSON.stringify(plan);
            expect(nodeTypes(plan), text).not.toContain('Seq Scan');
            for (const sort of all.filter((n) => n['Node Type'].endsWith('Sort'))) {
              expect(boundedSort(sort), text).toBe(true);
            }
            expect(all.some((n) => n['Node Type'].includes('Index'))).toBe(true);
          }
        });
      }
    }

    const TIME_BOUNDED: Record<string, EventQuery> = {
      'by time range': LISTINGS['by time range'] as EventQuery,
      'by time range within a topic': LISTINGS['by time range within a topic'] as EventQuery,
      'a word and a field in a time range': SEARCHES[
        'a word and a field in a time range'
      ] as EventQuery,
    };
    for (const [shape, query] of Object.entries(TIME_BOUNDED)) {
      it(`${shape}: reads only the partition of its day`, async () => {
        const { db, plans } = explaining(driver);
        await listEvents(db, query, NOW);
        const read = new Set(
          plans
            .flatMap(nodes)
            .map((n) => n['Relation Name'])
            .filter((r) => r !== undefined),
        );
        expect([...read]).toEqual(['events_p2026010200']);
        expect(read.has(DEFAULT_PARTITION)).toBe(false);
      });
    }

    for (const order of ['desc', 'asc'] as const) {
      it(`a cursor page (${order}) reads no partition beyond the cursor's day`, async () => {
        const { db, plans } = explaining(driver);
        const after = { timestamp: '2026-01-01T12:00:00.000000Z', id: 43_200 };
        const rows = await listEvents(db, { ...page, topic: 't3', order, after }, NOW);
        expect(rows.length).toBeGreaterThan(0);
        const read = [...new Set(plans.flatMap(nodes).map((n) => n['Relation Name'] ?? ''))].filter(
          (name) => /^events_p\d{10}$/.test(name),
        );
        expect(read).toContain('events_p2026010100');
        // Names sort as their days: desc reads no later day, asc no earlier one.
        const beyond = read.filter((name) =>
          order === 'desc' ? name > 'events_p2026010100' : name < 'events_p2026010100',
        );
        expect(beyond).toEqual([]);
      });
    }

    it('the service plans without JIT compilation (a search is costed past jit_above_cost)', async () => {
      const [row] = await driver.query<{ jit: string }>("SELECT current_setting('jit') AS jit");
      expect(row?.jit).toBe('off');
    });

    it("the rare token is found through the granules' trigram index, then the id index", async () => {
      const { db, plans } = explaining(driver);
      const rows = await listEvents(db, SEARCHES['a rare token (1 match)'] as EventQuery, NOW);
      expect(rows.map((r) => r.event_id)).toEqual(['1000']);
      const used = plans.flatMap(nodes).map((n) => n['Index Name']);
      expect(used).toContain('event_granules_words_idx');
      expect(used).toContain('events_id_idx');
    });

    it('a common word in a day: the granules index is asked for the words and the day together', async () => {
      const { db, plans } = explaining(driver);
      // In every event's message: every granule holds it, only the day's are read.
      const query: HistogramQuery = {
        since: '2026-01-01T12:00:00Z',
        until: '2026-01-02T12:00:00Z',
        interval: '1h',
        terms: ['handled'],
      };
      const buckets = await histogram(db, query);
      expect(buckets.reduce((n, b) => n + b.count, 0)).toBe(86_400);
      const scans = plans.flatMap(nodes).filter((n) => n['Index Name'] === GRANULE_INDEX);
      expect(scans).toHaveLength(1);
      expect(scans[0]?.['Index Cond']).toMatch(/words ~~\* .*max_ts >= .*min_ts </);
    });

    for (const [shape, query] of Object.entries(HISTOGRAMS)) {
      it(`histogram, ${shape}: no sequential scan`, async () => {
        const { db, plans } = explaining(driver);
        await histogram(db, query);
        expect(plans).toHaveLength(1);
        const all = nodes(plans[0] as PlanNode);
        expect(nodeTypes(plans[0] as PlanNode), JSON.stringify(plans[0])).not.toContain('Seq Scan');
        expect(all.some((n) => n['Node Type'].includes('Index'))).toBe(true);
      });
    }
  },
);
