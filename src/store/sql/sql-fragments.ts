/** SQL expressions several statements share, as functions that return SQL text. */

/** SQL rendering a timestamptz column as ISO 8601 UTC with microseconds. */
export const ISO_UTC = (column: string) =>
  `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;

/**
 * SQL naming which of timestamp, source and payload differ between a stored event and a copy. A
 * payload is compared only when `payloadDiffers` can tell: when neither of the others differs, the
 * hashes say it is the payload. A null `storedSource` means the stored copy's payload row is gone
 * (retention dropped it, its key remains): then only the timestamp is compared.
 */
export const differs = (
  storedTs: string,
  copyTs: string,
  storedSource: string,
  copySource: string,
  payloadDiffers: string,
) => `array_remove(ARRAY[
    CASE WHEN ${storedTs} IS DISTINCT FROM ${copyTs} THEN 'timestamp' END,
    CASE WHEN ${storedSource} IS NOT NULL AND ${storedSource} IS DISTINCT FROM ${copySource}
         THEN 'source' END,
    CASE WHEN coalesce(${payloadDiffers},
                       ${storedTs} IS NOT DISTINCT FROM ${copyTs}
                       AND ${storedSource} IS NOT DISTINCT FROM ${copySource})
         THEN 'payload' END
  ], NULL)`;
