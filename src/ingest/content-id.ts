/**
 * Deterministic event ids for wire formats that carry none (OTLP records without `log.record.uid`,
 * Elasticsearch documents without `_id`, every Loki entry). The id is a hash of a canonical
 * encoding of what makes the record what it is, so a shipper that sends the same batch again
 * produces the same ids and the retry is counted as duplicates instead of stored twice.
 */
import { createHash } from 'node:crypto';

/**
 * A value of the canonical encoding: JSON values, plus bigint for 64-bit integers (encoded as
 * their decimal digits, tagged so that `1n` and `"1"` differ).
 */
export type CanonicalValue =
  | string
  | number
  | boolean
  | bigint
  | null
  | undefined
  | readonly CanonicalValue[]
  | { readonly [key: string]: CanonicalValue };

/**
 * Canonical text of a value: object keys sorted by UTF-16 code units, `undefined` members left
 * out, numbers as JavaScript prints them, bigints as `{"$int":"digits"}`. Two values that mean the
 * same record encode to the same text whatever the order their members arrived in.
 */
export function canonicalText(value: CanonicalValue): string {
  if (value === undefined || value === null) return 'null';
  if (typeof value === 'bigint') return `{"$int":"${value.toString()}"}`;
  if (typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) {
    return `[${(value as readonly CanonicalValue[]).map(canonicalText).join(',')}]`;
  }
  const object = value as { readonly [key: string]: CanonicalValue };
  const members: string[] = [];
  for (const key of Object.keys(object).sort()) {
    const member = object[key];
    if (member !== undefined) members.push(`${JSON.stringify(key)}:${canonicalText(member)}`);
  }
  return `{${members.join(',')}}`;
}

/**
 * The id derived from a record: `<kind>-` followed by the SHA-256 of its canonical text in
 * base64url (43 characters), well within the 255 characters an event id may have. `kind` names
 * the format (`otlp`, `es`, `loki`) so ids of different formats never meet.
 */
export function contentId(kind: string, record: CanonicalValue): string {
  return contentIdOfText(kind, canonicalText(record));
}

/**
 * contentId of a record whose canonical text the caller put together itself (from parts it
 * encoded once with canonicalText, for records that share them).
 */
export function contentIdOfText(kind: string, canonical: string): string {
  return `${kind}-${createHash('sha256').update(canonical).digest('base64url')}`;
}
