/**
 * One class per design.md error code, so an application can `catch` by
 * class (`err instanceof FencedError`) or by `err.code`. Every class extends
 * the core's VolumeError; `clientError` is the one place that turns a code
 * into its class.
 */
import { VolumeError, type ErrorCode } from "../core/errors.js";

export { VolumeError, type ErrorCode };

interface ErrorOptions {
  cause?: unknown;
}

/** The mount was taken over by another client: do not retry. */
export class FencedError extends VolumeError {
  override name = "FencedError";
  constructor(message: string, options?: ErrorOptions) {
    super("FENCED", message, options);
  }
}

/** A request named an epoch older than the one a replica promised. */
export class StaleEpochError extends VolumeError {
  override name = "StaleEpochError";
  constructor(message: string, options?: ErrorOptions) {
    super("STALE_EPOCH", message, options);
  }
}

/** A live mount of another client holds the volume (mount with `takeover` to fence it). */
export class VolumeBusyError extends VolumeError {
  override name = "VolumeBusyError";
  constructor(message: string, options?: ErrorOptions) {
    super("VOLUME_BUSY", message, options);
  }
}

/** Fewer than W in-sync replicas are reachable; nothing acknowledged is lost. */
export class NoQuorumError extends VolumeError {
  override name = "NoQuorumError";
  constructor(message: string, options?: ErrorOptions) {
    super("NO_QUORUM", message, options);
  }
}

/** No such volume or node. */
export class NotFoundError extends VolumeError {
  override name = "NotFoundError";
  constructor(message: string, options?: ErrorOptions) {
    super("NOT_FOUND", message, options);
  }
}

/** I/O past the end of the volume. */
export class OutOfRangeError extends VolumeError {
  override name = "OutOfRangeError";
  constructor(message: string, options?: ErrorOptions) {
    super("OUT_OF_RANGE", message, options);
  }
}

/** A bad name, size, offset, length or message. */
export class InvalidArgumentError extends VolumeError {
  override name = "InvalidArgumentError";
  constructor(message: string, options?: ErrorOptions) {
    super("INVALID_ARGUMENT", message, options);
  }
}

/** No good copy of a block is left. */
export class CorruptError extends VolumeError {
  override name = "CorruptError";
  constructor(message: string, options?: ErrorOptions) {
    super("CORRUPT", message, options);
  }
}

/** A replica's disk failed and it left service. */
export class DiskFailedError extends VolumeError {
  override name = "DiskFailedError";
  constructor(message: string, options?: ErrorOptions) {
    super("DISK_FAILED", message, options);
  }
}

/** The class of a design.md error code, built with that code's message. */
export function clientError(code: ErrorCode, message: string, options?: ErrorOptions): VolumeError {
  switch (code) {
    case "FENCED":
      return new FencedError(message, options);
    case "STALE_EPOCH":
      return new StaleEpochError(message, options);
    case "VOLUME_BUSY":
      return new VolumeBusyError(message, options);
    case "NO_QUORUM":
      return new NoQuorumError(message, options);
    case "NOT_FOUND":
      return new NotFoundError(message, options);
    case "OUT_OF_RANGE":
      return new OutOfRangeError(message, options);
    case "INVALID_ARGUMENT":
      return new InvalidArgumentError(message, options);
    case "CORRUPT":
      return new CorruptError(message, options);
    case "DISK_FAILED":
      return new DiskFailedError(message, options);
  }
}

/** A VolumeError of any origin as the client's class for its code (the same object if it already is one). */
export function asClientError(err: VolumeError): VolumeError {
  if (err.constructor !== VolumeError) return err;
  return clientError(err.code, err.message, { cause: err.cause ?? err });
}
