import { VolumeError } from "../core/errors.js";
/**
 * The Storage seam: one replica of one volume on disk (or in memory).
 * The daemon's driver executes the core's persist/apply actions through it.
 * Every method that claims durability resolves only after an fdatasync (or
 * its equivalent) that covers the change has returned.
 *
 * Mutating calls (appendLog, truncateLogAfter, resetLogForResync,
 * applyThrough, installRegion, checkpoint, writeSuperblock) take effect in
 * the order they were called, whether or not the caller awaited the one
 * before: the driver issues them in the core's action order.
 */
import type { ClientSession } from "../core/session.js";
import type { Epoch, LogRecord, Lsn, Version, VolumeConfig } from "../core/types.js";

export type { ClientSession } from "../core/session.js";

/** Everything a replica must remember across a crash, apart from the log and the blocks. */
export interface Superblock {
  readonly config: VolumeConfig;
  /** The highest epoch this replica promised (rule 1). */
  readonly promisedEpoch: Epoch;
  /** Highest lsn this replica knows to be committed (may lag the real commit point). */
  readonly commitLsn: Lsn;
  /** False while a region resync is under way (rule 7). */
  readonly consistent: boolean;
  /**
   * While inconsistent: the version this replica's log reached while it was
   * still consistent (what it vouches for, PromiseGranted.witnessHead), as
   * given to resetLogForResync. Null while consistent: setting `consistent`
   * back to true clears it.
   */
  readonly consistentThrough: Version | null;
  /** True after recovery cut a torn or corrupt record: the replica may lack acknowledged records past its head. */
  readonly unsurePastHead: boolean;
  /**
   * Per client, the highest clientSeq among records applied at the last
   * checkpoint (bounded: the most recent clients by lsn). Lets a new primary
   * drop writes a failing-over client replays although they were committed.
   */
  readonly sessions: readonly ClientSession[];
}

/** consistentThrough is set only by resetLogForResync, and cleared by `consistent: true`. */
export type SuperblockPatch = Partial<Omit<Superblock, "config" | "consistentThrough">> & { readonly config?: VolumeConfig };

export interface ReplicaStoreStats {
  /** fdatasync calls made for the log (group commit shares one between many appends). */
  readonly logSyncs: number;
  readonly logRecordsAppended: number;
  /** Records read back from the log to be applied, appended too far past the applied point to be held in memory. */
  readonly logRecordsReadBack: number;
  readonly blocksRead: number;
  readonly checksumMismatches: number;
}

export interface ReplicaStore {
  /** The last durable superblock. */
  superblock(): Superblock;

  /** Atomically and durably replaces the superblock fields given. */
  writeSuperblock(patch: SuperblockPatch): Promise<void>;

  /**
   * Version of the last record held in order (VERSION_ZERO for an empty
   * history). After a region resync started this is the snapshot version the
   * resync began from, or a later appended record.
   */
  head(): Version;

  /**
   * The version just before the first retained record (the log's `prev`):
   * the point a checkpoint trimmed to, or the snapshot a region resync began
   * from. The driver seeds the core's log with logBase() and
   * readLog(logStartLsn(), head().lsn).
   */
  logBase(): Version;

  /** Version of the record at `lsn` if it is in the retained log or is the applied point; null otherwise. */
  versionAt(lsn: Lsn): Version | null;

  /**
   * Appends records that follow head() in lsn order. Resolves when they are
   * durable. Appends that arrive while an fdatasync runs share the next one
   * (group commit). Rejects with VolumeError DISK_FAILED after any write or
   * fsync error; the store is then out of service for good.
   */
  appendLog(records: readonly LogRecord[]): Promise<void>;

  /**
   * Durably drops every record after `lsn` (a divergent uncommitted tail).
   * `lsn` is never below the applied point.
   */
  truncateLogAfter(lsn: Lsn): Promise<void>;

  /**
   * The start of a region resync (rule 7). If the log holds `snapshot` (the
   * record at snapshot.lsn has its epoch, or it is the log's base), records
   * through it are dropped and the ones after it kept: they may be
   * acknowledged writes. Otherwise every record is dropped (they diverge).
   * Either way logBase() becomes `snapshot`, the applied point moves to it
   * (possibly back: block data is kept as it is, and applying the kept
   * records again is idempotent since every record sets whole blocks),
   * consistent becomes false, `sessions` replace the old ones, and
   * `consistentThrough` is kept. All of it atomically and durably (the
   * applied block data is made durable first) before it resolves. Regions
   * installed before it count as not installed again (see applyThrough).
   */
  resetLogForResync(snapshot: Version, sessions: readonly ClientSession[], consistentThrough: Version): Promise<void>;

