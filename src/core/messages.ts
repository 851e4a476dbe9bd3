/**
 * What the core exchanges: peer messages (carried by proto/replication.proto),
 * client requests and results, and the events in / actions out of step().
 */
import type { ErrorCode } from "./errors.js";
import type { BlockIndex, ClientId, Epoch, LogRecord, Lsn, NodeId, RecordKind, Ticks, Version, VolumeConfig } from "./types.js";
import type { ClientSession } from "./session.js";

// ---------------------------------------------------------------------------
// Peer messages. Every one names the volume and the sender's epoch; the
// receiver checks the epoch first (rule 1).

export interface PromiseRequest {
  readonly type: "promise";
  readonly epoch: Epoch;
  readonly clientId: ClientId;
  /** Take over a live mount of another client (volctl --force). */
  readonly takeover: boolean;
  /** The candidate's configuration version (see ReplicaCore.onMessage). */
  readonly configVersion: number;
}

export interface PromiseGranted {
  readonly type: "promiseGranted";
  readonly epoch: Epoch;
  /** Durable head: every record up to it is on this replica's disk. */
  readonly head: Version;
  readonly commitLsn: Lsn;
  readonly consistent: boolean;
  readonly unsurePastHead: boolean;
  /**
   * What this replica vouches for: every committed record it acknowledged
   * is in its history at or before this version. Its durable head when
   * consistent; when inconsistent, the point its log reached while it was
   * still consistent (acknowledgements since then never counted toward W).
   */
  readonly witnessHead: Version;
  /**
   * Ticks (on the replica's clock) since it last answered a primary of an
   * older epoch, or null if never since it started without a promise. A lease
   * the old primary held through this replica ran out at most a lease after that.
   */
  readonly sinceOlderLeaseTicks: number | null;
  /** The latest configuration in the promiser's log: a mount needs a majority of its voters too. */
  readonly config: VolumeConfig;
}

export interface PromiseRefused {
  readonly type: "promiseRefused";
  readonly epoch: Epoch;
  readonly reason: "stale" | "busy";
  readonly promisedEpoch: Epoch;
}

/** A candidate fetches the records it lacks from the base (rule 2). */
export interface FetchRequest {
  readonly type: "fetch";
  readonly epoch: Epoch;
  /** First lsn wanted; the candidate holds everything before it in common with the base. */
  readonly fromLsn: Lsn;
  /** Last lsn wanted; null for everything up to the durable head. */
  readonly toLsn: Lsn | null;
}

export interface FetchReply {
  readonly type: "fetchReply";
  readonly epoch: Epoch;
  /** Version of the record just before the first one sent. */
  readonly prev: Version;
  readonly records: readonly LogRecord[];
  /** False if the peer no longer retains fromLsn; `prev` is then its log's base. */
  readonly retained: boolean;
  readonly head: Version;
}

export interface AppendRequest {
  readonly type: "append";
  readonly epoch: Epoch;
  readonly prev: Version;
  readonly records: readonly LogRecord[];
  readonly commitLsn: Lsn;
  /** Echoed in the reply; the primary knows when it sent it (lease). */
  readonly seq: number;
}

export interface AppendReply {
  readonly type: "appendReply";
  readonly epoch: Epoch;
  readonly seq: number;
  readonly ok: boolean;
  /** With ok: every record up to here matches the primary's log and is durable. */
  readonly matchLsn: Lsn;
  /** Durable head (on a mismatch, where the primary should look). */
  readonly head: Version;
  readonly commitLsn: Lsn;
  readonly consistent: boolean;
}

/**
 * Start of a region resync from `snapshot` (a committed version, at least the
 * target's commit point): the target drops its records up to the snapshot,
 * keeps the ones after it if its log holds the snapshot (else drops all: they
 * diverge), and marks itself inconsistent.
 */
export interface ResyncBegin {
  readonly type: "resyncBegin";
  readonly epoch: Epoch;
  readonly snapshot: Version;
  readonly sessions: readonly ClientSession[];
  readonly seq: number;
  /** The primary's configuration: the target's until the records after the snapshot bring theirs. */
  readonly config: VolumeConfig;
}

