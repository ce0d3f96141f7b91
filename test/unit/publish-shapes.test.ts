/** Each publish shape becomes the envelope spliced from its bytes; paths are told as sent. */
import { describe, expect, it } from 'vitest';
import { noteBody, rawBodyOf } from '../../src/http/json-body.js';
import { fieldInShape, markNdjson, toEnvelope } from '../../src/http/publish-shapes.js';

function parsed(text: string): unknown {
  const value = JSON.parse(text) as object;
  noteBody(value, Buffer.from(text), text);
  return value;
}

describe('toEnvelope', () => {
  it('splices the envelope from the bytes that arrived, numbers untouched', () => {
    const array = toEnvelope(parsed('[{"topic":"t","payload":{"n":1.10}}]'));
    expect(array?.shape).toBe('array');
    expect(rawBodyOf(array?.envelope ?? {})?.toString()).toBe(
      '{"events":[{"topic":"t","payload":{"n":1.10}}]}',
    );
    const event = toEnvelope(parsed(' {"topic":"t","n":1e2} '));
    expect(event?.shape).toBe('event');
    expect(rawBodyOf(event?.envelope ?? {})?.toString()).toBe(
      '{"events":[ {"topic":"t","n":1e2} ]}',
    );
    expect(JSON.parse(rawBodyOf(event?.envelope ?? {})?.toString() ?? '')).toEqual({
      events: [{ topic: 't', n: 100 }],
    });
  });

  it('keeps an envelope, and reads an object with no event field as one', () => {
    const body = parsed('{"events":[],"meta":1}');
    expect(toEnvelope(body)).toEqual({ envelope: body, shape: 'envelope' });
    expect(toEnvelope(parsed('{"invalid":"data"}'))?.shape).toBe('envelope');
    expect(toEnvelope(parsed('{"source":"s"}'))?.shape).toBe('event');
    expect(toEnvelope(null)).toBeUndefined();
    expect(toEnvelope('text')).toBeUndefined();
  });
});

describe('fieldInShape', () => {
  const ndjson = { events: [] };
  markNdjson(ndjson, [1, 3, 7]);
  const sent = {
    envelope: { envelope: { events: [] }, shape: 'envelope' },
    array: { envelope: { events: [] }, shape: 'array' },
    event: { envelope: { events: [] }, shape: 'event' },
    ndjson: toEnvelope(ndjson),
  } as const;

  it.each([
    ['events[2].topic', 'envelope', 'events[2].topic'],
    ['events[2].topic', 'array', '[2].topic'],
    ['events[0].payload.a[1]', 'array', '[0].payload.a[1]'],
    ['events[0].topic', 'event', 'topic'],
    ['events[0]', 'event', 'body'],
    ['events', 'array', 'body'],
    ['events[2].topic', 'ndjson', 'line 7: topic'],
    ['events[1]', 'ndjson', 'line 3'],
    ['events[0].payload (a key)', 'ndjson', 'line 1: payload (a key)'],
    ['body', 'ndjson', 'body'],
  ] as const)('%s in the %s shape is %s', (field, shape, expected) => {
    const s = sent[shape];
    expect(s).toBeDefined();
    if (s !== undefined) expect(fieldInShape(field, s)).toBe(expected);
  });
});