  /**
   * Retained records with fromLsn <= lsn <= toLsn, in order; null if some of
   * them are no longer retained. Used at start-up to seed the core's
   * in-memory log; may read from disk.
   */
  readLog(fromLsn: Lsn, toLsn: Lsn): Promise<LogRecord[] | null>;

  /** Lowest lsn still retained in the log (head().lsn + 1 when the log is empty). */
  logStartLsn(): Lsn;

  /**
   * Writes every record with lsn <= `lsn` into the block data (rule 6: only
   * committed ones), updating per-block CRCs and per-region versions. While
   * the replica is inconsistent, a region not installed since the last
   * resetLogForResync (or since open) gets REGION_DIRTY instead of the
   * record's version: its content is then no prefix of the history. Waits
   * for appends of records through `lsn` called before it to be durable.
   * Not durable by itself; checkpoint() makes it so.
   */
  applyThrough(lsn: Lsn): Promise<void>;

  /** Version of the last applied record. */
  appliedVersion(): Version;

  /**
   * Reads applied blocks, verifying each block's CRC-32 (which covers the
   * block index as well as its bytes). Never-written and trimmed blocks read
   * as zeros. A mismatch rejects with VolumeError CORRUPT naming the block;
   * the bytes are never returned.
   */
  /**
   * The applied blocks. A block that fails its checksum fails the read with
   * CorruptBlocksError, which names every such block of the range and holds
   * the others' bytes.
   *
   * The caller owns the bytes (a buffer the store keeps no reference to):
   * it may hand them on, to one holder at a time, and whoever is last may
   * give a large read's buffer back to `readBuffers` (read-buffers.ts) once
   * done with it, to serve another read. So a read must never be shared or
   * cached.
   */
  readBlocks(block: number, blockCount: number): Promise<Uint8Array>;

  /** The version of each region: the last applied record that touched it (VERSION_ZERO if none, REGION_DIRTY, see applyThrough). */
  regionVersions(): readonly Version[];

  /**
   * Reads one region's applied blocks (verified) with its version. With
   * `sinceLsn`, only the blocks that may have been written after it (the
   * store keeps, per block, an upper bound on the lsn of its last write):
   * `blocks` (block-mask.ts) says which, `data` holds their bytes in order.
   * Without, every block, and `blocks` is null.
   */
  readRegion(region: number, sinceLsn?: Lsn | null): Promise<{ data: Uint8Array; version: Version; blocks: Uint8Array | null }>;
  /**
   * The applied blocks' checksums of a region (CRC-32 of block number and
   * bytes, as stored; 0 for a block that reads as zeros), from the block
   * metadata and applied records not yet checkpointed: no block data is
   * read. Replicas that hold the same bytes give the same numbers.
   */
  blockChecksums(region: number): Promise<Uint32Array>;

  /**
   * The content digests of regions first .. first + count - 1 (regionDigest
   * of each one's blockChecksums), in one turn of call order: all as of the
   * same applied point.
   */
  regionDigests(first: number, count: number): Promise<number[]>;

  /**
   * Installs a region copied from a peer during region resync, then re-applies
   * every applied record after `copiedAt` that touches the region, so that a
   * newer record already written here is never overwritten by older bytes.
   * With `blocks` (a block mask), `data` holds only the blocks it names; the
   * others are left as they are (the source wrote none of them since this
   * replica's version of the region). The store keeps `data` (views of it
   * stand for the blocks until a checkpoint writes them), so the caller must
   * not change it afterwards: a region received from a peer is installed
   * without a copy.
   */
  installRegion(region: number, data: Uint8Array, version: Version, copiedAt: Lsn, blocks?: Uint8Array | null): Promise<void>;

  /**
   * Makes the applied block data durable, then trims the log up to the
   * applied point while retaining a tail for catch-up of peers (a size cap).
   */
  checkpoint(): Promise<void>;

  /**
   * Blocks whose bytes this store holds in memory until a checkpoint has
   * written them: applied or installed since the last checkpoint began, and
   * those a checkpoint is writing now.
   */
  heldBlocks(): number;

  stats(): ReplicaStoreStats;

  /** Syncs, releases the data-directory lock, closes files. */
  close(): Promise<void>;
}

/** Blocks of a read that failed their checksum (CORRUPT): which ones, and the read's bytes with those zeroed. */
export class CorruptBlocksError extends VolumeError {
  override name = "CorruptBlocksError";
  /**
   * The read's bytes, each corrupt block's zeroed: never its bad bytes. Not
   * enumerable, so that logging the error (pino copies an error's
   * enumerable fields) never writes a volume's data into the logs.
   */
  declare readonly data: Uint8Array;
  constructor(
    message: string,
    readonly blocks: readonly number[],
    data: Uint8Array,
  ) {
    super("CORRUPT", message);
    Object.defineProperty(this, "data", { value: data, enumerable: false });
  }
}