export interface ResyncBeginReply {
  readonly type: "resyncBeginReply";
  readonly epoch: Epoch;
  readonly seq: number;
  readonly snapshot: Version;
  /** Where the target's log now starts: the snapshot, or its own base if that is later. */
  readonly effectiveSnapshot: Version;
  /** The target's region versions at the moment it reset, before it applied anything new. */
  readonly regionVersions: readonly Version[];
}

export interface RegionCopy {
  readonly type: "region";
  readonly epoch: Epoch;
  readonly region: number;
  /** The bytes of the blocks `blocks` names, in order (of every block of the region if it is null). */
  readonly data: Uint8Array;
  /**
   * Which blocks of the region `data` carries (block-mask.ts), or null for
   * all: those written at the source after the target's version of the
   * region. The others hold the same bytes on both.
   */
  readonly blocks: Uint8Array | null;
  readonly version: Version;
  /** The source's applied lsn when it read the region. */
  readonly copiedAt: Lsn;
  /** The resync attempt (ResyncBegin.seq) the copy was sent for. */
  readonly seq: number;
}

export interface RegionReply {
  readonly type: "regionReply";
  readonly epoch: Epoch;
  readonly region: number;
  /** The copy's attempt: a late reply to an earlier attempt's copy never counts for a later one. */
  readonly seq: number;
}

export interface ResyncDone {
  readonly type: "resyncDone";
  readonly epoch: Epoch;
  readonly snapshot: Version;
  /** The attempt (ResyncBegin.seq) whose regions are all installed. */
  readonly seq: number;
}

export interface ResyncDoneReply {
  readonly type: "resyncDoneReply";
  readonly epoch: Epoch;
  readonly snapshot: Version;
}

/** The mount ended cleanly: replicas stop counting its lease as live. */
export interface ReleaseRequest {
  readonly type: "release";
  readonly epoch: Epoch;
}

/** Generic refusal of a message from an older epoch: STALE_EPOCH(current). */
export interface StaleEpoch {
  readonly type: "stale";
  readonly epoch: Epoch;
  readonly promisedEpoch: Epoch;
  /** The newer epoch is a node's own mount (idle sync, an operator's): the old mount's client fails over, it is not fenced. */
  readonly byReserved: boolean;
}

/**
 * Rule 9: a primary that found `block` corrupt in its own data asks an
 * in-sync follower for its copy.
 */
export interface BlockFetch {
  readonly type: "blockFetch";
  readonly epoch: Epoch;
  readonly seq: number;
  readonly block: BlockIndex;
}

/**
 * The follower's applied copy of the block, as of `appliedLsn` (every
 * record through it, none after); null if its own copy failed its checksum
 * too or it is not consistent.
 */
export interface BlockData {
  readonly type: "blockData";
  readonly epoch: Epoch;
  readonly seq: number;
  readonly block: BlockIndex;
  readonly appliedLsn: Lsn;
  readonly data: Uint8Array | null;
}

/** A follower found blocks of its own data failing their checksum (a scrub): the primary repairs them. */
export interface CorruptReport {
  readonly type: "corruptReport";
  readonly epoch: Epoch;
  readonly blocks: readonly BlockIndex[];
}

/**
 * Idle sync (P6 without a mount): a replica that has heard from no primary
 * for a while asks its peers where they stand. Epoch-free: it changes
 * nothing, and the answer only decides whether a sync mount is worth it.
 */
export interface HeadProbe {
  readonly type: "headProbe";
  readonly epoch: Epoch;
  readonly seq: number;
}

export interface HeadReport {
  readonly type: "headReport";
  readonly epoch: Epoch;
  readonly seq: number;
  readonly head: Version;
  readonly commitLsn: Lsn;
  readonly consistent: boolean;
  readonly unsurePastHead: boolean;
  /** Ticks since it last heard a primary, null if never since it started. */
  readonly heardPrimaryTicksAgo: number | null;
  /** Its applied point, and a digest of its region versions there: replicas at one applied point must agree (a lost write shows). */
  readonly appliedLsn: Lsn;
  readonly regionsDigest: number;
  /** Whether the configuration in its log is known committed (a change left half done needs a primary). */
  readonly configCommitted: boolean;
}

