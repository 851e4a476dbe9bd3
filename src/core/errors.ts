/**
 * Expected failures. One code each, one class in the client library, one
 * gRPC status (mapped in src/rpc, in exactly one place).
 */

export const ERROR_CODES = [
  "STALE_EPOCH",
  "FENCED",
  "VOLUME_BUSY",
  "NO_QUORUM",
  "NOT_FOUND",
  "OUT_OF_RANGE",
  "INVALID_ARGUMENT",
  "CORRUPT",
  "DISK_FAILED",
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

export class VolumeError extends Error {
  override name = "VolumeError";
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

export function isErrorCode(s: string): s is ErrorCode {
  return (ERROR_CODES as readonly string[]).includes(s);
}
