/**
 * The OTLP record → event mapping (docs/shippers.md): fields at their default value are left out
 * of the payload, as OTLP/JSON leaves them out; 64-bit integers keep every digit and their sign;
 * the resource and scope are the same text in every record that shares them.
 */
import { describe, expect, it } from 'vitest';
import { decodeOtlpProtobuf, encodeOtlpRequest, mapOtlpLogs } from '../../src/ingest/otlp-logs.js';

const kv = (key: string, value: Record<string, unknown>) => ({ key, value });

function mapped(logRecords: Record<string, unknown>[], scope: Record<string, unknown> = {}) {
  const body = encodeOtlpRequest(
    {
      resourceLogs: [
        {
          resource: { attributes: [kv('service.name', { stringValue: 'checkout' })] },
          scopeLogs: [{ scope, logRecords }],
        },
      ],
    },
    false,
  ) as Buffer;
  return mapOtlpLogs(decodeOtlpProtobuf(body)).map((r) => {
    if (!r.ok) throw new Error(r.reason);
    return { ...r.event, payload: JSON.parse(r.event.payloadJson) as Record<string, unknown> };
  });
}

describe('OTLP log records as events', () => {
  it('leave fields at their default value out of the payload', () => {
    const [event] = mapped([{ timeUnixNano: '1714564800123456789' }]);
    expect(event?.payloadJson).toBe(
      '{"time_unix_nano":"1714564800123456789","resource":{"service.name":"checkout"}}',
    );
    expect(event).toMatchObject({
      topic: 'checkout',
      source: 'checkout',
      timestamp: '2024-05-01T12:00:00.123456789Z',
    });
  });

  it('keep every field that is set, 64-bit integers exact and signed', () => {
    const [event] = mapped(
      [
        {
          timeUnixNano: '1714564800123456789',
          observedTimeUnixNano: '18446744073709551615',
          severityNumber: 17,
          severityText: 'ERROR',
          body: { stringValue: 'card declined' },
          attributes: [
            kv('n', { intValue: '-9007199254740993' }),
            kv('small', { intValue: '-5' }),
            kv('log.record.uid', { stringValue: 'u-1' }),
          ],
          flags: 1,
          traceId: Buffer.alloc(16, 1).toString('base64'),
        },
      ],
      { name: 'lib', attributes: [kv('a', { boolValue: true })] },
    );
    expect(event?.event_id).toBe('u-1');
    expect(event?.payload).toEqual({
      body: 'card declined',
      severity_number: 17,
      severity_text: 'ERROR',
      attributes: { n: '-9007199254740993', small: -5, 'log.record.uid': 'u-1' },
      trace_id: '01'.repeat(16),
      flags: 1,
      time_unix_nano: '1714564800123456789',
      observed_time_unix_nano: '18446744073709551615',
      resource: { 'service.name': 'checkout' },
      scope: { name: 'lib', attributes: { a: true } },
    });
  });

  it('derive the same id from the same record, a different one from another', () => {
    const records = [
      { timeUnixNano: '1', body: { stringValue: 'a' } },
      { timeUnixNano: '1', body: { stringValue: 'a' } },
      { timeUnixNano: '1', body: { stringValue: 'b' } },
    ];
    const ids = mapped(records).map((e) => e.event_id);
    expect(ids[0]).toMatch(/^otlp-[\w-]{43}$/);
    expect(ids[1]).toBe(ids[0]);
    expect(ids[2]).not.toBe(ids[0]);
  });
});
