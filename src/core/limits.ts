/**
 * Every bound of replivol in one place. How the bounds relate is asserted
 * when this module loads.
 */
import { assert } from "./assert.js";

export const limits = {
  /** Bytes in a block of a real volume. */
  blockSize: 4096,
  /** Blocks per region: the unit of version tracking and region resync (1 MiB). */
  regionBlocks: 256,
  /** Largest volume: 16 TiB. */
  volumeBlockCountMax: 2 ** 32,
  volumeNameLengthMax: 64,
  replicaCountMax: 7,

  /** Records in one append message. */
  appendRecordsPerMessageMax: 256,
  /** Payload bytes in one append message. */
  appendBytesPerMessageMax: 1024 * 1024,
  /** Records sent to a follower but not yet acked. */
  appendRecordsInFlightMax: 4096,
  /**
   * Payload bytes sent to a follower but not yet acked. Each append message
   * the transport sends holds its own copy of its records' bytes until the
   * follower takes it: without this a follower slower than the writes (the
   * one a 2-of-3 quorum does not wait for) kept 4096 records of up to 1 MiB
   * queued in the primary's memory.
   */
  appendBytesInFlightMax: 16 * 1024 * 1024,
  /** Client requests queued at a primary before it pushes back. */
  clientRequestsQueuedMax: 4096,
  /** Blocks in one client write/read/trim request. */
  requestBlocksMax: 1024,

  /**
   * Log records kept after they are applied, for catch-up of peers. Every
   * replica holds them in memory (a primary up to twice as many while a
   * follower needs them): at 64 MiB they were most of a node's resident
   * memory. A replica further behind comes back by region resync, which
   * copies only the blocks written since its version.
   */
  logRetainedRecordsMax: 65536,
  logRetainedBytesMax: 16 * 1024 * 1024,

  /** A lease is valid this long after the send time of the heartbeat a majority acked. */
  leaseMs: 3000,
  /** Clock drift we tolerate between nodes, in parts per thousand. */
  clockDriftPermille: 50,
  /** Heartbeat (empty append) interval of a primary. */
  heartbeatMs: 250,
  /** A mount gives up if it has no majority of promises in this time. */
  mountTimeoutMs: 5000,
  /** A write not committed in this time is answered NO_QUORUM (its outcome is then unknown). */
  writeTimeoutMs: 8000,
  /** Bounded retries of a promise round after STALE_EPOCH. */
  promiseRoundsMax: 8,
  /** Nodes in a cluster file. */
  clusterNodesMax: 64,

  /** Client sessions a replica remembers for dropping replayed duplicates (the most recent by lsn). */
  clientSessionsMax: 1024,
  /** A log segment file is closed and a new one started past this size; trimming deletes whole segments. */
  logSegmentBytes: 16 * 1024 * 1024,
  /** Regions whose per-block checksums a replica keeps cached in memory (8 bytes per block). */
  blockMetaRegionsCachedMax: 4096,
  /** Regions whose per-block last-write bounds a replica keeps in memory for block-granular resync (8 bytes per block). */
  blockLsnRegionsMax: 4096,
  /** Bytes of log records written (and fdatasync'ed) as one group commit. */
  logGroupBytesMax: 8 * 1024 * 1024,
  /**
   * Log bytes past a replica's applied point whose records it keeps in
   * memory as well (to apply them without reading them back); records
   * appended further ahead are read back from the log when applied.
   */
  logUnappliedHeldBytesMax: 16 * 1024 * 1024,
} as const;

assert(limits.blockSize > 0 && (limits.blockSize & (limits.blockSize - 1)) === 0, "blockSize is a power of two");
assert(limits.appendBytesPerMessageMax >= limits.blockSize, "an append message holds at least one block");
assert(limits.requestBlocksMax * limits.blockSize <= 4 * 1024 * 1024, "a client request fits in 4 MiB");
assert(limits.appendRecordsInFlightMax >= limits.appendRecordsPerMessageMax, "the window holds a whole message");
assert(limits.appendBytesInFlightMax >= limits.appendBytesPerMessageMax, "the byte window holds a whole message");
assert(limits.heartbeatMs * 4 <= limits.leaseMs, "several heartbeats per lease");
assert(limits.clockDriftPermille < 200, "drift margin below 20%");
assert(limits.writeTimeoutMs > limits.leaseMs, "a write outlives a lease wait");
assert(limits.mountTimeoutMs > limits.heartbeatMs * 2, "a mount waits for more than one heartbeat");
