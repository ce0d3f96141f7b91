/**
 * Reads that do not grow with the store: every query shape GET /events (and the histogram) runs is
 * planned by PostgreSQL as an index walk, never a sequential scan nor a sort of everything that
 * matches. The statements are the store's own (captured as it runs them), explained with
 * `EXPLAIN (FORMAT JSON)` on a database with enough rows, analysed, for the planner to choose as
 * it would on a large store.
 *
 * PostgreSQL only: PGlite plans the same SQL, but it is the embedded store for small volumes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrated } from '../../src/store/migrate.js';
import { PgDriver } from '../../src/store/postgres/pg-driver.js';
import { listEvents } from '../../src/store/sql/events.js';
import type { SqlDriver, SqlQueryable } from '../../src/store/sql-driver.js';
import type { EventQuery } from '../../src/store/store.js';
import { needsPostgres } from '../helpers/environment.js';
import { createResources, suiteBackends, type TestResources } from '../helpers/test-service.js';

const postgres = suiteBackends().find((b) => needsPostgres(b.name));

const ROWS = 200_000;
/** Rows are one second apart from here, spread over 10 topics and 50 sources. */
const START = '2026-01-01T00:00:00Z';

interface PlanNode {
  'Node Type': string;
  'Index Name'?: string;
  Plans?: PlanNode[];
}

/** Every node of a plan tree, depth first. */
function nodes(plan: PlanNode): PlanNode[] {
  return [plan, ...(plan.Plans ?? []).flatMap(nodes)];
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
        if (plan !== undefined) plans.push(plan);
        return db.query<Row>(text, params);
      },
      exec: (sql: string) => db.exec(sql),
    },
  };
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
      await driver.exec('ANALYZE events');
    }, 120_000);
    afterAll(async () => {
      await driver?.close();
      await resources?.dispose();
    });

    for (const [shape, query] of Object.entries(LISTINGS)) {
      for (const paged of [false, true]) {
        it(`${shape}${paged ? ', cursor page' : ''}: an index walk, no full sort`, async () => {
          const { db, plans } = explaining(driver);
          const rows = await listEvents(db, paged ? { ...query, after: cursor } : query);
          expect(rows.length).toBeGreaterThan(0);
          expect(plans.length).toBeGreaterThan(0);
          for (const plan of plans) {
            const types = nodes(plan).map((n) => n['Node Type']);
            expect(types, JSON.stringify(plan)).not.toContain('Seq Scan');
            expect(types, JSON.stringify(plan)).not.toContain('Sort');
            expect(types, JSON.stringify(plan)).not.toContain('Incremental Sort');
            expect(types.some((t) => t.startsWith('Index'))).toBe(true);
          }
        });
      }
    }
  },
);
