/**
 * The Ajv instances every schema of the service compiles with: one for bodies (no coercion) and one
 * for query strings (arrays coerced), both knowing the event timestamp format and the text rules of
 * text-rules.ts. The HTTP routes and the shipper decoders (src/ingest) validate with the same ones,
 * so an event is refused for the same reasons whatever format it arrived in.
 */
import { Ajv } from 'ajv';
import { isValidTimestamp } from '../../timestamp.js';
import { addTextKeywords } from './text-rules.js';

function withEventRules(ajv: Ajv): Ajv {
  ajv.addFormat('event-timestamp', { type: 'string', validate: isValidTimestamp });
  addTextKeywords(ajv);
  return ajv;
}

/** A body validator: no type coercion, defaults applied, every error reported. */
export function createBodyAjv(): Ajv {
  return withEventRules(
    new Ajv({ allErrors: true, coerceTypes: false, useDefaults: true, strict: false }),
  );
}

/** A query-string validator: scalars coerced (and to arrays where the schema says), defaults applied. */
export function createQueryAjv(): Ajv {
  return withEventRules(
    new Ajv({ allErrors: true, coerceTypes: 'array', useDefaults: true, strict: false }),
  );
}
