/**
 * The benchmark's request builders (bench/formats.ts): one workload, with duplicates and
 * conflicting duplicates, sent in each wire format to its own service, ends with the counts the
 * workload promises, so comparing formats in the benchmark compares the same work.
 * (`ndjson` on /publish is left to the tests of that body format.)
 */
import { afterEach, describe, expect, it } from 'vitest';
import { formatRequest, type Format } from '../../bench/formats.js';
import { chunk, makeWorkload } from '../../src/cli/workload.js';
import { waitForDrain, type Stats } from '../helpers/http.js';
import { startTestService, type TestService } from '../helpers/test-service.js';

const FORMATS: readonly Format[] = ['envelope', 'otlp-proto', 'otlp-json', 'es-bulk', 'loki'];

describe('benchmark request formats', () => {
  let svc: TestService | undefined;
  afterEach(async () => {
    await svc?.close();
  });

  for (const format of FORMATS) {
    it(`${format}: the workload's unique events, duplicates and conflicts come out exact`, async () => {
      svc = await startTestService('pglite-inbox');
      const workload = makeWorkload({
        total: 600,
        dupRate: 0.35,
        conflictRate: 0.1,
        topics: ['bench-a', 'bench-b'],
        source: 'bench-host',
      });
      for (const batch of chunk(workload.events, 100)) {
        const request = formatRequest(format, batch);
        const reply = await fetch(`${svc.url}${request.path}`, {
          method: 'POST',
          headers: request.headers,
          body: request.body,
        });
        expect([200, 204]).toContain(reply.status);
      }
      const s = (await waitForDrain(svc.url, workload.events.length)) as Stats & {
        conflicting_duplicates: number;
      };
      expect(s).toMatchObject({
        received: workload.events.length,
        unique_processed: workload.unique,
        duplicate_dropped: workload.duplicates,
        conflicting_duplicates: workload.conflicts,
      });
      expect(await svc.service.store.countEvents()).toBe(workload.unique);
    });
  }
});
