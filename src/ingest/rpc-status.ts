/**
 * `google.rpc.Status`, the error body OTLP/HTTP prescribes for every 4xx and 5xx answer (OTLP
 * specification, "Failures"): `code` is a gRPC status code, `message` the reason for a person.
 * Defined with protobufjs from the field numbers of google/rpc/status.proto; `details` (field 3,
 * repeated Any) is left empty.
 */
import protobuf from 'protobufjs';

const Status = protobuf.Root.fromJSON({
  nested: {
    google: {
      nested: {
        rpc: {
          nested: {
            Status: {
              fields: {
                code: { type: 'int32', id: 1 },
                message: { type: 'string', id: 2 },
              },
            },
          },
        },
      },
    },
  },
}).lookupType('google.rpc.Status');

/** The gRPC code that matches an HTTP status (the mapping of gRPC's HTTP guide). */
export function grpcCodeOf(httpStatus: number): number {
  switch (httpStatus) {
    case 400:
    case 413:
    case 415:
    case 422:
      return 3; // INVALID_ARGUMENT
    case 401:
      return 16; // UNAUTHENTICATED
    case 403:
      return 7; // PERMISSION_DENIED
    case 404:
      return 5; // NOT_FOUND
    case 409:
      return 6; // ALREADY_EXISTS
    case 429:
      return 8; // RESOURCE_EXHAUSTED
    case 503:
      return 14; // UNAVAILABLE
    default:
      return 13; // INTERNAL
  }
}

/** The Status message as protobuf bytes, or as its JSON form. */
export function encodeRpcStatus(
  httpStatus: number,
  message: string,
  json: boolean,
): Buffer | string {
  const status = { code: grpcCodeOf(httpStatus), message };
  if (json) return JSON.stringify(status);
  return Buffer.from(Status.encode(Status.fromObject(status)).finish());
}
