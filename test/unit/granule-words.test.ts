/**
 * The words of a search granule and the pieces a query asks of them (granule-words.ts): every
 * piece of a query that matches an event lies inside one word of that event's granule.
 */
import { describe, expect, it } from 'vitest';
import { matchesFields, matchesTerms } from '../../src/search/event-match.js';
import type { FieldFilter } from '../../src/search/field-filters.js';
import {
  bodyWords,
  collectWords,
  GRANULE_EVENTS,
  queryPieces,
  withWords,
} from '../../src/search/granule-words.js';

const words = (value: unknown) => {
  const set = new Set<string>();
  collectWords(value, set);
  return [...set];
};

describe('granule words', () => {
  it('are the runs of letters, marks and digits of three or more in strings at any depth and numbers; not keys, booleans or null', () => {
    expect(
      words({
        msg: 'GET /api/v1/cart\tin  35ms\n',
        nested: [{ deep: 'req-7f3a9c' }, 500, -1234.5, 1.5, true, null],
        'key-not-a-word': 'xyz',
      }),
    ).toEqual(['GET', 'api', 'cart', '35ms', 'req', '7f3a9c', '500', '1234', 'xyz']);
  });

  it('split at any character that is not a letter, a mark or a digit, and count characters as code points', () => {
    expect(words('ab\u00a0cde_fgh.ij\u200dklm')).toEqual(['cde', 'fgh', 'klm']);
    // Marks stay in their word (Devanagari vowel signs), astral letters count once each.
    expect(words('नमस्ते 𝒜𝒞 𝒜𝒞𝒟')).toEqual(['नमस्ते', '𝒜𝒞𝒟']);
  });

  it('of a body: each event source and payload, each word once', () => {
    const body = JSON.stringify({
      events: [
        { topic: 't', event_id: '1', source: 'host-1', payload: { msg: 'ok ok' } },
        { topic: 't', event_id: '2', source: 'host-1', payload: { msg: 'slow' } },
      ],
    });
    expect(bodyWords(body)).toEqual(['host\nslow']);
    expect(bodyWords(Buffer.from(body))).toEqual(bodyWords(body));
  });

  it('of a body: one text per GRANULE_EVENTS events, in order', () => {
    const events = Array.from({ length: GRANULE_EVENTS * 2 + 1 }, (_, i) => ({
      source: 'src',
      payload: { i: 1000 + i },
    }));
    const chunks = bodyWords(JSON.stringify({ events }));
    expect(chunks).toHaveLength(3);
    expect(chunks[0]?.split('\n')).toEqual([
      'src',
      ...events.slice(0, GRANULE_EVENTS).map((e) => `${e.payload.i}`),
    ]);
    expect(chunks[2]).toBe(`src\n${1000 + GRANULE_EVENTS * 2}`);
    expect(bodyWords('{"events":[]}')).toEqual([]);
  });

  it('ride with the body, which is spliced in unchanged', () => {
    const body = '{"events":[{"source":"src","payload":{"q":"a \\"quoted\\" word"}}]}';
    const wrapped = JSON.parse(withWords(body).toString()) as { words: string[]; body: unknown };
    expect(wrapped.body).toEqual(JSON.parse(body));
    expect(wrapped.words).toEqual(['src\nquoted\nword']);
  });

  it('a body that is not JSON is a SyntaxError', () => {
    expect(() => bodyWords('{"events": [')).toThrow(SyntaxError);
  });
});

describe('query pieces', () => {
  it('are the runs of letters, marks and digits of terms and phrases with three letters or digits in a row', () => {
    expect(
      queryPieces(['req-7f3a9c', 'connection refused by db-77', 'ok', '10.0.3.7', 'v1.2.345'], []),
    ).toEqual(['req', '7f3a9c', 'connection', 'refused', '345']);
  });

  it('of fields: string values split the same way, safe integers in their digits, nothing else', () => {
    const fields: FieldFilter[] = [
      { path: ['user'], value: 'user 4242' },
      { path: ['n'], value: -7777777 },
      { path: ['big'], value: 2 ** 60 },
      { path: ['f'], value: 1.25 },
      { path: ['b'], value: true },
      { path: ['z'], value: null },
    ];
    expect(queryPieces(undefined, fields)).toEqual(['user', '4242', '7777777']);
  });

  it('nothing to ask when no piece qualifies', () => {
    expect(queryPieces(['ok', 'a-b'], [{ path: ['n'], value: 12 }])).toEqual([]);
  });

  it('every piece of a matching query lies inside one word of the event (case aside)', () => {
    const events = [
      {
        source: 'host-7',
        payload: { msg: 'Payment REFUSED by DB-77 after 35ms', req: 'req-9f3527f1' },
      },
      {
        source: 'edge',
        payload: { http: { status: 500, path: '/api/v1/cart' }, user: 'user 4242' },
      },
    ];
    const queries: { terms: string[]; fields: FieldFilter[] }[] = [
      { terms: ['refused by db-7', 'REQ-9F35', 'host-7'], fields: [] },
      { terms: ['/v1/car'], fields: [{ path: ['http', 'status'], value: 500 }] },
      { terms: [], fields: [{ path: ['user'], value: 'user 4242' }] },
    ];
    for (const { terms, fields } of queries) {
      const matching = events.filter(
        (e) => matchesTerms(e.source, e.payload, terms) && matchesFields(e.payload, fields),
      );
      expect(matching).toHaveLength(1);
      for (const event of matching) {
        const eventWords = [...words(event.source), ...words(event.payload)].map((w) =>
          w.toLowerCase(),
        );
        for (const piece of queryPieces(terms, fields)) {
          expect(
            eventWords.some((w) => w.includes(piece.toLowerCase())),
            piece,
          ).toBe(true);
        }
      }
    }
  });
});