/**
 * Scrub across replicas (a lost write shows when replicas compare): the
 * primary's region versions as of its applied point, for regions
 * first .. first + versions.length - 1, and the digests of its content
 * there (see the readRegionDigests action), one per version, or none.
 */
export interface RegionVersions {
  readonly type: "regionVersions";
  readonly epoch: Epoch;
  readonly appliedLsn: Lsn;
  readonly first: number;
  readonly versions: readonly Version[];
  readonly digests: readonly number[] | null;
}

/** Regions whose versions disagree with the primary's: the follower's copy is older, or the primary's is. */
export interface RegionVersionsReply {
  readonly type: "regionVersionsReply";
  readonly epoch: Epoch;
  readonly followerStale: readonly number[];
  readonly primaryStale: readonly number[];
}

/**
 * A follower's content digests of the regions of a RegionVersions (named
 * by the primary's `appliedLsn` there) whose version equals the primary's:
 * equal versions must mean equal bytes, and a majority of equal digests
 * tells which copy is good.
 */
export interface RegionDigestsReply {
  readonly type: "regionDigestsReply";
  readonly epoch: Epoch;
  readonly appliedLsn: Lsn;
  readonly regions: readonly number[];
  readonly digests: readonly number[];
}

export type PeerMessage =
  | PromiseRequest
  | PromiseGranted
  | PromiseRefused
  | FetchRequest
  | FetchReply
  | AppendRequest
  | AppendReply
  | ResyncBegin
  | ResyncBeginReply
  | RegionCopy
  | RegionReply
  | ResyncDone
  | ResyncDoneReply
  | ReleaseRequest
  | StaleEpoch
  | BlockFetch
  | BlockData
  | CorruptReport
  | HeadProbe
  | HeadReport
  | RegionVersions
  | RegionVersionsReply
  | RegionDigestsReply;

// ---------------------------------------------------------------------------
// Client requests, served by the node the client mounted through.

export type RequestId = number;

export interface MountRequest {
  readonly type: "mount";
  readonly clientId: ClientId;
  readonly takeover: boolean;
}

export interface WriteRequest {
  readonly type: "write";
  readonly clientId: ClientId;
  /** Increases by one per write-like request of this client; replays keep their number. */
  readonly clientSeq: number;
  readonly kind: Exclude<RecordKind, "mountStart" | "config">;
  readonly block: BlockIndex;
  readonly blockCount: number;
  readonly data: Uint8Array | null;
}

export interface ReadRequest {
  readonly type: "read";
  readonly block: BlockIndex;
  readonly blockCount: number;
}

export interface UnmountRequest {
  readonly type: "unmount";
}

/**
 * Replace the replica on `from` by a new one on `to` (which holds an empty
 * replica of the volume): asked of the active primary; answered once the
 * learner configuration is committed. The primary then builds the learner
 * and moves the configuration on by itself (see VolumeConfig).
 */
export interface ReplaceRequest {
  readonly type: "replace";
  readonly from: NodeId;
  readonly to: NodeId;
}

export type ClientRequest = MountRequest | WriteRequest | ReadRequest | UnmountRequest | ReplaceRequest;

export interface RequestFailure {
  readonly ok: false;
  readonly code: ErrorCode;
  readonly message: string;
  /** A node that can serve the request (mount through the base). */
  readonly retryAt?: NodeId;
}

export type MountResult = { readonly ok: true; readonly epoch: Epoch; readonly blockCount: number; readonly blockSize: number } | RequestFailure;
export type WriteResult = { readonly ok: true; readonly epoch: Epoch; readonly lsn: Lsn } | RequestFailure;
export type UnmountResult = { readonly ok: true } | RequestFailure;

// ---------------------------------------------------------------------------
// step(event) -> actions

export type DurableToken = number;

