/**
 * The Storage seam: one replica of one volume on disk (or in memory).
 * The daemon's driver executes the core's persist/apply actions through it.
 * Every method that claims durability resolves only after an fdatasync (or
 * its equivalent) that covers the change has returned.
 */
import type { ClientId, Epoch, LogRecord, Lsn, Version, VolumeConfig } from "../core/types.js";

/** Everything a replica must remember across a crash, apart from the log and the blocks. */
export interface Superblock {
  readonly config: VolumeConfig;
  /** The highest epoch this replica promised (rule 1). */
  readonly promisedEpoch: Epoch;
  /** Highest lsn this replica knows to be committed (may lag the real commit point). */
  readonly commitLsn: Lsn;
  /** False while a region resync is under way (rule 7). */
  readonly consistent: boolean;
  /** True after recovery cut a torn or corrupt record: the replica may lack acknowledged records past its head. */
  readonly unsurePastHead: boolean;
  /**
   * Per client, the highest clientSeq among records applied at the last
   * checkpoint (bounded: the most recent clients by lsn). Lets a new primary
   * drop writes a failing-over client replays although they were committed.
   */
  readonly sessions: readonly ClientSession[];
}

export interface ClientSession {
  readonly clientId: ClientId;
  readonly clientSeq: number;
  readonly lsn: Lsn;
}

export type SuperblockPatch = Partial<Omit<Superblock, "config">> & { readonly config?: VolumeConfig };

export interface ReplicaStoreStats {
  /** fdatasync calls made for the log (group commit shares one between many appends). */
  readonly logSyncs: number;
  readonly logRecordsAppended: number;
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
   * Drops the whole log and makes `snapshot` the head, durably, with
   * consistent=false and the source's sessions: the start of a region
   * resync (rule 7). Block data is kept: regions whose version equals the
   * source's are not copied.
   */
  resetLogForResync(snapshot: Version, sessions: readonly ClientSession[]): Promise<void>;

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
   * committed ones), updating per-block CRCs and per-region versions.
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
  readBlocks(block: number, blockCount: number): Promise<Uint8Array>;

  /** The version of each region: the last applied record that touched it (VERSION_ZERO if none). */
  regionVersions(): readonly Version[];

  /** Reads one region's applied blocks (verified) with its version. */
  readRegion(region: number): Promise<{ data: Uint8Array; version: Version }>;

  /**
   * Installs a region copied from a peer during region resync, then re-applies
   * every applied record after `copiedAt` that touches the region, so that a
   * newer record already written here is never overwritten by older bytes.
   */
  installRegion(region: number, data: Uint8Array, version: Version, copiedAt: Lsn): Promise<void>;

  /**
   * Makes the applied block data durable, then trims the log up to the
   * applied point while retaining a tail for catch-up of peers (a size cap).
   */
  checkpoint(): Promise<void>;

  stats(): ReplicaStoreStats;

  /** Syncs, releases the data-directory lock, closes files. */
  close(): Promise<void>;
}
