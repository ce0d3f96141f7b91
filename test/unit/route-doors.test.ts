/**
 * The OpenAPI description of a route's doors comes from its scope and the configuration alone:
 * whatever the route says of them itself is replaced, and its schema object is left as it was.
 */
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { withDoors } from '../../src/http/route-doors.js';

const apiKeys = loadConfig({ API_KEYS: 'ops:read:0123456789abcdef' }).apiKeys;
const ok = { type: 'object' };
const error = { $ref: 'Error#' };

describe('withDoors', () => {
  const stale = {
    security: [{ bearerAuth: [] }],
    response: { 200: ok, 401: error, 403: error, 429: error, 503: error },
  };

  it('an open API without a rate limit promises no key and no 401, 403 or 429', () => {
    const route = { url: '/stats', config: { scope: 'read' as const }, schema: stale };
    expect(withDoors(route, { apiKeys: [], rateLimited: false })).toEqual({
      response: { 200: ok, 503: error },
    });
    // The route's own schema (possibly shared) is untouched.
    expect(stale.response[401]).toBe(error);
  });

  it('with keys a scoped route needs one, and answers 401 and 403; 429 with a rate limit', () => {
    const route = {
      url: '/stats',
      config: { scope: 'read' as const },
      schema: { response: { 200: ok } },
    };
    expect(withDoors(route, { apiKeys, rateLimited: true })).toEqual({
      security: [{ bearerAuth: [] }, { apiKeyHeader: [] }],
      response: { 200: ok, 401: error, 403: error, 429: error },
    });
  });

  it('a route without a scope stays open; /health is never rate limited', () => {
    const health = { url: '/health', config: {}, schema: { response: { 200: ok } } };
    expect(withDoors(health, { apiKeys, rateLimited: true })).toEqual({ response: { 200: ok } });
    const docs = { url: '/docs/json', config: {}, schema: { summary: 'x' } };
    expect(withDoors(docs, { apiKeys, rateLimited: true })).toEqual({
      summary: 'x',
      response: { 429: error },
    });
  });

  it('leaves hidden routes and routes without a schema alone', () => {
    const hidden = { hide: true, response: { 401: error } };
    expect(
      withDoors(
        { url: '/', config: { scope: 'read' }, schema: hidden },
        { apiKeys, rateLimited: true },
      ),
    ).toBe(hidden);
    expect(
      withDoors({ url: '/', config: {}, schema: undefined }, { apiKeys, rateLimited: true }),
    ).toBeUndefined();
  });
});