export type CoreEvent =
  | { readonly type: "tick"; readonly now: Ticks }
  | { readonly type: "message"; readonly from: NodeId; readonly msg: PeerMessage }
  | { readonly type: "request"; readonly reqId: RequestId; readonly req: ClientRequest }
  /** A persist action (superblock, log append/truncate/reset, region install, consistency) is durable. */
  | { readonly type: "durable"; readonly token: DurableToken }
  /**
   * Blocks of the applied data failed their checksum (rule 9), found by the
   * read of a readBlocks action (`read`: that read, not answered yet; the
   * core serves it again once the blocks are repaired) or another read.
   */
  | { readonly type: "corrupt"; readonly blocks: readonly BlockIndex[]; readonly read: { readonly reqId: RequestId; readonly req: ReadRequest } | null }
  /** The copy of a sendRegion action went out, carrying `bytes` of block data: what the resync counts and paces. */
  | { readonly type: "regionSent"; readonly to: NodeId; readonly region: number; readonly seq: number; readonly bytes: number }
  /** The digests a readRegionDigests action asked for, one per region in its order. */
  | { readonly type: "regionDigests"; readonly seq: number; readonly digests: readonly number[] };

export interface SuperblockPatch {
  readonly promisedEpoch?: Epoch;
  readonly commitLsn?: Lsn;
  readonly unsurePastHead?: boolean;
  readonly config?: VolumeConfig;
}

export type CoreAction =
  | { readonly type: "send"; readonly to: NodeId; readonly msg: PeerMessage }
  | { readonly type: "persistSuperblock"; readonly patch: SuperblockPatch; readonly token: DurableToken }
  | { readonly type: "appendLog"; readonly records: readonly LogRecord[]; readonly token: DurableToken }
  | { readonly type: "truncateLog"; readonly afterLsn: Lsn; readonly token: DurableToken }
  | {
      readonly type: "resetLogForResync";
      readonly snapshot: Version;
      readonly sessions: readonly ClientSession[];
      /** Kept durably while inconsistent: see PromiseGranted.witnessHead. */
      readonly consistentThrough: Version;
      readonly token: DurableToken;
    }
  | { readonly type: "installRegion"; readonly region: number; readonly data: Uint8Array; readonly blocks: Uint8Array | null; readonly version: Version; readonly copiedAt: Lsn; readonly token: DurableToken }
  /** Make applied data durable, then mark the replica consistent. */
  | { readonly type: "markConsistent"; readonly token: DurableToken }
  /** Write committed records through `lsn` into the block data (rule 6). */
  | { readonly type: "apply"; readonly throughLsn: Lsn }
  /** Read the applied blocks, lay `overlay` (records not yet applied, in lsn order) over them, answer `reqId`. */
  | { readonly type: "readBlocks"; readonly reqId: RequestId; readonly block: BlockIndex; readonly blockCount: number; readonly overlay: readonly LogRecord[] }
  /** Read one block of the applied data and send it to `to` as BlockData (null data if it fails its checksum). */
  | { readonly type: "sendBlock"; readonly to: NodeId; readonly epoch: Epoch; readonly seq: number; readonly block: BlockIndex }
  /**
   * Read a region of the applied data and send it to `to` as a RegionCopy of
   * `epoch`: only its blocks written after `sinceLsn` (the target's version of
   * the region), or every block if it is null.
   */
  | { readonly type: "sendRegion"; readonly to: NodeId; readonly epoch: Epoch; readonly region: number; readonly seq: number; readonly sinceLsn: Lsn | null }
  /**
   * Digest the content of regions first .. first + count - 1 of the applied
   * data as of this action (after the applies before it, before those after
   * it), and answer with a regionDigests event of `seq`. A region's digest
   * is the CRC-32 of its blocks' stored checksums in block order (little
   * endian; 0 for a block that reads as zeros): replicas holding the same
   * bytes give the same digest. No block data is read.
   */
  | { readonly type: "readRegionDigests"; readonly seq: number; readonly first: number; readonly count: number }
  | { readonly type: "reply"; readonly reqId: RequestId; readonly result: MountResult | WriteResult | UnmountResult | RequestFailure }
  /** A protocol state change, for the log. */
  | { readonly type: "trace"; readonly event: string; readonly detail: Readonly<Record<string, string | number | boolean>> };
