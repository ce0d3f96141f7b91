/**
 * The Loki entry → event mapping (docs/shippers.md): the event id is the content id of the
 * stream's labels, the nanosecond time and the line (Loki's duplicate rule), however the entry
 * arrived; the payload keeps line, labels, time and structured metadata.
 */
import { describe, expect, it } from 'vitest';
import { contentId } from '../../src/ingest/content-id.js';
import {
  decodeLokiJson,
  decodeLokiProtobuf,
  encodeLokiProtobuf,
} from '../../src/ingest/loki-push.js';

describe('Loki entries as events', () => {
  const json = decodeLokiJson(
    JSON.stringify({
      streams: [
        {
          stream: { service_name: 'api', host: 'h1', ['__proto__']: 'x' },
          values: [
            ['1714564800123456789', 'GET /cart 500', { trace_id: 't1' }],
            ['1714564800123456790', 'GET /cart 200'],
          ],
        },
      ],
    }),
  );
  const proto = decodeLokiProtobuf(
    encodeLokiProtobuf({
      streams: [
        {
          labels: '{service_name="api", host="h1", __proto__="x"}',
          entries: [
            {
              timestamp: { seconds: 1714564800, nanos: 123456789 },
              line: 'GET /cart 500',
              structuredMetadata: [{ name: 'trace_id', value: 't1' }],
            },
          ],
        },
      ],
    }),
    1 << 20,
  );

  it('derive the id from labels, time and line, the same in both encodings', () => {
    const [first, second] = json.map((e) => (e.ok ? e.event : undefined));
    const expected = contentId('loki', {
      labels: JSON.parse(
        JSON.stringify({ service_name: 'api', host: 'h1', ['__proto__']: 'x' }),
      ) as Record<string, string>,
      nanos: '1714564800123456789',
      line: 'GET /cart 500',
    });
    expect(first?.event_id).toBe(expected);
    expect(second?.event_id).not.toBe(expected);
    expect(proto[0]?.ok && proto[0].event.event_id).toBe(expected);
    expect(first).toMatchObject({ topic: 'api', source: 'h1' });
  });

  it('keep line, labels, time and metadata in the payload', () => {
    const event = json[0]?.ok ? json[0].event : undefined;
    expect(JSON.parse(event?.payloadJson ?? '')).toEqual({
      line: 'GET /cart 500',
      labels: JSON.parse('{"service_name":"api","host":"h1","__proto__":"x"}') as unknown,
      timestamp_ns: '1714564800123456789',
      structured_metadata: { trace_id: 't1' },
    });
    const second = json[1]?.ok ? json[1].event : undefined;
    expect(second?.payloadJson).not.toContain('structured_metadata');
  });
});
