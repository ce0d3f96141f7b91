/**
 * What the door accepts is what comes back out: a payload's numbers are stored exactly (jsonb
 * keeps each as `numeric`) and every output returns them with the same digits, never rounded to a
 * double: GET /events, the live stream, GET /conflicts. PostgreSQL's normalisation (key order,
 * whitespace, `1e2` → `100`, `-0` → `0`) is allowed; rounding is not. On every backend.
 */
import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { request, waitForDrain } from '../helpers/http.js';
import { openStream, type SseStream } from '../helpers/sse.js';
import { startTestService, suiteBackends, type TestService } from '../helpers/test-service.js';

/** As sent: numbers a double cannot hold, nested, negative, with exponents, and U+2028. */
const PAYLOAD_SENT =
  '{"trace_id": 2868860079149422351, "amount": 0.1000000000000000055511151231257827,' +
  ' "nested": {"list": [18446744073709551617, -9007199254740993, [1e2, 1.5E-30, -0, -12.50e+3]]},' +
  ' "line": "a\u2028b\\u2029c"}';

/** The same digits as PostgreSQL prints them back (its normal form; nothing rounded). */
const EXACT = [
  '"trace_id": 2868860079149422351',
  '"amount": 0.1000000000000000055511151231257827',
  '[18446744073709551617, -9007199254740993, [100, 0.0000000000000000000000000000015, 0, -12500]]',
];

function body(topic: string, id: string, payload = PAYLOAD_SENT): string {
  return `{"events": [{"topic": ${JSON.stringify(topic)}, "event_id": "${id}", "timestamp": "2024-05-01T12:00:00Z", "source": "exact", "payload": ${payload}}]}`;
}

for (const backend of suiteBackends()) {
  describe.skipIf(backend.skip !== undefined)(
    `exact payloads on ${backend.name}${backend.skip ? ` (SKIPPED: ${backend.skip})` : ''}`,
    () => {
      let svc: TestService | undefined;
      let stream: SseStream | undefined;
      afterEach(async () => {
        stream?.close();
        stream = undefined;
        await svc?.close();
        svc = undefined;
      });

      it('GET /events, the live stream and GET /conflicts return every digit', async () => {
        svc = await startTestService(backend.name);
        const base = svc.url;
        const topic = `test-${randomUUID()}`;
        stream = await openStream(`${base}/events/stream?topic=${topic}`);
        const sent = await request(`${base}/publish`, {
          method: 'POST',
          rawBody: body(topic, 'x1'),
          headers: { 'content-type': 'application/json' },
        });
        expect(sent.status).toBeLessThan(300);
        await waitForDrain(base, 1);

        const listed = await fetch(`${base}/events?topic=${topic}`);
        expect(listed.status).toBe(200);
        expect(listed.headers.get('content-type')).toMatch(/^application\/json/);
        const text = await listed.text();
        for (const digits of EXACT) expect(text).toContain(digits);
        // U+2028 comes back as the character (valid JSON), U+2029 as sent escaped, decoded.
        const [event] = JSON.parse(text) as { topic: string; source: string; payload: unknown }[];
        expect(event).toMatchObject({ topic, source: 'exact' });
        expect((event?.payload as { line: string }).line).toBe('a\u2028b\u2029c');

        const [frame] = await stream.waitFor(1);
        for (const digits of EXACT) expect(frame?.raw).toContain(digits);
        expect(frame?.data).toMatchObject({ topic, event_id: 'x1', source: 'exact' });
        // U+2028 is no line break to SSE: the frame is whole and decodes to the string sent.
        expect((frame?.data.payload as { line: string }).line).toBe('a\u2028b\u2029c');

        // A duplicate differing only in a digit a double cannot tell apart is a conflict, and
        // the conflict shows both exact payloads.
        // Each copy is applied before the next is sent, so the first one sent is the one stored
        // (two worker loops could otherwise commit them in either order).
        let applied = 1;
        for (const [id, trace] of [
          ['x2', '2868860079149422351'],
          ['x2', '2868860079149422352'],
        ] as const) {
          const sentAgain = await request(`${base}/publish`, {
            method: 'POST',
            rawBody: body(topic, id, `{"trace_id": ${trace}}`),
            headers: { 'content-type': 'application/json' },
          });
          expect(sentAgain.status).toBeLessThan(300);
          await waitForDrain(base, ++applied);
        }
        // Two copies applied by concurrent transactions are compared once both committed (a
        // late-settled conflict), so the conflict may be listed a moment after the drain.
        const conflictsText = async () => (await fetch(`${base}/conflicts?topic=${topic}`)).text();
        await expect
          .poll(conflictsText, { timeout: 15_000, interval: 200 })
          .toContain('2868860079149422352');
        const conflictText = await conflictsText();
        expect(conflictText).toContain('2868860079149422351');
        expect(conflictText).toContain('2868860079149422352');
        // Nothing else was lost: the first copy is still the one listed.
        const still = await (await fetch(`${base}/events?topic=${topic}`)).text();
        expect(still).toContain(EXACT[0]);
        expect(still).not.toContain('2868860079149422352');
      });
    },
  );
}
