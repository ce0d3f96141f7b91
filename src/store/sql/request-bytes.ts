/** How a request body travels to the database. */

/** Request bodies go to the database as bytes (`bytea`): no re-encoding of the text in Node. */
export function asBytes(body: Buffer | string): Buffer {
  return typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
}
