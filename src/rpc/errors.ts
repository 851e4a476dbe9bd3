/**
 * The one mapping between replivol's error codes and gRPC statuses
 * (design.md, "Errors"). The code itself travels in the `replivol-code`
 * metadata entry, so a client gets back the exact class, not a guess from
 * the status or the message text.
 */
import { Metadata, status, type ServiceError, type StatusObject } from "@grpc/grpc-js";
import { isErrorCode, VolumeError, type ErrorCode } from "../core/errors.js";

const STATUS_OF: Record<ErrorCode, status> = {
  STALE_EPOCH: status.FAILED_PRECONDITION,
  FENCED: status.FAILED_PRECONDITION,
  VOLUME_BUSY: status.FAILED_PRECONDITION,
  NO_QUORUM: status.UNAVAILABLE,
  NOT_FOUND: status.NOT_FOUND,
  OUT_OF_RANGE: status.OUT_OF_RANGE,
  INVALID_ARGUMENT: status.INVALID_ARGUMENT,
  CORRUPT: status.DATA_LOSS,
  DISK_FAILED: status.INTERNAL,
};

export const CODE_METADATA_KEY = "replivol-code";

/** Statuses that arrive without a replivol code: the transport's own. */
const TRANSPORT_CODE_OF = new Map<status, ErrorCode>([
  [status.UNAVAILABLE, "NO_QUORUM"],
  [status.DEADLINE_EXCEEDED, "NO_QUORUM"],
  [status.CANCELLED, "NO_QUORUM"],
  [status.NOT_FOUND, "NOT_FOUND"],
  [status.OUT_OF_RANGE, "OUT_OF_RANGE"],
  [status.DATA_LOSS, "CORRUPT"],
]);

export function grpcStatusOf(code: ErrorCode): status {
  return STATUS_OF[code];
}

/** A VolumeError (or anything thrown) as the status object a gRPC handler returns. */
export function toServiceError(err: unknown): Partial<StatusObject> {
  const e = err instanceof VolumeError ? err : new VolumeError("DISK_FAILED", `Internal error: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  const metadata = new Metadata();
  metadata.set(CODE_METADATA_KEY, e.code);
  return { code: STATUS_OF[e.code], details: e.message, metadata };
}

/**
 * A gRPC error as a VolumeError. Statuses that carry no replivol code (the
 * node is unreachable, the call timed out) are NO_QUORUM-like transport
 * failures: `UNAVAILABLE` and `DEADLINE_EXCEEDED` become NO_QUORUM, the rest
 * INVALID_ARGUMENT with the status text.
 */
export function fromServiceError(err: ServiceError): VolumeError {
  const tagged = err.metadata?.get(CODE_METADATA_KEY)[0];
  if (typeof tagged === "string" && isErrorCode(tagged)) return new VolumeError(tagged, err.details, { cause: err });
  const code = TRANSPORT_CODE_OF.get(err.code);
  if (code !== undefined) {
    const prefix = code === "NO_QUORUM" ? "Node unreachable: " : "";
    return new VolumeError(code, `${prefix}${err.details}`, { cause: err });
  }
  return new VolumeError("INVALID_ARGUMENT", `${status[err.code] ?? err.code}: ${err.details}`, { cause: err });
}
