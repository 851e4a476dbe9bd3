/**
 * The client library's bounds. They sit beside the core's (src/core/limits.ts)
 * and are checked against them when this module loads.
 */
import { assert } from "../core/assert.js";
import { limits } from "../core/limits.js";

export const clientLimits = {
  /** Blocks one request covers at most: a larger read or write is split at block boundaries. */
  requestBlocksMax: 256,
  /** Requests sent on the Io stream and not yet answered. */
  inFlightRequestsMax: 256,
  /** Payload bytes (write data plus read lengths) sent and not yet answered. */
  inFlightBytesMax: 32 * 1024 * 1024,
  /** Requests in one IoBatch stream message. */
  batchRequestsMax: 64,
  /** Write payload bytes in one IoBatch (a batch always holds at least one request). */
  batchBytesMax: 1024 * 1024,
  /** Largest stream message the client accepts (reply batches carry read data). */
  receiveMessageBytesMax: 64 * 1024 * 1024,
  /**
   * A request with no reply this long means the primary is cut off from us:
   * fail over. Longer than the primary's own write timeout, after which it
   * answers NO_QUORUM itself.
   */
  replyTimeoutMs: limits.writeTimeoutMs + 2000,
  /** One Mount call waits this long (the node's own mount gives up after mountTimeoutMs). */
  mountCallTimeoutMs: limits.mountTimeoutMs + 2000,
  /** Admin and Unmount calls. */
  controlCallTimeoutMs: 3000,
  /**
   * A failover starts no mount attempt after this long; its pending requests
   * then fail with NO_QUORUM at most one mount call later. So a write fails
   * with NoQuorumError at most writeTimeoutMs + failoverTimeoutMs +
   * mountCallTimeoutMs after it was sent (see noQuorumBoundMs).
   */
  failoverTimeoutMs: 15_000,
  /** Mount attempts of one failover, over all nodes. */
  failoverAttemptsMax: 24,
  /** Pause between rounds of mount attempts over the replica set. */
  failoverRoundPauseMs: 250,
} as const;

/** The longest a write waits before it fails with NoQuorumError when no quorum can be had. */
export const noQuorumBoundMs = limits.writeTimeoutMs + clientLimits.failoverTimeoutMs + clientLimits.mountCallTimeoutMs;

assert(clientLimits.requestBlocksMax <= limits.requestBlocksMax, "a client request is one the primary accepts");
assert(clientLimits.requestBlocksMax * limits.blockSize <= clientLimits.batchBytesMax, "a batch holds a whole request");
assert(clientLimits.batchBytesMax <= 4 * 1024 * 1024 - 64 * 1024, "a batch fits gRPC's default 4 MiB receive limit");
assert(clientLimits.inFlightBytesMax + clientLimits.batchBytesMax <= clientLimits.receiveMessageBytesMax, "a reply batch of the whole window fits");
assert(clientLimits.inFlightRequestsMax >= clientLimits.batchRequestsMax, "the window holds a whole batch");
assert(clientLimits.replyTimeoutMs > limits.writeTimeoutMs, "the primary times a write out before the client gives up on it");
assert(clientLimits.failoverTimeoutMs > clientLimits.mountCallTimeoutMs * 2, "a failover outlives two mount attempts");
