/**
 * One replica of one volume, as a pure state machine: step(event) returns
 * actions. The same object plays the primary when a client mounts through
 * this node. Raft's log replication with the leader chosen by a mount: the
 * epoch is the term, the primary the leader (design.md, rules 1-8).
 *
 * The driver's contract: execute persist actions in order, report each as
 * `durable` in order, execute `apply`/`readBlocks`/`sendRegion`/
 * `installRegion` in the order given (they touch the same block data), and
 * send messages only as the actions say (the core already withholds every
 * message that depends on a persist until that persist is durable).
 */
import { assert } from "./assert.js";
import type { ErrorCode } from "./errors.js";
import { limits } from "./limits.js";
import { RecordLog, touches } from "./log.js";
import type {
  AppendReply,
  AppendRequest,
  BlockData,
  BlockFetch,
  CorruptReport,
  ClientRequest,
  CoreAction,
  CoreEvent,
  DurableToken,
  FetchReply,
  FetchRequest,
  MountRequest,
  PeerMessage,
  PromiseGranted,
  PromiseRefused,
  PromiseRequest,
  ReadRequest,
  RegionCopy,
  RegionReply,
  RequestFailure,
  RequestId,
  ResyncBegin,
  ResyncBeginReply,
  ResyncDone,
  ResyncDoneReply,
  StaleEpoch,
  SuperblockPatch,
  WriteRequest,
  ReplaceRequest,
  HeadProbe,
  HeadReport,
  RegionVersions,
  RegionVersionsReply,
  RegionDigestsReply,
} from "./messages.js";
import { configMembers, decodeConfig, encodeConfig, isVoter, replacedSet, voterSets } from "./config.js";
import { chooseBaseAcross, commitPoint, leaseStart, mostUpToDate, trustedHead } from "./quorum.js";
import { foldSessions, type ClientSession } from "./session.js";
import {
  asBlock,
  asEpoch,
  asLsn,
  compareVersion,
  coversBlocks,
  formatVersion,
  recordVersion,
  REGION_DIRTY,
  VERSION_ZERO,
  versionEquals,
  writeQuorum,
  type BlockIndex,
  type ClientId,
  type Epoch,
  type LogRecord,
  type Lsn,
  type NodeId,
  type Ticks,
  type Version,
  type VolumeConfig,
} from "./types.js";

export interface CoreTiming {
  readonly leaseTicks: number;
  readonly heartbeatTicks: number;
  /** Without progress from a follower for this long, resend from its last match. */
  readonly resendTicks: number;
  readonly mountTimeoutTicks: number;
  readonly writeTimeoutTicks: number;
  readonly driftPermille: number;
}

export const DEFAULT_TIMING: CoreTiming = {
  leaseTicks: limits.leaseMs,
  heartbeatTicks: limits.heartbeatMs,
  resendTicks: limits.heartbeatMs * 2,
  mountTimeoutTicks: limits.mountTimeoutMs,
  writeTimeoutTicks: limits.writeTimeoutMs,
  driftPermille: limits.clockDriftPermille,
};

/**
 * Protocol bugs that tests plant on purpose to show that the simulator's
 * checker catches them. Never a setting: off unless a test turns one on.
 */
export interface TestOnlyPlantedBugs {
  /** Acknowledge a write once one replica (the primary) holds it. */
  readonly ackBeforeQuorum?: boolean;
  /** A replica accepts appends of an epoch older than its promise. */
  readonly acceptStaleEpoch?: boolean;
  /** A mount takes the promiser with the smallest head as its base. */
  readonly baseAnyReplica?: boolean;
  /** A replica applies records to its blocks before they are committed. */
  readonly applyUncommitted?: boolean;
  /** An inconsistent (resyncing) replica counts toward W. */
  readonly countInconsistent?: boolean;
  /** A new primary acknowledges before leases it cut short ran out. */
  readonly noLeaseWait?: boolean;
  /** A resyncing replica is marked consistent before its region resync finished. */
  readonly resyncMarkEarly?: boolean;
  /** A repair takes a follower's copy of a corrupt block as it is, without the records after its applied point. */
  readonly repairNoOverlay?: boolean;
  /** The scrub across replicas compares region versions only, not content digests. */
  readonly scrubVersionsOnly?: boolean;
  /** A mount without takeover ends another client's takeover in progress on the node it asks to promise. */
  readonly preemptMountInProgress?: boolean;
}

export const PLANTED_BUG_NAMES = {
  "ack-before-quorum": "ackBeforeQuorum",
  "accept-stale-epoch": "acceptStaleEpoch",
  "base-any-replica": "baseAnyReplica",
  "apply-uncommitted": "applyUncommitted",
  "count-inconsistent": "countInconsistent",
  "no-lease-wait": "noLeaseWait",
  "resync-mark-early": "resyncMarkEarly",
  "repair-no-overlay": "repairNoOverlay",
  "scrub-versions-only": "scrubVersionsOnly",
  "preempt-mount-in-progress": "preemptMountInProgress",
} as const satisfies Record<string, keyof TestOnlyPlantedBugs>;

export interface ReplicaCoreOptions {
  readonly nodeId: NodeId;
  readonly config: VolumeConfig;
  readonly timing?: CoreTiming;
  readonly regionBlocks?: number;
  readonly logRetainedRecordsMax?: number;
  readonly logRetainedBytesMax?: number;
  readonly sessionsMax?: number;
  readonly regionsInFlightMax?: number;
  /** Resync throttle: at least this long between two region copies a primary starts (0: unthrottled). */
  readonly resyncRegionIntervalTicks?: number;
  readonly appendRecordsPerMessageMax?: number;
  readonly appendRecordsInFlightMax?: number;
  readonly appendBytesInFlightMax?: number;
  readonly testOnlyPlantedBugs?: TestOnlyPlantedBugs;
}

/** What the storage recovered; a fresh replica passes the empty state. */
export interface RecoveredReplica {
  readonly promisedEpoch: Epoch;
  readonly commitLsn: Lsn;
  readonly consistent: boolean;
  /** While inconsistent: the version its log reached while it was consistent. */
  readonly consistentThrough: Version | null;
  readonly unsurePastHead: boolean;
  readonly sessions: readonly ClientSession[];
  readonly logBase: Version;
  readonly records: readonly LogRecord[];
  /** The storage's applied point: block data reflects every record through it. */
  readonly appliedLsn: Lsn;
  readonly regionVersions: readonly Version[];
  readonly now: Ticks;
}

type PrimaryPhase = "promising" | "fetching" | "mounting" | "active";

interface ResyncProgress {
  phase: "begin" | "copy" | "done";
  readonly snapshot: Version;
  /** The begin message of this attempt: sent again, as it is, until the target answers (see onTick). */
  readonly begin: ResyncBegin;
  beginSentTick: number;
  /** Where the target's log starts; regions are compared and copied once this primary applied through it. */
  effective: Version;
  /** The target's region versions when it reset; compared once this primary applied through `effective`. */
  theirVersions: readonly Version[] | null;
  readonly seq: number;
  todo: number[];
  /** Per region to copy, the target's version's lsn: only blocks written after it are sent (null: every block). */
  readonly since: Map<number, Lsn | null>;
  readonly inFlight: Set<number>;
  /** Bytes of block data of each copy in flight, as its sender read them (regionSent). */
  readonly sentBytes: Map<number, number>;
  regionsTotal: number;
  lastProgressTick: number;
  /** Regions the target acknowledged, and their bytes: what this resync moved (kept across restarts of it). */
  regionsCopied: number;
  bytesCopied: number;
  /** When the target first answered (copies began), or the resync was started while it has not. */
  startedTick: number;
}

/** What the last finished region resync of a follower moved. */
export interface ResyncSummary {
  readonly regions: number;
  readonly bytes: number;
  readonly ticks: number;
}

interface Follower {
  readonly node: NodeId;
  nextLsn: Lsn;
  matchLsn: Lsn;
  /** The follower's commit point as it last said. */
  reportedCommitLsn: Lsn;
  /**
   * Send time after which the follower's answers tell its consistency: an
   * answer to an older message may still say "inconsistent" about a resync
   * that has finished since, and must not start another one.
   */
  consistentSinceSeq: number;
  /**
   * Where a resend starts when the follower stops answering: the last point
   * that evidence supports (the first probe, a mismatch answer, an ack),
   * never lower, so silence alone never sends a follower into a resync.
   */
  resendFromLsn: Lsn;
  consistent: boolean;
  /** Send time of the latest message this follower answered in our epoch (lease). */
  ackedSentTick: number | null;
  lastSendTick: number;
  lastProgressTick: number;
  resync: ResyncProgress | null;
  lastResync: ResyncSummary | null;
}

interface PendingWrite {
  readonly reqId: RequestId;
  readonly lsn: Lsn;
  readonly deadline: number;
}

interface PendingRead {
  readonly reqId: RequestId;
  readonly req: ReadRequest;
  /** The last record touching the blocks when the read arrived: it must be committed first. */
  readonly dependsOnLsn: Lsn;
  readonly deadline: number;
}

/** Rule 9: a block of this primary's data that failed its checksum, being fetched from a follower. */
interface Repair {
  /** Followers asked so far (each at most once). */
  readonly asked: Set<NodeId>;
  asking: NodeId | null;
  seq: number;
  sentTick: number;
  /**
   * Set by the scrub across replicas: the one copy that may be asked. When
   * it is a follower's (this primary's own copy is the stale one), its copy
   * is brought forward only with records this log holds (this primary's
   * region version, the shortcut otherwise, is the stale one).
   */
  readonly onlyFrom: NodeId | null;
}

/**
 * Scrub across replicas, by content: what a readRegionDigests action was
 * for. The primary's own, as of its applied point, to send with its region
 * versions; or a follower's, to compare with the primary's digests of the
 * regions whose versions equal its own.
 */
type DigestRead =
  | { readonly kind: "primary"; readonly epoch: Epoch; readonly appliedLsn: Lsn; readonly first: number; readonly versions: readonly Version[] }
  | {
      readonly kind: "follower";
      readonly from: NodeId;
      readonly epoch: Epoch;
      readonly appliedLsn: Lsn;
      readonly first: number;
      /** The primary's versions and digests, and this follower's versions when it asked. */
      readonly theirs: readonly Version[];
      readonly theirDigests: readonly number[];
      readonly mine: readonly Version[];
    };

/** Background batches of the scrub across replicas a lease at most (see sendRegionVersions). */
const DIGEST_BATCHES_PER_LEASE = 6;

/** Digest reads a replica waits for at most (older ones are forgotten: their answers are dropped). */
const DIGEST_READS_MAX = 8;

/**
 * The digests of one region at one version (the primary's, at the applied
 * point it sent them from), by replica: the primary's own and those of the
 * followers that compared. Which one is the good content is decided by
 * lineage (see decideDigestVote); a replica with another one lost a write.
 */
interface DigestVote {
  readonly version: Version;
  readonly appliedLsn: Lsn;
  readonly sentTick: number;
  readonly digests: Map<NodeId, number>;
}

/** A read that found corrupt blocks: served again once each is repaired. */
interface ReadAwaitingRepair {
  readonly reqId: RequestId;
  readonly req: ReadRequest;
  readonly waitingFor: Set<number>;
  dependsOnLsn: Lsn;
  readonly deadline: number;
}

/** Client ids that nodes use for records of their own; the volume service refuses them from clients. */
export const RESERVED_CLIENT_ID_PREFIX = "replivol:";

/** The client id of repair records. */
export const REPAIR_CLIENT_ID = `${RESERVED_CLIENT_ID_PREFIX}repair` as ClientId;

/** The client id of configuration records. */
export const CONFIG_CLIENT_ID = `${RESERVED_CLIENT_ID_PREFIX}config` as ClientId;

/** The client id of a node's own sync mount (see idle sync). */
export const SYNC_CLIENT_ID = `${RESERVED_CLIENT_ID_PREFIX}sync` as ClientId;

/**
 * Region versions per RegionVersions message (about 20 bytes each on the
 * wire, with its digest). Each replica digests a batch while it holds its
 * store's call order (about 5 us a region here): 256 keep that near 1-2 ms.
 */
const REGION_VERSIONS_PER_MESSAGE = 256;

/** The request id of a sync mount and its unmount: their replies stay inside the core. */
const SYNC_REQ_ID: RequestId = -1;

/**
 * Operators' tools (volctl replace) mount with an id under this prefix when
 * no client has the volume mounted: a reserved id, so an application's mount
 * takes theirs over without asking. The only reserved ids clients may use.
 */
export const OPERATOR_CLIENT_ID_PREFIX = `${RESERVED_CLIENT_ID_PREFIX}operator:`;

/** The nodes' own mounts never hold a volume against a client: any mount takes them over without asking. */
export function isReservedClient(clientId: ClientId): boolean {
  return clientId.startsWith(RESERVED_CLIENT_ID_PREFIX);
}

interface PrimarySession {
  phase: PrimaryPhase;
  epoch: Epoch;
  readonly clientId: ClientId;
  readonly takeover: boolean;
  readonly mountReqId: RequestId;
  readonly mountDeadline: number;
  promiseRound: number;
  promiseSentTick: number;
  readonly promises: Map<NodeId, PromiseGranted>;
  /** Voters asked to promise: this replica's own configuration's, and those of newer ones that promisers reported. */
  readonly promiseTargets: Set<NodeId>;
  readonly refusedBusy: Set<NodeId>;
  base: NodeId | null;
  /** The head of the history this mount continues (the base's trusted head). */
  baseTarget: Version;
  /** The fetch under way while catching up from the base (rule 2). */
  fetch: { readonly node: NodeId; readonly fromLsn: Lsn; readonly toLsn: Lsn | null } | null;
  /** After fetching committed records from a helper: the lsn to fetch from the base on. */
  fetchThen: Lsn | null;
  leaseWaitUntil: number;
  mountStartLsn: Lsn;
  readonly followers: Map<NodeId, Follower>;
  readonly pendingWrites: PendingWrite[];
  readonly pendingReads: PendingRead[];
  /** Blocks under repair (rule 9), and the reads waiting for them. */
  readonly repairs: Map<number, Repair>;
  readonly readsAwaitingRepair: ReadAwaitingRepair[];
  /** clientSeq -> lsn of writes sequenced in this epoch (drops retransmits). */
  readonly seqLsn: Map<number, Lsn>;
  /**
   * The mounting client's writes already in the history when the mount
   * began: the clientSeqs in the retained log, and the highest one among
   * records trimmed from it. A replayed write found here is not written
   * again. Sound because a client's requests reach a primary over one
   * stream, in order, and a stream that loses a message delivers nothing
   * after it: a write is never in the history while an earlier write of the
   * same client that it still replays is not.
   */
  seqsAtMount: ReadonlySet<number>;
  trimmedSeqMax: number;
  /** When a committed configuration left this primary out: it steps down once the followers know (see advanceConfig). */
  leavingSince: number | null;
  /** Scrub across replicas, by content: the open votes, by region. */
  readonly digestVotes: Map<number, DigestVote>;
  /** The lsn of the last repair record this primary wrote into each region: a vote from before it is stale. */
  readonly repairedThrough: Map<number, Lsn>;
  activeSince: number;
}

interface PendingReply {
  readonly to: NodeId;
  readonly epoch: Epoch;
  readonly needLsn: Lsn;
  readonly build: () => PeerMessage;
}

interface PendingLogOp {
  readonly token: DurableToken;
  /** The log's head lsn right after this operation. */
  readonly endLsn: Lsn;
  /** Truncations and resets lower what earlier durable appends can claim. */
  readonly lowersTo: Lsn | null;
}

interface DeferredInstall {
  readonly from: NodeId;
  readonly msg: RegionCopy;
}

export class ReplicaCore {
  readonly nodeId: NodeId;
  /** The latest configuration in the log (committed or not): the one this replica acts by. */
  private config: VolumeConfig;
  /** The configuration as of the applied point (the superblock's). */
  private appliedConfig: VolumeConfig;
  /** The lsn of the config record `config` comes from (0: from appliedConfig). */
  private configLsn: Lsn = asLsn(0);
  private readonly timing: CoreTiming;
  private readonly bugs: TestOnlyPlantedBugs;
  /**
   * Whether the guards against the planted bugs are on: always, unless a
   * test planted a bug (an implementation with the bug lacks its guard, and
   * the simulator's checker must see what the bug does).
   */
  private readonly guarded: boolean;
  private readonly regionBlocks: number;
  private readonly retainedRecordsMax: number;
  private readonly retainedBytesMax: number;
  private readonly sessionsMax: number;
  private readonly regionsInFlightMax: number;
  private resyncRegionIntervalTicks: number;
  private lastRegionSentTick = -Infinity;
  private nextRepairSeq = 1;
  /** Rule 9 counters since this replica started: blocks of its own data found corrupt; repairs this primary made and gave up. */
  private corruptFound = 0;
  /** Regions whose versions disagreed between this primary and a follower (scrub across replicas), since it started. */
  private divergentFound = 0;
  /** Scrub across replicas: the next region this primary compares, when the last batch went, and whether a pass was asked now. */
  private versionCheckNext = 0;
  private versionCheckSentTick = -Infinity;
  /** Until when passes run back to back (asked by a scrub: followers that just restarted may not compare yet). */
  private versionCheckFastUntil = -Infinity;
  /**
   * The regions this node, as a primary, copied to each follower by region
   * resync, and when (kept across its mounts, not across a restart): that
   * follower's content of them is this node's, right or wrong (a write its
   * disk lost is lost there too), so it counts as this node's lineage until
   * lineages of their own confirm that content (see decideDigestVote).
   */
  private readonly copiedTo = new Map<NodeId, Map<number, number>>();
  /** Content digests asked of the driver (readRegionDigests), by seq, with what they are compared against. */
  private readonly digestReads = new Map<number, DigestRead>();
  private nextDigestSeq = 1;
  private repairsDone = 0;
  private repairsFailed = 0;
  private readonly recordsPerMessageMax: number;
  private readonly recordsInFlightMax: number;
  private readonly bytesInFlightMax: number;

  private now: number;
  private readonly out: CoreAction[] = [];
  private readonly loopback: { from: NodeId; msg: PeerMessage }[] = [];

  // Durable state (as decided; persisted through actions).
  private promisedEpoch: Epoch;
  private promiseDurableEpoch: Epoch;
  private commitLsn: Lsn;
  private consistent: boolean;
  /** While inconsistent: see PromiseGranted.witnessHead. Durable. */
  private consistentThrough: Version | null;
  private unsurePastHead: boolean;
  private sessions: ClientSession[];
  private readonly log: RecordLog;
  private logDurableLsn: Lsn;
  private appliedLsn: Lsn;
  private readonly regionVersions: Version[];

  // Volatile replica state.
  private promisedTo: NodeId | null = null;
  private promisedClientId: ClientId | null = null;
  /**
   * When this replica last answered a primary (any epoch): a lease that
   * primary holds through this replica runs at most a lease past it. A
   * promise does not reset it: a candidate that never won (a promise round
   * lost to STALE_EPOCH) cut no lease short, the older primary's still
   * counts. A conservative "now" after a restart.
   */
  private lastPrimaryAnswerTick: number | null;
  /** The client whose mount's primary this replica last answered (null: unknown). */
  private leaseClientId: ClientId | null = null;
  private released = false;
  /**
   * The last takeover of a client's mount this replica promised, and when:
   * until that mount's start reaches it (or its release), the lease it
   * knows is the fenced client's, so the promise alone says a takeover is
   * under way. Cleared then; ignored a mount timeout after the promise.
   */
  private takeoverPromised: { readonly epoch: Epoch; readonly clientId: ClientId; readonly tick: number } | null = null;
  private grantSinceOlder: number | null = null;
  private resyncSnapshot: Version | null = null;
  /** The region resync attempt this replica is the target of (ResyncBegin.seq), while resyncSnapshot is set. */
  private resyncSeq = -1;
  /**
   * The answer to the newest region resync attempt (ResyncBegin) this
   * replica took: its epoch and seq name the attempt. A primary sends a
   * begin again until it is answered, and a copy of one (or an older
   * attempt's, delayed) must not reset the replica again, least of all
   * after the resync ended.
   */
  private resyncBeginAnswer: ResyncBeginReply | null = null;
  /** Regions copied in since the current region resync began (their versions are real). */
  private readonly regionsInstalled = new Set<number>();
  /**
   * For each region made REGION_DIRTY since the current region resync
   * began, the version of the last record applied to it: what its version
   * becomes when the resync ends (see onResyncDone).
   */
  private readonly dirtyShadow = new Map<number, Version>();
  private readonly deferredInstalls: DeferredInstall[] = [];
  private readonly pendingReplies: PendingReply[] = [];
  private readonly pendingLogOps: PendingLogOp[] = [];
  private readonly onDurable = new Map<DurableToken, () => void>();
  /** Idle sync: the probe round under way, when it was sent, and the answers so far. */
  private probeSeq = 0;
  private probeSentTick = -Infinity;
  private readonly probeReports = new Map<NodeId, HeadReport>();
  private nextToken: DurableToken = 1;

  private primary: PrimarySession | null = null;
  private lastEnded: { epoch: Epoch; code: ErrorCode; message: string } | null = null;

  constructor(options: ReplicaCoreOptions, recovered: RecoveredReplica) {
    this.nodeId = options.nodeId;
    this.config = options.config;
    this.appliedConfig = options.config;
    this.timing = options.timing ?? DEFAULT_TIMING;
    this.bugs = options.testOnlyPlantedBugs ?? {};
    this.guarded = !Object.values(this.bugs).some((on) => on === true);
    this.regionBlocks = options.regionBlocks ?? limits.regionBlocks;
    this.retainedRecordsMax = options.logRetainedRecordsMax ?? limits.logRetainedRecordsMax;
    this.retainedBytesMax = options.logRetainedBytesMax ?? limits.logRetainedBytesMax;
    this.sessionsMax = options.sessionsMax ?? 64;
    this.regionsInFlightMax = options.regionsInFlightMax ?? 2;
    this.resyncRegionIntervalTicks = options.resyncRegionIntervalTicks ?? 0;
    this.recordsPerMessageMax = options.appendRecordsPerMessageMax ?? limits.appendRecordsPerMessageMax;
    this.recordsInFlightMax = options.appendRecordsInFlightMax ?? limits.appendRecordsInFlightMax;
    this.bytesInFlightMax = options.appendBytesInFlightMax ?? limits.appendBytesInFlightMax;
    assert(new Set(options.config.replicas).size === options.config.replicas.length, "Replicas are on distinct nodes");

    this.now = recovered.now;
    this.promisedEpoch = recovered.promisedEpoch;
    this.promiseDurableEpoch = recovered.promisedEpoch;
    this.commitLsn = recovered.commitLsn;
    this.consistent = recovered.consistent;
    this.consistentThrough = recovered.consistent ? null : (recovered.consistentThrough ?? recovered.logBase);
    this.unsurePastHead = recovered.unsurePastHead;
    this.sessions = [...recovered.sessions];
    this.log = new RecordLog(recovered.logBase, recovered.records);
    this.refreshConfig();
    this.logDurableLsn = this.log.head().lsn;
    this.appliedLsn = recovered.appliedLsn;
    assert(this.appliedLsn >= this.log.baseVersion().lsn, "Applied point is not below the log's base");
    assert(this.appliedLsn <= this.log.head().lsn, "Applied point is within the log");
    const regionCount = Math.ceil(options.config.blockCount / this.regionBlocks);
    assert(recovered.regionVersions.length === regionCount, `Expected ${regionCount} region versions`);
    this.regionVersions = [...recovered.regionVersions];
    // A restart forgets when this replica last answered a primary: assume just
    // now, so a new primary waits out any lease this replica may have renewed.
    this.lastPrimaryAnswerTick = recovered.promisedEpoch > 0 ? recovered.now : null;
  }

  // -------------------------------------------------------------------------
  // Introspection (for the driver, volctl info and the simulator's checker).

  status(): {
    promisedEpoch: Epoch;
    head: Version;
    durableHead: Version;
    commitLsn: Lsn;
    appliedLsn: Lsn;
    consistent: boolean;
    unsurePastHead: boolean;
    primary: { epoch: Epoch; phase: PrimaryPhase; clientId: ClientId; takeover: boolean; leaseValid: boolean } | null;
    followers: {
      node: NodeId;
      matchLsn: Lsn;
      consistent: boolean;
      resyncing: boolean;
      regionsLeft: number;
      /** The region resync under way: regions and bytes acknowledged so far, ticks since it began. */
      regionsCopied: number;
      bytesCopied: number;
      resyncTicks: number;
      lastResync: ResyncSummary | null;
    }[];
    /** Rule 9 counters since this replica started. */
    corruptFound: number;
    divergentFound: number;
    repairsDone: number;
    repairsFailed: number;
    /** The configuration this replica acts by, and whether it is committed as far as it knows. */
    config: VolumeConfig;
    configCommitted: boolean;
    /** Regions whose version is REGION_DIRTY. */
    regionsDirty: number;
  } {
    const p = this.primary;
    return {
      promisedEpoch: this.promisedEpoch,
      head: this.log.head(),
      durableHead: this.resetPending() ? this.log.baseVersion() : this.durableHead(),
      commitLsn: this.commitLsn,
      appliedLsn: this.appliedLsn,
      consistent: this.consistent,
      unsurePastHead: this.unsurePastHead,
      primary: p === null ? null : { epoch: p.epoch, phase: p.phase, clientId: p.clientId, takeover: p.takeover, leaseValid: this.leaseValid(p) },
      followers:
        p === null
          ? []
          : [...p.followers.values()].map((f) => ({
              node: f.node,
              matchLsn: f.matchLsn,
              consistent: f.consistent,
              resyncing: f.resync !== null,
              regionsLeft: f.resync === null ? 0 : f.resync.todo.length + f.resync.inFlight.size,
              regionsCopied: f.resync?.regionsCopied ?? 0,
              bytesCopied: f.resync?.bytesCopied ?? 0,
              resyncTicks: f.resync === null ? 0 : this.now - f.resync.startedTick,
              lastResync: f.lastResync,
            })),
      corruptFound: this.corruptFound,
      divergentFound: this.divergentFound,
      repairsDone: this.repairsDone,
      repairsFailed: this.repairsFailed,
      config: this.config,
      configCommitted: this.configLsn <= this.commitLsn,
      regionsDirty: this.regionVersions.filter(isRegionDirty).length,
    };
  }

  /** Paces region copies of the resyncs this primary drives: at most one region per `ticks` (0: unthrottled). */
  setResyncRegionInterval(ticks: number): void {
    assert(Number.isFinite(ticks) && ticks >= 0, "A resync pace is a non-negative number of ticks");
    this.resyncRegionIntervalTicks = ticks;
  }

  /** Scrub across replicas now (volctl scrub): the primary compares every region's version with its followers' at full speed. */
  checkRegionVersionsNow(): void {
    this.versionCheckFastUntil = this.now + 5 * this.timing.leaseTicks;
    this.versionCheckNext = 0;
  }

  /** Whether this replica drives a region resync now (as an active primary). */
  drivesResync(): boolean {
    const p = this.primary;
    if (p === null) return false;
    for (const f of p.followers.values()) if (f.resync !== null) return true;
    return false;
  }

  isActivePrimary(): boolean {
    return this.primary?.phase === "active";
  }

  /** The mount this node coordinates if it is active: checked on every client request, so it builds nothing (status() walks every region). */
  activeMount(): { readonly epoch: Epoch; readonly clientId: ClientId } | null {
    const p = this.primary;
    return p === null || p.phase !== "active" ? null : p;
  }

  /**
   * For read-only mounts served by this replica: whether its blocks are a
   * state of the volume (consistent), and how long ago (in ticks) it last
   * heard from a primary of its promised epoch, which bounds how stale its
   * committed data may be (0 while this replica is the active primary; null
   * if it never heard from one since it started).
   */
  readOnlyView(): { consistent: boolean; staleTicks: number | null } {
    if (this.isActivePrimary()) return { consistent: this.consistent, staleTicks: 0 };
    return { consistent: this.consistent, staleTicks: this.lastPrimaryAnswerTick === null ? null : this.now - this.lastPrimaryAnswerTick };
  }

  // -------------------------------------------------------------------------

  step(event: CoreEvent): CoreAction[] {
    switch (event.type) {
      case "tick":
        assert(event.now >= this.now, "Time never goes back");
        this.now = event.now;
        this.onTick();
        break;
      case "message":
        this.onMessage(event.from, event.msg);
        break;
      case "request":
        this.onRequest(event.reqId, event.req);
        break;
      case "durable": {
        const k = this.onDurable.get(event.token);
        assert(k !== undefined, `Unknown durable token ${event.token}`);
        this.onDurable.delete(event.token);
        k();
        break;
      }
      case "corrupt":
        this.onCorrupt(event.blocks, event.read);
        break;
      case "regionSent":
        this.onRegionSent(event.to, event.region, event.seq, event.bytes);
        break;
      case "regionDigests":
        this.onRegionDigests(event.seq, event.digests);
        break;
      default:
        throw new Error(`Unknown event ${JSON.stringify(event satisfies never)}`);
    }
    this.settle();
    const out = this.out.splice(0);
    // A sync mount's replies stay here (no client asked): traced instead.
    if (!out.some((a) => a.type === "reply" && a.reqId === SYNC_REQ_ID)) return out;
    return out.map((a): CoreAction => {
      if (a.type !== "reply" || a.reqId !== SYNC_REQ_ID) return a;
      const r = a.result;
      return { type: "trace", event: r.ok ? "sync mount step done" : "sync mount ended", detail: r.ok ? { volume: this.config.name, node: this.nodeId } : { volume: this.config.name, node: this.nodeId, code: r.code, reason: r.message } };
    });
  }

  /** Work that follows any change: loopback messages, replies, commit, apply, acks. */
  private settle(): void {
    for (let rounds = 0; rounds < 64; rounds++) {
      const m = this.loopback.shift();
      if (m !== undefined) {
        this.onMessage(m.from, m.msg);
        continue;
      }
      const before = this.out.length + this.loopback.length;
      this.flushReplies();
      this.advancePrimary();
      this.applyCommitted();
      this.installDeferred();
      if (this.loopback.length === 0 && this.out.length + this.loopback.length === before) return;
    }
    assert(this.loopback.length === 0, "Loopback settles");
  }

  // -------------------------------------------------------------------------
  // Configuration (see VolumeConfig): the latest config record in the log.

  /** After the log lost records (a truncation, a reset): the latest config record left, else the applied configuration. */
  private refreshConfig(): void {
    const start = this.log.startLsn();
    for (let lsn = this.log.head().lsn; lsn >= start; lsn--) {
      const r = this.log.get(asLsn(lsn));
      if (r !== undefined && r.kind === "config" && r.data !== null) return this.setConfig(decodeConfig(r.data), r.lsn);
    }
    this.setConfig(this.appliedConfig, asLsn(0));
  }

  private noteAppendedConfig(records: readonly LogRecord[]): void {
    for (const r of records) if (r.kind === "config" && r.data !== null) this.setConfig(decodeConfig(r.data), r.lsn);
  }

  private setConfig(config: VolumeConfig, lsn: Lsn): void {
    const changed = config.configVersion !== this.config.configVersion;
    this.config = config;
    this.configLsn = lsn;
    if (!changed) return;
    this.trace("configuration", {
      configVersion: config.configVersion,
      replicas: config.replicas.join(","),
      previousReplicas: config.previousReplicas?.join(",") ?? "",
      learner: config.replacement?.to ?? "",
      lsn,
    });
    const p = this.primary;
    if (p !== null && (p.phase === "mounting" || p.phase === "active")) this.syncFollowers(p, lsn);
  }

  /** The primary sends to every member of the configuration but itself: new ones from `nextLsn`, removed ones no longer. */
  private syncFollowers(p: PrimarySession, nextLsn: Lsn): void {
    const members = configMembers(this.config);
    for (const node of p.followers.keys()) if (!members.includes(node)) p.followers.delete(node);
    for (const node of members) {
      if (node === this.nodeId || p.followers.has(node)) continue;
      const g = p.promises.get(node);
      p.followers.set(node, {
        node,
        nextLsn,
        matchLsn: asLsn(0),
        reportedCommitLsn: g?.commitLsn ?? asLsn(0),
        consistentSinceSeq: -Infinity,
        resendFromLsn: nextLsn,
        consistent: g?.consistent ?? false,
        ackedSentTick: g === undefined ? null : p.promiseSentTick,
        lastSendTick: -Infinity,
        lastProgressTick: this.now,
        resync: null,
        lastResync: null,
      });
    }
  }

  // -------------------------------------------------------------------------
  // Idle sync (P6 without a mount): a returning replica is brought back in
  // sync even when no client has the volume mounted. A consistent voter
  // that heard from no primary for three leases asks its peers where they
  // stand; if one is behind, inconsistent or unsure, nobody heard a primary
  // lately, and it holds the most up-to-date log of a majority of each voter
  // set (ties: the lowest node id), it mounts the volume itself with
  // SYNC_CLIENT_ID. Its primary then catches up or resyncs every replica as
  // any primary does, and unmounts once they are in sync. A client's mount
  // takes such a mount over without asking (isReservedClient).

  private maybeProbe(): void {
    if (!this.consistent || this.unsurePastHead || this.resetPending() || !isVoter(this.config, this.nodeId)) return;
    const lease = this.timing.leaseTicks;
    if (this.lastPrimaryAnswerTick !== null && this.now - this.lastPrimaryAnswerTick <= 3 * lease) return;
    if (this.now - this.probeSentTick < 3 * lease) return;
    this.probeSeq = this.now;
    this.probeSentTick = this.now;
    this.probeReports.clear();
    for (const node of configMembers(this.config)) if (node !== this.nodeId) this.send(node, { type: "headProbe", epoch: this.promisedEpoch, seq: this.probeSeq });
  }

  private onHeadProbe(from: NodeId, m: HeadProbe): void {
    if (this.resetPending()) return;
    const heard = this.primary?.phase === "active" ? 0 : this.lastPrimaryAnswerTick === null ? null : this.now - this.lastPrimaryAnswerTick;
    this.send(from, {
      type: "headReport",
      epoch: this.promisedEpoch,
      seq: m.seq,
      head: this.durableHead(),
      commitLsn: this.commitLsn,
      consistent: this.consistent,
      unsurePastHead: this.unsurePastHead,
      heardPrimaryTicksAgo: heard,
      appliedLsn: this.appliedLsn,
      regionsDigest: regionsDigest(this.regionVersions),
      configCommitted: this.configLsn <= this.commitLsn,
    } satisfies HeadReport);
  }

  private onHeadReport(from: NodeId, m: HeadReport): void {
    if (m.seq !== this.probeSeq || this.primary !== null || this.now - this.probeSentTick > this.timing.leaseTicks || this.resetPending()) return;
    this.probeReports.set(from, m);
    const reports = [...this.probeReports.entries()];
    // Someone heard a primary lately: a mount is live, and its primary catches the others up.
    if (reports.some(([, r]) => r.heardPrimaryTicksAgo !== null && r.heardPrimaryTicksAgo <= 2 * this.timing.leaseTicks)) {
      this.probeReports.clear();
      return;
    }
    const mine = this.durableHead();
    // Work only a primary can do: a replica behind, inconsistent or unsure;
    // records or a configuration not known committed; a replacement to move
    // on (once its learner answers: without it, it cannot move). (A sync
    // mount does not fence the client of a primary cut off meanwhile: that
    // primary steps down with NO_QUORUM, and the client fails over.)
    // (And region versions that disagree at one applied point: a lost write, for the scrub across replicas.)
    const digest = regionsDigest(this.regionVersions);
    const lagging = (r: HeadReport): boolean =>
      !r.consistent || r.unsurePastHead || !versionEquals(r.head, mine) || r.commitLsn < r.head.lsn || !r.configCommitted || (r.appliedLsn === this.appliedLsn && r.regionsDigest !== 0 && digest !== 0 && r.regionsDigest !== digest);
    const learner = this.config.replacement?.to;
    const changing = (learner !== undefined && this.probeReports.has(learner)) || this.config.previousReplicas !== undefined;
    if (!reports.some(([, r]) => lagging(r)) && this.commitLsn >= mine.lsn && this.configLsn <= this.commitLsn && !changing) return;
    const answered = new Set([this.nodeId, ...this.probeReports.keys()]);
    if (!voterSets(this.config).every((set) => set.filter((n) => answered.has(n)).length >= writeQuorum(set.length))) return;
    for (const [node, r] of reports) {
      if (!r.consistent || r.unsurePastHead) continue;
      const c = compareVersion(r.head, mine);
      if (c > 0 || (c === 0 && node < this.nodeId)) return;
    }
    this.probeReports.clear();
    this.probeSeq = -1;
    const behind = reports.filter(([, r]) => lagging(r)).map(([n]) => n);
    this.trace("idle sync: no mount is live and replicas are behind; mounting to bring them back", { behind: behind.join(","), head: formatVersion(mine) });
    this.onMount(SYNC_REQ_ID, { type: "mount", clientId: SYNC_CLIENT_ID, takeover: false });
  }

  /** A sync mount ends once every follower that answers is in sync (one that never answers is not waited for past four leases). */
  private maybeEndSync(p: PrimarySession): void {
    const head = this.log.head().lsn;
    const lease = this.timing.leaseTicks;
    const waited = this.now - p.activeSince > 4 * lease;
    for (const f of p.followers.values()) {
      const answering = f.ackedSentTick !== null && this.now - f.ackedSentTick < 2 * lease;
      if (!answering && waited) continue;
      if (!answering || !f.consistent || f.resync !== null || f.matchLsn < head) return;
    }
    if (this.commitLsn < head) return;
    // The scrub across replicas a sync mount starts with, and its repairs, finish first.
    if (this.now < this.versionCheckFastUntil || p.repairs.size > 0) return;
    // A replacement under way goes on while its learner answers.
    const learner = this.config.replacement === undefined ? undefined : p.followers.get(this.config.replacement.to);
    const learnerAnswers = learner?.ackedSentTick != null && this.now - learner.ackedSentTick < 2 * lease;
    if (this.config.previousReplicas !== undefined || this.configLsn > this.commitLsn || (this.config.replacement !== undefined && (learnerAnswers || !waited))) return;
    this.trace("idle sync: every replica that answers is in sync; unmounting", { head });
    this.onUnmount(SYNC_REQ_ID);
  }

  // -------------------------------------------------------------------------
  // Scrub across replicas: a write a disk acknowledged and lost leaves a
  // region whose version is older than the others' (its blocks still pass
  // their checksums). The active primary sends its region versions, as of
  // its applied point, to each in-sync follower, a batch at a time (a
  // whole pass every ten leases, or at once when asked); a follower that
  // has applied the record a version names compares, and says which regions
  // disagree. Either way the blocks of such a region are repaired as rule 9
  // repairs a corrupt block (a repair record of the good copy, brought
  // forward and replicated to every replica): from the primary's copy when
  // the follower's is older, from a follower's when the primary's is.
  //
  // Versions alone miss a lost write that a later write to the same region
  // covered (or a replayed record re-applied): the version moves on with
  // the other blocks still lost. So the batch carries the primary's content
  // digests too, and a follower answers its own for every region whose
  // version equals the primary's. Equal versions must mean equal bytes; when
  // they do not, the digest that a majority of each voter set holds is the
  // good content, and the replicas with another one are repaired from it.
  // With no such majority nothing is repaired (no copy can be told good).

  private sendRegionVersions(p: PrimarySession): void {
    const regions = this.regionVersions.length;
    const perPass = this.timing.leaseTicks * 10;
    const batches = Math.ceil(regions / REGION_VERSIONS_PER_MESSAGE);
    const fast = this.now < this.versionCheckFastUntil;
    // At most DIGEST_BATCHES_PER_LEASE batches a lease in the background: each replica reads the block
    // metadata of every region it digests (2 KiB a region), so a large volume's pass takes longer than ten
    // leases rather than reading metadata at any rate (about 1 MiB/s at most).
    const interval = fast ? this.timing.heartbeatTicks : Math.max(perPass / batches, this.timing.leaseTicks / DIGEST_BATCHES_PER_LEASE);
    if (this.now - this.versionCheckSentTick < interval) return;
    if (this.versionCheckNext >= regions) this.versionCheckNext = 0;
    const first = this.versionCheckNext;
    const versions = this.regionVersions.slice(first, first + REGION_VERSIONS_PER_MESSAGE);
    this.versionCheckNext = first + versions.length;
    this.versionCheckSentTick = this.now;
    // Votes nobody answered in a while are dropped (their followers moved on or went away).
    for (const [g, v] of p.digestVotes) if (this.now - v.sentTick > this.timing.resendTicks * 4) p.digestVotes.delete(g);
    if (this.bugs.scrubVersionsOnly) return this.sendVersionsWithDigests({ kind: "primary", epoch: p.epoch, appliedLsn: this.appliedLsn, first, versions }, []);
    // Sent once this replica's digests of the same applied point are read (onRegionDigests).
    this.readDigests({ kind: "primary", epoch: p.epoch, appliedLsn: this.appliedLsn, first, versions }, first, versions.length);
  }

  private readDigests(ctx: DigestRead, first: number, count: number): void {
    const seq = this.nextDigestSeq++;
    this.digestReads.set(seq, ctx);
    for (const old of this.digestReads.keys()) {
      if (this.digestReads.size <= DIGEST_READS_MAX) break;
      this.digestReads.delete(old);
    }
    this.out.push({ type: "readRegionDigests", seq, first, count });
  }

  private onRegionDigests(seq: number, digests: readonly number[]): void {
    const ctx = this.digestReads.get(seq);
    if (ctx === undefined) return;
    this.digestReads.delete(seq);
    if (ctx.kind === "primary") return this.sendVersionsWithDigests(ctx, digests);
    // A follower: still in the epoch it compares for, and still consistent (a resync may have reset it since).
    if (ctx.epoch !== this.promisedEpoch || !this.consistent || this.resetPending() || digests.length !== ctx.mine.length) return;
    const regions: number[] = [];
    const mine: number[] = [];
    const differ: number[] = [];
    ctx.mine.forEach((v, i) => {
      const theirs = ctx.theirs[i];
      const d = digests[i];
      if (theirs === undefined || d === undefined || isRegionDirty(v) || !versionEquals(v, theirs)) return;
      regions.push(ctx.first + i);
      mine.push(d);
      if (d !== ctx.theirDigests[i]) differ.push(ctx.first + i);
    });
    if (regions.length === 0) return;
    if (differ.length > 0) this.trace("region content differs from the primary's at the same version", { regions: differ.join(",") });
    this.send(ctx.from, { type: "regionDigestsReply", epoch: ctx.epoch, appliedLsn: ctx.appliedLsn, regions, digests: mine } satisfies RegionDigestsReply);
  }

  private sendVersionsWithDigests(ctx: DigestRead & { kind: "primary" }, digests: readonly number[]): void {
    const p = this.primary;
    if (p === null || p.phase !== "active" || p.epoch !== ctx.epoch) return;
    const withDigests = digests.length === ctx.versions.length;
    if (withDigests) {
      ctx.versions.forEach((version, i) => {
        if (isRegionDirty(version)) return;
        p.digestVotes.set(ctx.first + i, { version, appliedLsn: ctx.appliedLsn, sentTick: this.now, digests: new Map([[this.nodeId, digests[i] as number]]) });
      });
    }
    const msg: RegionVersions = { type: "regionVersions", epoch: p.epoch, appliedLsn: ctx.appliedLsn, first: ctx.first, versions: ctx.versions, digests: withDigests ? digests : null };
    for (const f of p.followers.values()) {
      // (Any applied point will do: the follower judges only what both applied.)
      if (!f.consistent || f.resync !== null) continue;
      this.send(f.node, msg);
    }
  }

  private onRegionVersions(from: NodeId, m: RegionVersions): void {
    if (!this.admitPrimaryMessage(from, m.epoch)) return;
    if (!this.consistent || this.resetPending() || m.first < 0 || m.first + m.versions.length > this.regionVersions.length) return;
    const followerStale: number[] = [];
    const primaryStale: number[] = [];
    m.versions.forEach((theirs, i) => {
      const region = m.first + i;
      const mine = this.regionVersions[region];
      if (mine === undefined || isRegionDirty(mine) || isRegionDirty(theirs)) return;
      const c = compareVersion(mine, theirs);
      // Older than a record this replica has applied: it lost that write.
      if (c < 0 && theirs.lsn <= this.appliedLsn) followerStale.push(region);
      // Newer, by a record the primary had applied: the primary lost it.
      if (c > 0 && mine.lsn <= m.appliedLsn) primaryStale.push(region);
    });
    if (m.digests !== null && m.digests.length === m.versions.length) {
      const mine = this.regionVersions.slice(m.first, m.first + m.versions.length);
      if (mine.some((v, i) => versionEquals(v, m.versions[i] as Version))) {
        this.readDigests({ kind: "follower", from, epoch: m.epoch, appliedLsn: m.appliedLsn, first: m.first, theirs: m.versions, theirDigests: m.digests, mine }, m.first, m.versions.length);
      }
    }
    if (followerStale.length === 0 && primaryStale.length === 0) return;
    this.trace("region versions disagree with the primary's", { followerStale: followerStale.join(","), primaryStale: primaryStale.join(",") });
    this.send(from, { type: "regionVersionsReply", epoch: m.epoch, followerStale, primaryStale } satisfies RegionVersionsReply);
  }

  private onRegionDigestsReply(from: NodeId, m: RegionDigestsReply): void {
    const p = this.primary;
    if (p === null || p.phase !== "active" || m.epoch !== p.epoch || m.regions.length !== m.digests.length) return;
    const f = p.followers.get(from);
    if (f === undefined || !f.consistent || f.resync !== null) return;
    m.regions.forEach((region, i) => {
      const vote = p.digestVotes.get(region);
      // (Only answers to the batch that opened the vote: a newer batch may name another version.)
      if (vote === undefined || vote.appliedLsn !== m.appliedLsn) return;
      vote.digests.set(from, m.digests[i] as number);
      this.decideDigestVote(p, region, vote);
    });
  }

  private decideDigestVote(p: PrimarySession, region: number, vote: DigestVote): void {
    const first = region * this.regionBlocks;
    const count = Math.max(0, Math.min(this.regionBlocks, this.config.blockCount - first));
    // A repair of the region under way, or written after these digests were taken, may have mended it already.
    for (let b = first; b < first + count; b++) {
      if (p.repairs.has(b)) {
        p.digestVotes.delete(region);
        return;
      }
    }
    if ((p.repairedThrough.get(region) ?? 0) > vote.appliedLsn) {
      p.digestVotes.delete(region);
      return;
    }
    // Copies are no witnesses of their own: a follower this node copied the region to holds this node's content,
    // right or wrong (a write this node's disk lost before the copy is lost there too). So replicas are counted
    // by lineage: such a copy counts as this node. A digest is good when at least two lineages hold it and more
    // than hold any other, even if every in-sync follower yet to answer held that other one. (Undecided is safe:
    // a wrong choice overwrites the good copy.)
    const copied = (n: NodeId): boolean => this.copiedTo.get(n)?.has(region) === true;
    const lineage = (n: NodeId): NodeId => (n !== this.nodeId && copied(n) ? this.nodeId : n);
    const lineages = new Map<number, Set<NodeId>>();
    for (const [n, d] of vote.digests) {
      let set = lineages.get(d);
      if (set === undefined) lineages.set(d, (set = new Set()));
      set.add(lineage(n));
    }
    let pending = 0;
    for (const f of p.followers.values()) if (f.consistent && f.resync === null && !vote.digests.has(f.node)) pending++;
    const ranked = [...lineages].sort((a, b) => b[1].size - a[1].size);
    const [top, second] = ranked;
    const good = top !== undefined && top[1].size >= 2 && top[1].size > (second?.[1].size ?? 0) + pending ? top[0] : undefined;
    const voters = (n: NodeId): boolean => vote.digests.has(n) && lineage(n) === n;
    const digests = new Set(vote.digests.values());
    if (good === undefined) return;
    // Content that lineages of their own confirmed: the copies of it taken before this vote opened are witnesses
    // of their own from now on (a copy taken since was no part of it).
    for (const [n, d] of vote.digests) {
      const copies = this.copiedTo.get(n);
      const at = copies?.get(region);
      if (d !== good || copies === undefined || at === undefined || at >= vote.sentTick) continue;
      copies.delete(region);
      if (copies.size === 0) this.copiedTo.delete(n);
    }
    if (digests.size === 1) {
      // All agree; settled once every in-sync follower has answered.
      if (vote.digests.size > p.followers.size) p.digestVotes.delete(region);
      return;
    }
    p.digestVotes.delete(region);
    const bad = [...vote.digests].filter(([, d]) => d !== good).map(([n]) => n);
    this.divergentFound++;
    this.trace("scrub across replicas: region content differs at one version", { region, version: formatVersion(vote.version), bad: bad.join(",") });
    const blocks = Array.from({ length: count }, (_, i) => asBlock(first + i));
    if (bad.includes(this.nodeId)) {
      // This primary's copy is a bad one: from a follower that holds the good content of its own only.
      const source = [...vote.digests].find(([n, d]) => d === good && n !== this.nodeId && voters(n))?.[0];
      if (source !== undefined) this.startRepairs(p, blocks, this.nodeId, source);
      return;
    }
    // From this primary's copy only (one repair record rewrites the region on every replica): no other copy is asked.
    this.startRepairs(p, blocks, bad[0] as NodeId, this.nodeId);
  }

  private onRegionVersionsReply(from: NodeId, m: RegionVersionsReply): void {
    const p = this.primary;
    if (p === null || p.phase !== "active" || m.epoch !== p.epoch) return;
    const blocksOf = (regions: readonly number[]): BlockIndex[] =>
      regions.flatMap((g) => {
        const first = g * this.regionBlocks;
        const count = Math.max(0, Math.min(this.regionBlocks, this.config.blockCount - first));
        return Array.from({ length: count }, (_, i) => asBlock(first + i));
      });
    const regions = [...m.followerStale, ...m.primaryStale].filter((g) => g >= 0 && g < this.regionVersions.length);
    if (regions.length === 0) return;
    this.divergentFound += regions.length;
    this.trace("scrub across replicas: divergent regions", { follower: from, followerStale: m.followerStale.join(","), primaryStale: m.primaryStale.join(",") });
    this.startRepairs(p, blocksOf(m.followerStale), from);
    // This primary's copy is the old one: from the reporter's copy only (another follower's may be as old).
    this.startRepairs(p, blocksOf(m.primaryStale), this.nodeId, from);
  }

  /** "2", or "2 of n1,n2,n3 and 2 of n2,n3,n4" while joint: for messages. */
  private quorumWords(): string {
    const sets = voterSets(this.config);
    if (sets.length === 1) return String(writeQuorum(this.config.replicas.length));
    return sets.map((s) => `${writeQuorum(s.length)} of ${s.join(",")}`).join(" and ");
  }

  /**
   * A request for a mount this node does not hold: FENCED (taken over),
   * unless this node was removed from the replica set while it was the
   * primary: then NO_QUORUM with where to go, so the client fails over.
   */
  private noActiveMount(reqId: RequestId): void {
    if (this.primary === null && this.lastEnded?.code === "NO_QUORUM") return this.fail(reqId, "NO_QUORUM", this.lastEnded.message);
    if (!isVoter(this.config, this.nodeId) && this.config.replicas.length > 0) {
      return this.fail(reqId, "NO_QUORUM", `${this.nodeId} no longer holds a replica of ${this.config.name}: mount through ${this.config.replicas.join(", ")}`, this.config.replicas[0]);
    }
    this.fail(reqId, "FENCED", `No mount of ${this.config.name} is active on ${this.nodeId}`);
  }

  private onReplace(reqId: RequestId, req: ReplaceRequest): void {
    const p = this.primary;
    if (p === null || p.phase !== "active") return this.noActiveMount(reqId);
    const c = this.config;
    if (c.replacement !== undefined && c.replacement.from === req.from && c.replacement.to === req.to) {
      // Asked again (volctl rerun): answered once the learner configuration is committed.
      p.pendingWrites.push({ reqId, lsn: this.configLsn, deadline: this.now + this.timing.writeTimeoutTicks });
      return;
    }
    if (c.previousReplicas !== undefined || this.configLsn > this.commitLsn) {
      return this.fail(reqId, "VOLUME_BUSY", `The replica set of ${c.name} is changing (configuration ${c.configVersion}): wait until that ends`);
    }
    if (!c.replicas.includes(req.from)) {
      return this.fail(reqId, "INVALID_ARGUMENT", `${req.from} holds no replica of ${c.name}: its replicas are on ${c.replicas.join(", ")}`);
    }
    if (c.replicas.includes(req.to) || req.to === req.from) {
      return this.fail(reqId, "INVALID_ARGUMENT", `${req.to} already holds a replica of ${c.name}`);
    }
    if (!this.leaseValid(p)) {
      return this.fail(reqId, "NO_QUORUM", `Fewer than ${this.quorumWords()} replicas of ${c.name} are reachable: the replica set is unchanged`);
    }
    // A learner first (a replacement under way with another learner is
    // retargeted: a learner does not vote, so it may go at any time).
    this.appendConfig(p, reqId, {
      name: c.name,
      blockSize: c.blockSize,
      blockCount: c.blockCount,
      replicas: c.replicas,
      configVersion: c.configVersion + 1,
      replacement: { from: req.from, to: req.to },
    });
  }

  private appendConfig(p: PrimarySession, reqId: RequestId | null, config: VolumeConfig): void {
    const record: LogRecord = {
      epoch: p.epoch,
      lsn: asLsn(this.log.head().lsn + 1),
      kind: "config",
      block: asBlock(0),
      blockCount: 0,
      data: encodeConfig(config),
      clientId: CONFIG_CLIENT_ID,
      clientSeq: 0,
    };
    if (reqId !== null) p.pendingWrites.push({ reqId, lsn: record.lsn, deadline: this.now + this.timing.writeTimeoutTicks });
    this.appendAsPrimary(p, record);
  }

  /**
   * Moves a replacement on, one committed configuration at a time: once the
   * learner is in sync, the joint configuration; once that is committed,
   * the new set alone; once that is committed, a primary that no longer
   * votes steps down (its client mounts through the new set).
   */
  private advanceConfig(p: PrimarySession): void {
    const c = this.config;
    if (this.configLsn > this.commitLsn) return;
    const { name, blockSize, blockCount } = c;
    if (c.replacement !== undefined) {
      const f = p.followers.get(c.replacement.to);
      if (f === undefined || !f.consistent || f.resync !== null || f.matchLsn < this.configLsn) return;
      // In sync: it holds every committed record but those still on their way.
      if (f.matchLsn + this.recordsInFlightMax < this.commitLsn) return;
      if (!c.replicas.includes(c.replacement.from)) return;
      const replicas = replacedSet(c.replicas, c.replacement.from, c.replacement.to);
      this.trace("learner in sync: joint configuration", { learner: f.node, matchLsn: f.matchLsn });
      return this.appendConfig(p, null, { name, blockSize, blockCount, replicas, configVersion: c.configVersion + 1, previousReplicas: c.replicas });
    }
    if (c.previousReplicas !== undefined) {
      return this.appendConfig(p, null, { name, blockSize, blockCount, replicas: c.replicas, configVersion: c.configVersion + 1 });
    }
    if (!c.replicas.includes(this.nodeId)) {
      // The followers learn the final commit point before this primary goes
      // (else they would wait for the next mount to apply it).
      p.leavingSince ??= this.now;
      const told = [...p.followers.values()].every((f) => f.reportedCommitLsn >= this.configLsn);
      if (!told && this.now - p.leavingSince < this.timing.resendTicks * 4) return;
      this.stepDown("NO_QUORUM", `${this.nodeId} no longer holds a replica of ${name}: its replicas are on ${c.replicas.join(", ")}; mount through one of them`);
    }
  }

  // -------------------------------------------------------------------------
  // Plumbing.

  private send(to: NodeId, msg: PeerMessage): void {
    if (to === this.nodeId) this.loopback.push({ from: this.nodeId, msg });
    else this.out.push({ type: "send", to, msg });
  }

  private trace(event: string, detail: Readonly<Record<string, string | number | boolean>> = {}): void {
    this.out.push({ type: "trace", event, detail: { volume: this.config.name, node: this.nodeId, epoch: this.promisedEpoch, ...detail } });
  }

  private token(k: () => void): DurableToken {
    const t = this.nextToken++;
    this.onDurable.set(t, k);
    return t;
  }

  private persistSuperblock(patch: SuperblockPatch, then: () => void = () => {}): void {
    this.out.push({ type: "persistSuperblock", patch, token: this.token(then) });
  }

  private logOp(lowersTo: Lsn | null, make: (token: DurableToken) => CoreAction, then: () => void = () => {}): void {
    const endLsn = this.log.head().lsn;
    const token = this.token(() => {
      const op = this.pendingLogOps.shift();
      assert(op !== undefined && op.token === token, "Log operations complete in order");
      let durable = op.endLsn;
      for (const later of this.pendingLogOps) if (later.lowersTo !== null) durable = asLsn(Math.min(durable, later.lowersTo));
      this.logDurableLsn = asLsn(Math.max(this.logDurableLsn, Math.min(durable, this.log.head().lsn)));
      then();
    });
    this.pendingLogOps.push({ token, endLsn, lowersTo });
    if (lowersTo !== null) this.logDurableLsn = asLsn(Math.min(this.logDurableLsn, lowersTo));
    this.out.push(make(token));
  }

  private witnessHead(): Version {
    const head = this.durableHead();
    if (this.consistent || this.consistentThrough === null) return head;
    return compareVersion(this.consistentThrough, head) <= 0 ? this.consistentThrough : head;
  }

  /** Whether a region resync's log reset is not yet durable: nothing is answered meanwhile. */
  private resetPending(): boolean {
    return this.logDurableLsn < this.log.baseVersion().lsn;
  }

  private durableHead(): Version {
    assert(!this.resetPending(), "No durable head is claimed while a log reset is pending");
    const v = this.log.versionAt(this.logDurableLsn);
    assert(v !== null, `Durable lsn ${this.logDurableLsn} is in the log`);
    return v;
  }

  private replyWhenDurable(to: NodeId, epoch: Epoch, needLsn: Lsn, build: () => PeerMessage): void {
    this.pendingReplies.push({ to, epoch, needLsn, build });
  }

  private flushReplies(): void {
    if (this.resetPending()) return;
    for (let i = 0; i < this.pendingReplies.length; ) {
      const r = this.pendingReplies[i];
      assert(r !== undefined);
      if (r.epoch !== this.promisedEpoch && !this.bugs.acceptStaleEpoch) {
        // A newer epoch was promised since: never answer the old primary (it
        // could count the answer toward a commit after the new epoch won).
        this.pendingReplies.splice(i, 1);
        continue;
      }
      if (this.promiseDurableEpoch >= r.epoch && this.logDurableLsn >= r.needLsn) {
        this.pendingReplies.splice(i, 1);
        this.send(r.to, r.build());
        continue;
      }
      i++;
    }
  }

  private regionOf(block: number): number {
    return Math.floor(block / this.regionBlocks);
  }

  private noteApplied(r: LogRecord): void {
    if (!coversBlocks(r.kind)) return;
    const first = this.regionOf(r.block);
    const last = this.regionOf(r.block + r.blockCount - 1);
    for (let i = first; i <= last; i++) {
      if (this.consistent || this.regionsInstalled.has(i)) {
        this.regionVersions[i] = recordVersion(r);
        this.dirtyShadow.delete(i);
      } else {
        this.regionVersions[i] = REGION_DIRTY;
        this.dirtyShadow.set(i, recordVersion(r));
      }
    }
  }

  private applyCommitted(): void {
    const target = this.bugs.applyUncommitted ? this.logDurableLsn : asLsn(Math.min(this.commitLsn, this.logDurableLsn));
    if (target <= this.appliedLsn) return;
    let config: VolumeConfig | null = null;
    for (const r of this.log.slice(asLsn(this.appliedLsn + 1), target)) {
      this.noteApplied(r);
      if (r.kind === "config" && r.data !== null) config = decodeConfig(r.data);
    }
    // The store keeps the configuration as of its applied point (it folds the
    // config records it checkpoints, as it folds sessions).
    if (config !== null) this.appliedConfig = config;
    this.appliedLsn = target;
    this.out.push({ type: "apply", throughLsn: target });
    this.trimLog();
  }

  /** Keeps a bounded tail of applied records for catch-up of peers. */
  private trimLog(): void {
    let excess = 0;
    const n = this.log.length();
    if (n > this.retainedRecordsMax) excess = n - this.retainedRecordsMax;
    let bytes = this.log.bytes();
    let lsn = this.log.startLsn() + excess;
    while (bytes > this.retainedBytesMax && lsn <= this.appliedLsn) {
      bytes -= this.log.get(asLsn(lsn))?.data?.length ?? 0;
      lsn++;
    }
    const through = asLsn(Math.min(lsn - 1, this.appliedLsn, this.resyncSnapshot === null ? Infinity : this.resyncSnapshot.lsn, this.primaryTrimFloor()));
    if (through < this.log.startLsn()) return;
    const dropped = this.log.trimThrough(through);
    this.sessions = foldSessions(this.sessions, dropped, this.sessionsMax);
  }

  /** A primary keeps what its followers still need, while it fits the caps twice over. */
  private primaryTrimFloor(): number {
    const p = this.primary;
    if (p === null) return Infinity;
    let floor = Infinity;
    for (const f of p.followers.values()) floor = Math.min(floor, f.matchLsn);
    const hardCap = this.log.length() > 2 * this.retainedRecordsMax || this.log.bytes() > 2 * this.retainedBytesMax;
    return hardCap ? Infinity : floor;
  }

  // -------------------------------------------------------------------------
  // Messages: the epoch is checked first, always.

  private onMessage(from: NodeId, msg: PeerMessage): void {
    // Epochs decide everything else; a promise, though, is asked only by
    // members, or by a node whose configuration is newer than this one's (a
    // replica that missed a change): a replica removed from the set cannot
    // take the volume from its live mount.
    if (msg.type === "promise" && from !== this.nodeId && !configMembers(this.config).includes(from) && msg.configVersion <= this.config.configVersion) {
      this.trace("message from a node outside the replica set dropped", { from, type: msg.type });
      return;
    }
    switch (msg.type) {
      case "promise":
        return this.onPromise(from, msg);
      case "promiseGranted":
      case "promiseRefused":
        return this.onPromiseAnswer(from, msg);
      case "fetch":
        return this.onFetch(from, msg);
      case "fetchReply":
        return this.onFetchReply(from, msg);
      case "append":
        return this.onAppend(from, msg);
      case "appendReply":
        return this.onAppendReply(from, msg);
      case "resyncBegin":
        return this.onResyncBegin(from, msg);
      case "resyncBeginReply":
        return this.onResyncBeginReply(from, msg);
      case "region":
        return this.onRegion(from, msg);
      case "regionReply":
        return this.onRegionReply(from, msg);
      case "resyncDone":
        return this.onResyncDone(from, msg);
      case "resyncDoneReply":
        return this.onResyncDoneReply(from, msg);
      case "release":
        if (msg.epoch === this.promisedEpoch) this.released = true;
        if (msg.epoch === this.takeoverPromised?.epoch) this.takeoverPromised = null;
        return;
      case "stale":
        return this.onStale(from, msg);
      case "blockFetch":
        return this.onBlockFetch(from, msg);
      case "blockData":
        return this.onBlockData(from, msg);
      case "corruptReport":
        return this.onCorruptReport(from, msg);
      case "headProbe":
        return this.onHeadProbe(from, msg);
      case "headReport":
        return this.onHeadReport(from, msg);
      case "regionVersions":
        return this.onRegionVersions(from, msg);
      case "regionVersionsReply":
        return this.onRegionVersionsReply(from, msg);
      case "regionDigestsReply":
        return this.onRegionDigestsReply(from, msg);
      default:
        throw new Error(`Unknown message ${JSON.stringify(msg satisfies never)}`);
    }
  }

  /**
   * Rule 1 at the door of every message a primary sends. Returns true if the
   * message may be handled: its epoch is the promised one (a newer one is
   * adopted: a majority promised it, as Raft adopts a newer term).
   */
  private admitPrimaryMessage(from: NodeId, epoch: Epoch): boolean {
    if (epoch < this.promisedEpoch && !this.bugs.acceptStaleEpoch) {
      this.send(from, { type: "stale", epoch, promisedEpoch: this.promisedEpoch, byReserved: this.promisedToReserved() });
      return false;
    }
    if (epoch > this.promisedEpoch) {
      this.adoptEpoch(epoch, from, null);
      this.persistSuperblock({ promisedEpoch: epoch }, () => this.promiseDurable(epoch));
    }
    const p = this.primary;
    if (p !== null && p.epoch === epoch && from !== this.nodeId) {
      // Another node is the primary of this epoch (it won it): this node's
      // own candidacy for the same epoch cannot win. Raft: a candidate that
      // hears from the leader of its term becomes a follower.
      this.stepDown("VOLUME_BUSY", `${from} is the primary of epoch ${epoch} of ${this.config.name}`);
    }
    if (epoch === this.promisedEpoch) {
      this.lastPrimaryAnswerTick = this.now;
      this.leaseClientId = this.promisedClientId;
      this.released = false;
      // The takeover's mount start is here: its lease, not the promise, protects it from now on.
      if (this.takeoverPromised?.epoch === epoch) this.takeoverPromised = null;
    }
    return true;
  }

  private adoptEpoch(epoch: Epoch, candidate: NodeId, clientId: ClientId | null): void {
    assert(epoch > this.promisedEpoch, "Promises only grow");
    this.promisedEpoch = epoch;
    this.promisedTo = candidate;
    this.promisedClientId = clientId;
    this.released = false;
    const p = this.primary;
    if (p !== null && p.epoch < epoch) {
      // A node's own mount (idle sync, an operator's) does not fence a client: it fails over and takes it over.
      if (clientId !== null && isReservedClient(clientId)) this.stepDown("NO_QUORUM", `A node mounted ${this.config.name} itself (epoch ${epoch}): mount again`);
      else this.stepDown("FENCED", `Volume ${this.config.name} was taken over by a mount with epoch ${epoch}`);
    }
    if (this.consistent && this.resyncSnapshot !== null) {
      // A resync that left this replica consistent ends with its epoch: the
      // next primary starts its own if it needs one. (Kept, the snapshot
      // would pin the log against trimming for good.)
      this.resyncSnapshot = null;
      this.deferredInstalls.length = 0;
    }
    this.trace("promised", { promisedEpoch: epoch, candidate });
  }

  private promiseDurable(epoch: Epoch): void {
    if (epoch > this.promiseDurableEpoch) this.promiseDurableEpoch = epoch;
  }

  private onPromise(from: NodeId, m: PromiseRequest): void {
    const refuse = (reason: "stale" | "busy"): void =>
      this.send(from, { type: "promiseRefused", epoch: m.epoch, reason, promisedEpoch: this.promisedEpoch } satisfies PromiseRefused);
    const grant = (): void =>
      this.replyWhenDurable(from, m.epoch, asLsn(0), () => ({
        type: "promiseGranted",
        epoch: m.epoch,
        head: this.durableHead(),
        commitLsn: this.commitLsn,
        consistent: this.consistent,
        unsurePastHead: this.unsurePastHead,
        witnessHead: this.witnessHead(),
        sinceOlderLeaseTicks: this.grantSinceOlder,
        config: this.config,
      }));
    if (m.epoch === this.promisedEpoch && this.promisedTo === from) return grant(); // a retransmission
    if (m.epoch <= this.promisedEpoch) return refuse("stale");
    const leaseLive =
      !this.released && this.lastPrimaryAnswerTick !== null && this.now - this.lastPrimaryAnswerTick < this.timing.leaseTicks;
    if (!m.takeover && leaseLive && this.leaseClientId !== null && this.leaseClientId !== m.clientId && !isReservedClient(this.leaseClientId)) return refuse("busy");
    // A node's own mount never displaces a client's mount in progress here (its client would hear VOLUME_BUSY).
    if (isReservedClient(m.clientId) && this.primary !== null && this.primary.phase !== "active" && !isReservedClient(this.primary.clientId)) return refuse("busy");
    // This node may itself be the live primary: its own lease counts too.
    if (!m.takeover && this.holdsLiveMountOfAnother(m.clientId)) return refuse("busy");
    // Nor does a mount without takeover end another client's takeover in
    // progress here (rule 3): the client that takeover fences would
    // otherwise end it by failing over, again and again (a tug of war).
    if (!m.takeover && this.holdsTakeoverInProgressOfAnother(m.clientId) && !this.bugs.preemptMountInProgress) return refuse("busy");
    // The same holds where this replica promised that takeover and has not
    // heard its mount start yet (the takeover gathers promises or catches up
    // from its base), for as long as a mount may take.
    // (On the takeover's own node its session says whether it is still in progress, above.)
    const t = this.takeoverPromised;
    const elsewhere = this.promisedTo !== this.nodeId;
    if (!m.takeover && elsewhere && t !== null && t.epoch === this.promisedEpoch && t.clientId !== m.clientId && this.now - t.tick < this.timing.mountTimeoutTicks && !this.bugs.preemptMountInProgress) {
      return refuse("busy");
    }
    if (m.takeover && !isReservedClient(m.clientId)) this.takeoverPromised = { epoch: m.epoch, clientId: m.clientId, tick: this.now };
    this.grantSinceOlder = this.released || this.lastPrimaryAnswerTick === null ? null : this.now - this.lastPrimaryAnswerTick;
    this.adoptEpoch(m.epoch, from, m.clientId);
    const epoch = m.epoch;
    this.persistSuperblock({ promisedEpoch: epoch }, () => this.promiseDurable(epoch));
    grant();
  }

  private onFetch(from: NodeId, m: FetchRequest): void {
    if (m.epoch !== this.promisedEpoch) {
      if (m.epoch < this.promisedEpoch) this.send(from, { type: "stale", epoch: m.epoch, promisedEpoch: this.promisedEpoch, byReserved: this.promisedToReserved() });
      return;
    }
    if (this.resetPending()) return; // the candidate asks again
    const prev = this.log.versionAt(asLsn(m.fromLsn - 1));
    const durable = this.logDurableLsn;
    if (prev === null || m.fromLsn - 1 > durable) {
      this.send(from, { type: "fetchReply", epoch: m.epoch, prev: this.log.baseVersion(), records: [], retained: false, head: this.durableHead() });
      return;
    }
    // Only durable records: the candidate adopts this log as the truth.
    const all = this.log.slice(m.fromLsn, m.toLsn === null ? durable : asLsn(Math.min(m.toLsn, durable)));
    const records = boundedPrefix(all, this.recordsPerMessageMax, limits.appendBytesPerMessageMax);
    this.send(from, { type: "fetchReply", epoch: m.epoch, prev, records, retained: true, head: this.durableHead() } satisfies FetchReply);
  }

  private onAppend(from: NodeId, m: AppendRequest): void {
    const problem = appendProblem(m);
    if (problem !== null) {
      // Bad input from a peer changes nothing.
      this.trace("malformed append dropped", { from, problem });
      return;
    }
    if (!this.admitPrimaryMessage(from, m.epoch)) return;
    const epoch = m.epoch;
    const reply = (ok: boolean, matchLsn: Lsn): (() => AppendReply) => () => ({
      type: "appendReply",
      epoch,
      seq: m.seq,
      ok,
      matchLsn,
      head: this.durableHead(),
      commitLsn: this.commitLsn,
      consistent: this.consistent,
    });
    const head = this.log.head();
    const base = this.log.baseVersion();
    let matches: boolean;
    if (m.prev.lsn > head.lsn) matches = false;
    else if (m.prev.lsn < base.lsn) matches = true; // committed history, identical everywhere
    else matches = this.log.holds(m.prev);
    if (!matches) {
      this.replyWhenDurable(from, epoch, asLsn(0), reply(false, asLsn(0)));
      return;
    }
    let fresh: LogRecord[] = [];
    let expect = m.prev.lsn + 1;
    for (const r of m.records) {
      assert(r.lsn === expect++, "Append records are contiguous (checked at the door)");
      if (fresh.length > 0) {
        fresh.push(r);
        continue;
      }
      if (r.lsn <= base.lsn) continue;
      const mine = this.log.get(r.lsn);
      if (mine !== undefined && mine.epoch === r.epoch) continue;
      if (mine !== undefined) {
        // A divergent tail left by a dead mount: dropped from the log, never
        // undone on the data (rule 6), since it was never applied.
        // (An implementation with a planted bug lacks the guard against it, so
        // that the simulator's checker sees what the bug does.)
        if (this.guarded) {
          assert(r.lsn > this.appliedLsn, `Divergent record ${formatVersion(recordVersion(mine))} was applied`);
          assert(r.lsn > this.commitLsn, `Divergent record ${formatVersion(recordVersion(mine))} was committed`);
        }
        const to = asLsn(r.lsn - 1);
        this.log.truncateAfter(to);
        if (this.appliedLsn > to) this.appliedLsn = to;
        if (this.consistentThrough !== null && this.consistentThrough.lsn > to) this.consistentThrough = this.log.head();
        this.trace("log truncated", { afterLsn: to });
        this.logOp(to, (token) => ({ type: "truncateLog", afterLsn: to, token }));
        this.refreshConfig();
      }
      fresh = [r];
    }
    if (fresh.length > 0) {
      this.log.append(fresh);
      const records = fresh;
      this.logOp(null, (token) => ({ type: "appendLog", records, token }));
      this.noteAppendedConfig(records);
    }
    const matchLsn = asLsn(m.prev.lsn + m.records.length);
    const commit = Math.min(m.commitLsn, matchLsn);
    if (commit > this.commitLsn) this.commitLsn = asLsn(commit);
    if (this.unsurePastHead && this.log.versionAt(matchLsn)?.epoch === epoch) {
      // The log now matches a legitimate primary's through a record of its
      // own epoch: whatever the cut lost is filled in.
      this.unsurePastHead = false;
      this.persistSuperblock({ unsurePastHead: false });
      this.trace("no longer unsure past head", { matchLsn });
    }
    this.replyWhenDurable(from, epoch, matchLsn, reply(true, matchLsn));
  }

  private onResyncBegin(from: NodeId, m: ResyncBegin): void {
    if (!this.admitPrimaryMessage(from, m.epoch)) return;
    const answered = this.resyncBeginAnswer;
    if (answered !== null && answered.epoch === m.epoch && m.seq <= answered.seq) {
      // A copy of the attempt taken (answered again while it is the current one), or an older one's: never a reset.
      if (m.seq === answered.seq && this.resyncSnapshot !== null && this.resyncSeq === m.seq) {
        this.replyWhenDurable(from, m.epoch, answered.effectiveSnapshot.lsn, () => answered);
      }
      return;
    }
    const epoch = m.epoch;
    const regionVersions = [...this.regionVersions];
    // Records up to the snapshot go (the regions bring them); records after
    // it stay when this log holds the snapshot: they may be acknowledged
    // writes, and a replica never forgets one it acknowledged. If this log
    // does not hold the snapshot, everything after it diverges and goes. A
    // log that starts after the snapshot keeps all of itself.
    const base = this.log.baseVersion();
    const effective = m.snapshot.lsn < base.lsn ? base : m.snapshot;
    // First apply what is committed and held durably: a record this replica
    // holds is never dropped unapplied (the snapshot is committed, so every
    // record up to it that this log holds is committed too).
    const holdsSnapshot = this.log.holds(effective);
    if (holdsSnapshot && this.commitLsn < effective.lsn) this.commitLsn = effective.lsn;
    this.applyCommitted();
    // Takes the regions of this resync from now on, and answers once the log is where the reply says.
    const awaitRegions = (): void => {
      this.resyncSnapshot = m.snapshot;
      this.resyncSeq = m.seq;
      this.deferredInstalls.length = 0;
      this.regionsInstalled.clear();
      this.dirtyShadow.clear();
      const reply: ResyncBeginReply = { type: "resyncBeginReply", epoch, seq: m.seq, snapshot: m.snapshot, effectiveSnapshot: effective, regionVersions };
      this.resyncBeginAnswer = reply;
      this.replyWhenDurable(from, epoch, effective.lsn, () => reply);
    };
    if (this.consistent && holdsSnapshot) {
      // A consistent replica whose log holds the snapshot holds every record
      // up to it (a log has no gaps): applied now, its blocks are the
      // snapshot's state. It stays consistent and keeps its log: dropping
      // records it acknowledged would leave them on fewer replicas, maybe on
      // none if the primary fails now (found by the simulator, seed 1841).
      // It takes the regions the primary still sends (copies of the same
      // committed history, installed once applied through their copy point).
      this.trace("region resync begins: this log holds the snapshot, the replica stays consistent", { snapshot: formatVersion(m.snapshot) });
      return awaitRegions();
    }
    // What this replica vouches for from now on: what it acknowledged while
    // consistent, which its log keeps when it holds the snapshot.
    const through = this.consistent ? this.log.head() : (this.consistentThrough ?? effective);
    const consistentThrough = holdsSnapshot && compareVersion(through, effective) > 0 ? through : effective;
    const sessions = effective === m.snapshot ? [...m.sessions] : this.sessions;
    if (this.log.holds(effective)) this.sessions = foldSessions(sessions, this.log.trimThrough(effective.lsn), this.sessionsMax);
    else {
      this.log.reset(effective);
      this.sessions = sessions;
    }
    // The regions bring the blocks up to the snapshot, not the configuration
    // records before it: the primary's configuration stands for them (the
    // records after the snapshot, arriving in order, bring theirs).
    this.appliedConfig = m.config;
    this.persistSuperblock({ config: m.config });
    this.refreshConfig();
    // Applying again from the snapshot is safe: every record sets whole blocks.
    this.appliedLsn = effective.lsn;
    if (this.commitLsn < effective.lsn) this.commitLsn = effective.lsn;
    this.consistent = false;
    this.consistentThrough = consistentThrough;
    this.trace("region resync begins", { snapshot: formatVersion(m.snapshot), logFrom: formatVersion(effective), kept: this.log.length() });
    const persisted = this.sessions;
    this.logOp(effective.lsn, (token) => ({ type: "resetLogForResync", snapshot: effective, sessions: persisted, consistentThrough, token }));
    awaitRegions();
  }

  private onRegion(from: NodeId, m: RegionCopy): void {
    if (!this.admitPrimaryMessage(from, m.epoch)) return;
    if (this.resyncSnapshot === null) return; // a late duplicate
    this.deferredInstalls.push({ from, msg: m });
  }

  /** A region copied at lsn A is installed once this replica has applied through A (never older bytes over newer). */
  private installDeferred(): void {
    for (let i = 0; i < this.deferredInstalls.length; ) {
      const d = this.deferredInstalls[i];
      assert(d !== undefined);
      if (d.msg.epoch !== this.promisedEpoch) {
        this.deferredInstalls.splice(i, 1);
        continue;
      }
      if (d.msg.copiedAt > this.appliedLsn) {
        i++;
        continue;
      }
      if (d.msg.copiedAt + 1 < this.log.startLsn() && d.msg.copiedAt < this.appliedLsn) {
        // A copy from an older attempt whose later records this log no
        // longer holds: its version could not be brought forward. Dropped;
        // the primary sends the region again.
        this.deferredInstalls.splice(i, 1);
        continue;
      }
      this.deferredInstalls.splice(i, 1);
      const { from, msg } = d;
      let version = msg.version;
      const first = msg.region * this.regionBlocks;
      for (const r of this.log.slice(asLsn(msg.copiedAt + 1), this.appliedLsn)) {
        if (touches(r, first, this.regionBlocks)) version = recordVersion(r);
      }
      this.regionVersions[msg.region] = version;
      this.regionsInstalled.add(msg.region);
      this.dirtyShadow.delete(msg.region);
      const token = this.token(() => this.send(from, { type: "regionReply", epoch: msg.epoch, region: msg.region, seq: msg.seq } satisfies RegionReply));
      this.out.push({ type: "installRegion", region: msg.region, data: msg.data, blocks: msg.blocks, version: msg.version, copiedAt: msg.copiedAt, token });
    }
  }

  private onResyncDone(from: NodeId, m: ResyncDone): void {
    if (!this.admitPrimaryMessage(from, m.epoch)) return;
    const epoch = m.epoch;
    const done = (): void => this.send(from, { type: "resyncDoneReply", epoch, snapshot: m.snapshot } satisfies ResyncDoneReply);
    if (this.consistent) {
      if (this.resyncSnapshot !== null && versionEquals(this.resyncSnapshot, m.snapshot) && m.seq === this.resyncSeq) {
        this.resyncSnapshot = null;
        this.deferredInstalls.length = 0;
      }
      return done();
    }
    // Of this attempt only: a late resyncDone of an earlier one (same snapshot on an idle volume) does not speak for the regions of this one.
    const current = (): boolean => this.resyncSnapshot !== null && versionEquals(this.resyncSnapshot, m.snapshot) && m.seq === this.resyncSeq;
    if (!current()) return;
    this.out.push({
      type: "markConsistent",
      token: this.token(() => {
        if (!current()) return;
        this.consistent = true;
        this.consistentThrough = null;
        this.resyncSnapshot = null;
        // A region still dirty now was not copied: its version matched the
        // primary's when the resync compared them (a dirty one never does,
        // so every region dirty before the resync began was copied), and
        // it has taken every record since, as the primary has. Its blocks
        // are the history's, and the last record applied to it is its
        // version (the store does the same as it marks itself consistent).
        for (const [i, v] of this.dirtyShadow) if (isRegionDirty(this.regionVersions[i] ?? VERSION_ZERO)) this.regionVersions[i] = v;
        this.dirtyShadow.clear();
        this.trace("region resync done: consistent");
        done();
      }),
    });
  }

  private onStale(from: NodeId, m: StaleEpoch): void {
    const p = this.primary;
    if (p === null || m.epoch !== p.epoch) return;
    if (p.phase === "promising") return this.retryPromises(m.promisedEpoch);
    if (m.byReserved) return this.stepDown("NO_QUORUM", `A node mounted ${this.config.name} itself (epoch ${m.promisedEpoch}) while this primary was cut off: mount again`);
    this.stepDown("FENCED", `Volume ${this.config.name} was taken over: ${from} promised epoch ${m.promisedEpoch}, newer than ${p.epoch}`);
  }

  // -------------------------------------------------------------------------
  // Client requests.

  private fail(reqId: RequestId, code: ErrorCode, message: string, retryAt?: NodeId): void {
    const result: RequestFailure = retryAt === undefined ? { ok: false, code, message } : { ok: false, code, message, retryAt };
    this.out.push({ type: "reply", reqId, result });
  }

  private onRequest(reqId: RequestId, req: ClientRequest): void {
    switch (req.type) {
      case "mount":
        return this.onMount(reqId, req);
      case "write":
        return this.onWrite(reqId, req);
      case "read":
        return this.onRead(reqId, req);
      case "unmount":
        return this.onUnmount(reqId);
      case "replace":
        return this.onReplace(reqId, req);
      default:
        throw new Error(`Unknown request ${JSON.stringify(req satisfies never)}`);
    }
  }

  private onMount(reqId: RequestId, req: MountRequest): void {
    const p = this.primary;
    if (p !== null && p.clientId === req.clientId && p.phase === "active" && this.leaseValid(p)) {
      this.out.push({ type: "reply", reqId, result: { ok: true, epoch: p.epoch, blockCount: this.config.blockCount, blockSize: this.config.blockSize } });
      return;
    }
    if (p !== null && p.phase !== "active" && !isReservedClient(p.clientId)) {
      return this.fail(reqId, "VOLUME_BUSY", `A mount of volume ${this.config.name} is in progress on ${this.nodeId}: try again shortly`);
    }
    if (!req.takeover && this.holdsLiveMountOfAnother(req.clientId)) {
      return this.fail(reqId, "VOLUME_BUSY", `Volume ${this.config.name} is mounted by another client whose lease is live: use takeover (volctl --force) to fence it`);
    }
    if (!this.consistent) {
      return this.fail(reqId, "NO_QUORUM", `The replica of ${this.config.name} on ${this.nodeId} is resyncing: mount through another replica`);
    }
    if (!isVoter(this.config, this.nodeId)) {
      return this.fail(reqId, "NO_QUORUM", `The replica of ${this.config.name} on ${this.nodeId} does not vote (yet): mount through ${this.config.replicas.join(", ")}`);
    }
    if (p !== null) this.stepDown("FENCED", `Volume ${this.config.name} was taken over by client ${req.clientId}`);
    const epoch = asEpoch(this.promisedEpoch + 1);
    const session: PrimarySession = {
      phase: "promising",
      epoch,
      clientId: req.clientId,
      takeover: req.takeover,
      mountReqId: reqId,
      mountDeadline: this.now + this.timing.mountTimeoutTicks,
      promiseRound: 0,
      promiseSentTick: this.now,
      promises: new Map(),
      promiseTargets: new Set(),
      refusedBusy: new Set(),
      base: null,
      baseTarget: VERSION_ZERO,
      fetch: null,
      fetchThen: null,
      leaseWaitUntil: Infinity,
      mountStartLsn: asLsn(0),
      followers: new Map(),
      pendingWrites: [],
      pendingReads: [],
      repairs: new Map(),
      readsAwaitingRepair: [],
      seqLsn: new Map(),
      seqsAtMount: new Set(),
      trimmedSeqMax: 0,
      leavingSince: null,
      digestVotes: new Map(),
      repairedThrough: new Map(),
      activeSince: Infinity,
    };
    this.primary = session;
    this.trace("mount begins", { candidate: this.nodeId, clientId: req.clientId, takeover: req.takeover });
    this.sendPromises(session, true);
  }

  /**
   * How the mount of `epoch` this node coordinated ended, if it was its last:
   * NO_QUORUM when its client should fail over (a node's own mount took the
   * volume, or a replacement removed this replica), not FENCED.
   */
  endedMount(epoch: Epoch): { code: ErrorCode; message: string } | null {
    return this.lastEnded !== null && this.lastEnded.epoch === epoch ? this.lastEnded : null;
  }

  /** Whether the epoch this replica promised is a node's own mount's. */
  private promisedToReserved(): boolean {
    return this.promisedClientId !== null && isReservedClient(this.promisedClientId);
  }

  /**
   * This node coordinates another client's takeover, not yet active (a
   * node's own mount is no client's). Only a takeover: two mounts without
   * takeover racing through two nodes would otherwise refuse each other
   * (with W up, both until their mount timeout); the newer epoch decides
   * between those, as before.
   */
  private holdsTakeoverInProgressOfAnother(clientId: ClientId): boolean {
    const p = this.primary;
    return p !== null && p.phase !== "active" && p.takeover && p.clientId !== clientId && !isReservedClient(p.clientId);
  }

  /** Whether this node is the active primary of another client's mount, under a valid lease. */
  private holdsLiveMountOfAnother(clientId: ClientId): boolean {
    const p = this.primary;
    return p !== null && p.phase === "active" && p.clientId !== clientId && !isReservedClient(p.clientId) && this.leaseValid(p);
  }

  private sendPromises(p: PrimarySession, fresh: boolean): void {
    if (fresh) {
      p.promises.clear();
      p.refusedBusy.clear();
      p.promiseTargets.clear();
    }
    for (const set of voterSets(this.config)) for (const node of set) p.promiseTargets.add(node);
    p.promiseSentTick = this.now;
    for (const node of p.promiseTargets) {
      this.send(node, { type: "promise", epoch: p.epoch, clientId: p.clientId, takeover: p.takeover, configVersion: this.config.configVersion });
    }
  }

  private retryPromises(seenEpoch: Epoch): void {
    const p = this.primary;
    assert(p !== null && p.phase === "promising");
    if (seenEpoch < p.epoch) return;
    p.promiseRound++;
    if (p.promiseRound >= limits.promiseRoundsMax) {
      this.primary = null;
      return this.fail(p.mountReqId, "NO_QUORUM", `Mount of ${this.config.name} lost ${p.promiseRound} promise rounds to other mounts: try again`);
    }
    if (!this.consistent) {
      this.primary = null;
      return this.fail(p.mountReqId, "NO_QUORUM", `The replica of ${this.config.name} on ${this.nodeId} is resyncing: mount through another replica`);
    }
    p.epoch = asEpoch(Math.max(seenEpoch, this.promisedEpoch) + 1);
    this.sendPromises(p, true);
  }

  private onPromiseAnswer(from: NodeId, m: PromiseGranted | PromiseRefused): void {
    const p = this.primary;
    if (p === null || p.phase !== "promising" || m.epoch !== p.epoch) return;
    if (m.type === "promiseRefused") {
      if (m.reason === "stale") return this.retryPromises(m.promisedEpoch);
      p.refusedBusy.add(from);
      const busy = voterSets(this.config).some((set) => set.filter((n) => p.refusedBusy.has(n)).length > set.length - writeQuorum(set.length));
      if (from === this.nodeId || busy) {
        this.primary = null;
        this.fail(p.mountReqId, "VOLUME_BUSY", `Volume ${this.config.name} is mounted by another client whose lease is live: use takeover (volctl --force) to fence it`);
      }
      return;
    }
    p.promises.set(from, m);
    this.tryChooseBase(p);
  }

  private tryChooseBase(p: PrimarySession): void {
    if (!p.promises.has(this.nodeId)) return;
    const infos = [...p.promises.entries()].map(([node, g]) => ({
      node,
      head: g.head,
      consistent: g.consistent,
      unsurePastHead: g.unsurePastHead,
      witnessHead: g.witnessHead,
    }));
    // The mount needs a majority of this replica's configuration and of the
    // one in the most up-to-date log (which it is about to adopt): Raft's
    // "the latest configuration in the log", with joint majorities. Voters
    // of that configuration not asked yet are asked now.
    const best = mostUpToDate(infos, this.nodeId);
    const theirs = best === null ? undefined : p.promises.get(best.node)?.config;
    const adopted = theirs !== undefined && theirs.configVersion > this.config.configVersion ? theirs : this.config;
    const sets = adopted === this.config ? voterSets(this.config) : [...voterSets(this.config), ...voterSets(adopted)];
    for (const set of sets) {
      for (const node of set) {
        if (p.promiseTargets.has(node)) continue;
        p.promiseTargets.add(node);
        this.send(node, { type: "promise", epoch: p.epoch, clientId: p.clientId, takeover: p.takeover, configVersion: this.config.configVersion });
      }
    }
    let choice = chooseBaseAcross(infos, sets, this.nodeId);
    if (this.bugs.baseAnyReplica && infos.length >= writeQuorum(this.config.replicas.length)) {
      const source = infos.reduce((a, b) => (compareVersion(trustedHead(a), trustedHead(b)) <= 0 ? a : b));
      choice = { source, target: trustedHead(source) };
    }
    if (choice === null) return;
    if (!isVoter(adopted, this.nodeId)) {
      this.primary = null;
      return this.fail(p.mountReqId, "NO_QUORUM", `${this.nodeId} no longer holds a voting replica of ${this.config.name} (configuration ${adopted.configVersion}): mount through ${adopted.replicas.join(", ")}`, adopted.replicas[0]);
    }
    const base = choice.source;
    const target = choice.target;
    // Every lease this mount may cut short runs out before it acknowledges.
    const d = this.timing.driftPermille / 1000;
    let wait = 0;
    for (const g of p.promises.values()) {
      if (g.sinceOlderLeaseTicks === null) continue;
      wait = Math.max(wait, this.timing.leaseTicks * (1 + d) - g.sinceOlderLeaseTicks * (1 - d));
    }
    p.leaseWaitUntil = this.bugs.noLeaseWait ? this.now : this.now + Math.ceil(wait);
    p.base = base.node;
    p.baseTarget = target;
    this.trace("base chosen", { base: base.node, head: formatVersion(target), promises: infos.length, leaseWaitTicks: Math.ceil(wait) });
    if (base.node === this.nodeId) return this.appendMountStart(p);
    if (!this.resetPending() && versionEquals(target, this.durableHead())) return this.appendMountStart(p);
    p.phase = "fetching";
    this.fetchFrom(p, base.node, asLsn(Math.min(this.commitLsn, this.log.head().lsn) + 1), target.lsn);
  }

  private fetchFrom(p: PrimarySession, node: NodeId, fromLsn: Lsn, toLsn: Lsn | null): void {
    p.fetch = { node, fromLsn, toLsn };
    p.promiseSentTick = this.now;
    this.send(node, { type: "fetch", epoch: p.epoch, fromLsn, toLsn });
  }

  private failFetch(p: PrimarySession): void {
    // Redirect the client to a consistent promiser that knows the most.
    let best: NodeId | undefined;
    let bestCommit = -1;
    for (const [node, g] of p.promises) {
      if (node !== this.nodeId && g.consistent && g.commitLsn > bestCommit) {
        best = node;
        bestCommit = g.commitLsn;
      }
    }
    this.primary = null;
    const where = best === undefined ? "try another replica" : `mount through ${best}`;
    this.fail(p.mountReqId, "NO_QUORUM", `The replica on ${this.nodeId} is too far behind to coordinate ${this.config.name}: ${where}`, best);
  }

  private onFetchReply(from: NodeId, m: FetchReply): void {
    const p = this.primary;
    if (p === null || p.phase !== "fetching" || m.epoch !== p.epoch || p.fetch === null || from !== p.fetch.node) return;
    const baseNode = p.base;
    assert(baseNode !== null);
    const fromBase = from === baseNode;
    if (!m.retained) {
      // The peer's log starts after what we need (m.prev is its base).
      if (!fromBase) return this.failFetch(p);
      if (this.holdsOrBelowBase(m.prev)) return this.fetchFrom(p, from, asLsn(m.prev.lsn + 1), p.baseTarget.lsn);
      // Committed records up to the base's log start come from a peer that
      // knows them to be committed, the rest from the base.
      let helper: NodeId | null = null;
      let helperCommit = -1;
      for (const [node, g] of p.promises) {
        if (node !== this.nodeId && node !== from && g.commitLsn >= m.prev.lsn && g.commitLsn > helperCommit) {
          helper = node;
          helperCommit = g.commitLsn;
        }
      }
      if (helper === null) return this.failFetch(p);
      p.fetchThen = asLsn(m.prev.lsn + 1);
      return this.fetchFrom(p, helper, p.fetch.fromLsn, m.prev.lsn);
    }
    if (!this.holdsOrBelowBase(m.prev)) return this.failFetch(p);
    if (fromBase && compareVersion(m.head, p.baseTarget) < 0) {
      // The base lost records since it promised (a crash cut its log): what
      // it promised no longer holds. Start over with fresh promises.
      this.primary = null;
      return this.fail(p.mountReqId, "NO_QUORUM", `The base of this mount of ${this.config.name} (${from}) restarted with less than it promised: try again`);
    }
    // A fetch reply is bounded: ask again from where it stopped.
    const last = m.records[m.records.length - 1];
    const upTo = fromBase ? p.baseTarget.lsn : p.fetch.toLsn;
    if (last !== undefined && upTo !== null && last.lsn < upTo) {
      this.adoptRecords(m.records, null);
      return this.fetchFrom(p, from, asLsn(last.lsn + 1), upTo);
    }
    this.adoptRecords(m.records, fromBase ? p.baseTarget : null);
    if (!fromBase) {
      const then = p.fetchThen;
      assert(then !== null);
      p.fetchThen = null;
      return this.fetchFrom(p, baseNode, then, p.baseTarget.lsn);
    }
    assert(versionEquals(this.log.head(), p.baseTarget), `Caught up to the base's head ${formatVersion(p.baseTarget)}`);
    this.appendMountStart(p);
  }

  private holdsOrBelowBase(v: Version): boolean {
    return this.log.holds(v) || v.lsn < this.log.baseVersion().lsn;
  }

  /**
   * Takes a peer's records into this candidate's log: records it holds are
   * skipped, a divergent tail is cut at the first conflict (never below the
   * commit point). With `peerHead`, the peer's log is the base: whatever this
   * log holds past it is cut too.
   */
  private adoptRecords(records: readonly LogRecord[], peerHead: Version | null): void {
    const keep: LogRecord[] = [];
    let cut: Lsn | null = null;
    for (const r of records) {
      if (r.lsn <= this.log.baseVersion().lsn) continue;
      const mine = keep.length === 0 ? this.log.get(r.lsn) : undefined;
      if (mine !== undefined && mine.epoch === r.epoch) continue;
      if (mine !== undefined) cut = asLsn(r.lsn - 1);
      keep.push(r);
    }
    if (cut === null && keep.length === 0 && peerHead !== null && peerHead.lsn < this.log.head().lsn) cut = peerHead.lsn;
    if (cut !== null) {
      if (this.guarded) assert(cut >= this.commitLsn, "A fetch never cuts committed records");
      const to = cut;
      this.log.truncateAfter(to);
      this.logOp(to, (token) => ({ type: "truncateLog", afterLsn: to, token }));
      this.refreshConfig();
    }
    if (keep.length > 0) {
      this.log.append(keep);
      this.logOp(null, (token) => ({ type: "appendLog", records: keep, token }));
      this.noteAppendedConfig(keep);
    }
  }

  private appendMountStart(p: PrimarySession): void {
    // A primary serves reads from its own blocks: they must be complete.
    assert(this.consistent, `A primary of ${this.config.name} is consistent`);
    p.phase = "mounting";
    const head = this.log.head();
    this.captureClientSeqs(p);
    const record: LogRecord = {
      epoch: p.epoch,
      lsn: asLsn(head.lsn + 1),
      kind: "mountStart",
      block: 0 as LogRecord["block"],
      blockCount: 0,
      data: null,
      clientId: p.clientId,
      clientSeq: 0,
    };
    p.mountStartLsn = record.lsn;
    this.syncFollowers(p, record.lsn);
    this.appendAsPrimary(p, record);
    this.trace("mount start appended", { lsn: record.lsn });
  }

  private captureClientSeqs(p: PrimarySession): void {
    for (const s of this.sessions) if (s.clientId === p.clientId) p.trimmedSeqMax = Math.max(p.trimmedSeqMax, s.clientSeq);
    const seqs = new Set<number>();
    for (const r of this.log.slice(this.log.startLsn(), this.log.head().lsn)) {
      if (r.kind !== "mountStart" && r.clientId === p.clientId) seqs.add(r.clientSeq);
    }
    p.seqsAtMount = seqs;
  }

  private appendAsPrimary(p: PrimarySession, record: LogRecord): void {
    assert(this.primary === p && this.promisedEpoch === p.epoch, "Only the primary of the promised epoch appends");
    this.log.append([record]);
    this.logOp(null, (token) => ({ type: "appendLog", records: [record], token }));
    if (record.kind === "config") this.noteAppendedConfig([record]);
    for (const f of p.followers.values()) this.sendAppends(p, f, false);
  }

  private onWrite(reqId: RequestId, req: WriteRequest): void {
    const p = this.primary;
    if (p === null || p.phase !== "active") {
      return this.noActiveMount(reqId);
    }
    if (req.clientId !== p.clientId) {
      return this.fail(reqId, "FENCED", `Volume ${this.config.name} is mounted by another client`);
    }
    const bad = this.checkRange(req.block, req.blockCount);
    if (bad !== null) return this.fail(reqId, bad.code, bad.message);
    if (req.kind === "write") {
      if (req.data === null || req.data.length !== req.blockCount * this.config.blockSize) {
        return this.fail(reqId, "INVALID_ARGUMENT", `Write of ${req.blockCount} blocks needs ${req.blockCount * this.config.blockSize} bytes`);
      }
    } else if (req.data !== null) {
      return this.fail(reqId, "INVALID_ARGUMENT", `A ${req.kind} request carries no data`);
    }
    if (req.clientSeq <= p.trimmedSeqMax || p.seqsAtMount.has(req.clientSeq)) {
      // A replay of a write the history already holds (committed with the
      // mount start). Acknowledged like any other write: under the lease.
      p.pendingWrites.push({ reqId, lsn: p.mountStartLsn, deadline: this.now + this.timing.writeTimeoutTicks });
      return;
    }
    const dup = p.seqLsn.get(req.clientSeq);
    if (dup !== undefined) {
      p.pendingWrites.push({ reqId, lsn: dup, deadline: this.now + this.timing.writeTimeoutTicks });
      return;
    }
    if (!this.leaseValid(p)) {
      return this.fail(reqId, "NO_QUORUM", `Fewer than ${this.quorumWords()} replicas of ${this.config.name} are reachable: nothing was written`);
    }
    if (p.pendingWrites.length >= limits.clientRequestsQueuedMax) {
      return this.fail(reqId, "NO_QUORUM", `Too many writes of ${this.config.name} are waiting for replicas: nothing was written`);
    }
    const record: LogRecord = {
      epoch: p.epoch,
      lsn: asLsn(this.log.head().lsn + 1),
      kind: req.kind,
      block: req.block,
      blockCount: req.blockCount,
      data: req.data,
      clientId: req.clientId,
      clientSeq: req.clientSeq,
    };
    p.seqLsn.set(req.clientSeq, record.lsn);
    p.pendingWrites.push({ reqId, lsn: record.lsn, deadline: this.now + this.timing.writeTimeoutTicks });
    this.appendAsPrimary(p, record);
  }

  private checkRange(block: number, blockCount: number): { code: ErrorCode; message: string } | null {
    if (!Number.isInteger(block) || !Number.isInteger(blockCount) || block < 0 || blockCount < 1 || blockCount > limits.requestBlocksMax) {
      return { code: "INVALID_ARGUMENT", message: `Bad block range ${block}+${blockCount}: at most ${limits.requestBlocksMax} blocks per request` };
    }
    if (block + blockCount > this.config.blockCount) {
      return { code: "OUT_OF_RANGE", message: `Blocks ${block}..${block + blockCount - 1} are past the end of ${this.config.name} (${this.config.blockCount} blocks)` };
    }
    return null;
  }

  private onRead(reqId: RequestId, req: ReadRequest): void {
    const p = this.primary;
    if (p === null || p.phase !== "active") {
      return this.noActiveMount(reqId);
    }
    const bad = this.checkRange(req.block, req.blockCount);
    if (bad !== null) return this.fail(reqId, bad.code, bad.message);
    const dep = this.log.lastTouching(req.block, req.blockCount, this.appliedLsn, this.log.head().lsn);
    p.pendingReads.push({ reqId, req, dependsOnLsn: dep?.lsn ?? asLsn(0), deadline: this.now + this.timing.writeTimeoutTicks });
  }

  private onUnmount(reqId: RequestId): void {
    const p = this.primary;
    if (p === null || p.phase !== "active") return this.noActiveMount(reqId);
    // The final commit point first, so the followers apply the last writes
    // now rather than at the next mount.
    for (const f of p.followers.values()) this.sendAppends(p, f, true);
    for (const node of configMembers(this.config)) if (node !== this.nodeId) this.send(node, { type: "release", epoch: p.epoch });
    this.released = true;
    this.stepDown("FENCED", `Volume ${this.config.name} was unmounted`);
    this.out.push({ type: "reply", reqId, result: { ok: true } });
  }

  private stepDown(code: ErrorCode, message: string): void {
    const p = this.primary;
    if (p === null) return;
    this.primary = null;
    this.lastEnded = { epoch: p.epoch, code, message };
    this.trace("primary steps down", { reason: message });
    if (p.phase !== "active") {
      this.fail(p.mountReqId, code === "FENCED" ? "VOLUME_BUSY" : code, `Mount of ${this.config.name} lost to another: ${message}`);
    }
    for (const w of p.pendingWrites) this.fail(w.reqId, code, message);
    for (const r of p.pendingReads) this.fail(r.reqId, code, message);
    for (const r of p.readsAwaitingRepair) this.fail(r.reqId, code, message);
  }

  // -------------------------------------------------------------------------
  // Primary: replication, commit, lease, acks.

  private leaseExpiry(p: PrimarySession): number {
    // A majority of each voter set renewed it; the primary counts in the sets it votes in.
    let start = Infinity;
    for (const set of voterSets(this.config)) {
      const acks: (number | null)[] = [];
      for (const n of set) if (n !== this.nodeId) acks.push(p.followers.get(n)?.ackedSentTick ?? null);
      const quorum = writeQuorum(set.length);
      const s = leaseStart(acks, set.includes(this.nodeId) ? quorum : quorum + 1, this.now);
      if (s === null) return -Infinity;
      start = Math.min(start, s);
    }
    return start + this.timing.leaseTicks * (1 - this.timing.driftPermille / 1000);
  }

  private leaseValid(p: PrimarySession): boolean {
    return this.now < this.leaseExpiry(p);
  }

  private sendAppends(p: PrimarySession, f: Follower, heartbeat: boolean): void {
    if (f.resync !== null && f.resync.phase === "begin") return;
    const head = this.log.head().lsn;
    let sent = false;
    // Bounded in records and in bytes (a message may take the bytes past the bound by less than one message).
    while (f.nextLsn <= head && f.nextLsn - f.matchLsn - 1 < this.recordsInFlightMax && this.log.bytesBetween(asLsn(f.matchLsn + 1), asLsn(f.nextLsn - 1)) < this.bytesInFlightMax) {
      const prev = this.log.versionAt(asLsn(f.nextLsn - 1));
      if (prev === null) return this.beginResync(p, f);
      const window = this.log.slice(f.nextLsn, asLsn(Math.min(head, f.nextLsn + this.recordsPerMessageMax - 1)));
      const records = boundedPrefix(window, this.recordsPerMessageMax, limits.appendBytesPerMessageMax);
      const last = records[records.length - 1];
      assert(last !== undefined, "an append carries a record");
      this.send(f.node, { type: "append", epoch: p.epoch, prev, records, commitLsn: this.commitLsn, seq: this.now });
      f.nextLsn = asLsn(last.lsn + 1);
      f.lastSendTick = this.now;
      sent = true;
    }
    if (!sent && heartbeat) {
      const prev = this.log.versionAt(asLsn(f.nextLsn - 1));
      if (prev === null) return this.beginResync(p, f);
      this.send(f.node, { type: "append", epoch: p.epoch, prev, records: [], commitLsn: this.commitLsn, seq: this.now });
      f.lastSendTick = this.now;
    }
  }

  private onAppendReply(from: NodeId, m: AppendReply): void {
    const p = this.primary;
    if (p === null || m.epoch !== p.epoch) return;
    const f = p.followers.get(from);
    if (f === undefined) return;
    if (f.ackedSentTick === null || m.seq > f.ackedSentTick) f.ackedSentTick = m.seq;
    if (m.seq > f.consistentSinceSeq) f.consistent = m.consistent;
    if (m.commitLsn > f.reportedCommitLsn) f.reportedCommitLsn = m.commitLsn;
    if (!f.consistent && f.resync === null) return this.beginResync(p, f);
    if (m.ok) {
      if (m.matchLsn > f.matchLsn) {
        f.matchLsn = m.matchLsn;
        f.lastProgressTick = this.now;
      }
      if (f.resendFromLsn < f.matchLsn + 1) f.resendFromLsn = asLsn(f.matchLsn + 1);
      if (f.nextLsn <= f.matchLsn) f.nextLsn = asLsn(f.matchLsn + 1);
      this.sendAppends(p, f, false);
      return;
    }
    if (f.resync !== null) return;
    // Find where the follower's log meets ours: its head if we hold it, else
    // its commit point (committed history is the same everywhere).
    const next = this.log.holds(m.head) ? m.head.lsn + 1 : Math.min(m.commitLsn, m.head.lsn) + 1;
    f.nextLsn = asLsn(Math.max(next, 1));
    f.resendFromLsn = f.nextLsn;
    if (f.matchLsn >= f.nextLsn) f.matchLsn = asLsn(f.nextLsn - 1);
    f.lastProgressTick = this.now;
    this.sendAppends(p, f, true);
  }

  // Repair of corrupt blocks (rule 9), driven by the primary.
  //
  // A block of this primary's applied data failed its checksum. An in-sync
  // follower sends its applied copy as of its applied point A; committed
  // history is the same everywhere, so that copy with the records after A
  // that touch the block laid over it is the block's content at this
  // primary's head. That content goes into the history as a repair record
  // (a whole-block write of the same bytes, by REPAIR_CLIENT_ID): committed
  // and applied like any write, it rewrites the bad copy, and the reads
  // waiting for it are served through it. A follower whose copy is bad too
  // answers null and the next one is asked; with none left the block has no
  // good copy, and its reads fail CORRUPT: bad bytes are never returned.

  private onCorrupt(blocks: readonly BlockIndex[], read: { reqId: RequestId; req: ReadRequest } | null): void {
    this.corruptFound += blocks.length;
    this.trace("corrupt blocks found", { blocks: blocks.join(","), forRead: read !== null });
    const p = this.primary;
    // A mounting primary repairs too: its resyncs may wait on the block.
    if (p === null || (p.phase !== "active" && p.phase !== "mounting")) {
      if (read !== null) this.fail(read.reqId, "CORRUPT", `Blocks ${blocks.join(", ")} of ${this.config.name} failed their checksum on ${this.nodeId}, which is no longer the primary`);
      // A follower's own copies (found by a scrub): the primary of its promised epoch repairs them.
      if (this.promisedTo !== null && this.promisedTo !== this.nodeId && this.consistent) {
        this.send(this.promisedTo, { type: "corruptReport", epoch: this.promisedEpoch, blocks: [...blocks] } satisfies CorruptReport);
      }
      return;
    }
    if (read !== null) {
      p.readsAwaitingRepair.push({ reqId: read.reqId, req: read.req, waitingFor: new Set(blocks), dependsOnLsn: asLsn(0), deadline: this.now + this.timing.writeTimeoutTicks });
    }
    this.startRepairs(p, blocks, this.nodeId);
  }

  private onCorruptReport(from: NodeId, m: CorruptReport): void {
    const p = this.primary;
    if (p === null || (p.phase !== "active" && p.phase !== "mounting") || m.epoch !== p.epoch) return;
    const blocks = m.blocks.filter((b) => b >= 0 && b < this.config.blockCount);
    this.trace("follower reports corrupt blocks", { follower: from, blocks: blocks.join(",") });
    this.startRepairs(p, blocks, from);
  }

  /** Repairs blocks whose copy on `bad` failed its checksum: from this primary's own copy first, else a follower's. */
  private startRepairs(p: PrimarySession, blocks: readonly BlockIndex[], bad: NodeId, onlyFrom: NodeId | null = null): void {
    for (const b of blocks) {
      if (p.repairs.has(b)) continue;
      const asked = new Set([bad]);
      if (onlyFrom !== null) for (const n of [this.nodeId, ...p.followers.keys()]) if (n !== onlyFrom) asked.add(n);
      p.repairs.set(b, { asked, asking: null, seq: 0, sentTick: this.now, onlyFrom });
      this.askForBlock(p, b);
    }
  }

  private askForBlock(p: PrimarySession, block: number): void {
    const r = p.repairs.get(block);
    if (r === undefined) return;
    if (!r.asked.has(this.nodeId)) {
      // This primary's own copy: its driver reads it and hands it back as BlockData from itself.
      r.asked.add(this.nodeId);
      r.asking = this.nodeId;
      r.seq = this.nextRepairSeq++;
      r.sentTick = this.now;
      this.out.push({ type: "sendBlock", to: this.nodeId, epoch: p.epoch, seq: r.seq, block: asBlock(block) });
      return;
    }
    const next = [...p.followers.values()].find((f) => f.consistent && f.resync === null && !r.asked.has(f.node));
    if (next === undefined) {
      this.repairsFailed++;
      p.repairs.delete(block);
      this.trace("corrupt block has no good copy", { block });
      const message = `Block ${block} of ${this.config.name} failed its checksum on ${this.nodeId}, and no in-sync replica has a good copy of it`;
      for (const w of p.readsAwaitingRepair) if (w.waitingFor.has(block)) this.fail(w.reqId, "CORRUPT", message);
      removeWhere(p.readsAwaitingRepair, (w) => w.waitingFor.has(block));
      return;
    }
    r.asked.add(next.node);
    r.asking = next.node;
    r.seq = this.nextRepairSeq++;
    r.sentTick = this.now;
    this.send(next.node, { type: "blockFetch", epoch: p.epoch, seq: r.seq, block: asBlock(block) } satisfies BlockFetch);
  }

  private onBlockFetch(from: NodeId, m: BlockFetch): void {
    if (!this.admitPrimaryMessage(from, m.epoch)) return;
    if (!this.consistent || m.block < 0 || m.block >= this.config.blockCount) {
      this.send(from, { type: "blockData", epoch: m.epoch, seq: m.seq, block: m.block, appliedLsn: this.appliedLsn, data: null } satisfies BlockData);
      return;
    }
    this.out.push({ type: "sendBlock", to: from, epoch: m.epoch, seq: m.seq, block: m.block });
  }

  private onBlockData(from: NodeId, m: BlockData): void {
    const p = this.primary;
    if (p === null || (p.phase !== "active" && p.phase !== "mounting") || m.epoch !== p.epoch) return;
    const r = p.repairs.get(m.block);
    if (r === undefined || r.asking !== from || r.seq !== m.seq) return;
    const head = this.log.head().lsn;
    if (m.data === null || m.data.length !== this.config.blockSize || m.appliedLsn > head) return this.askForBlock(p, m.block);
    // The copy is brought forward with the records after its applied point
    // that touch the block, which this log must hold: all of them, or (when
    // it no longer retains them) those after this primary's own applied
    // point, if its version of the block's region says no record touched
    // it between the copy's applied point and there.
    const regionVersion = this.regionVersions[this.regionOf(m.block)];
    let from_ = m.appliedLsn + 1;
    if (from_ <= head && this.log.startLsn() > from_) {
      // (A dirty version tells nothing about which records touched the region.)
      if (r.onlyFrom !== null || regionVersion === undefined || isRegionDirty(regionVersion) || regionVersion.lsn > m.appliedLsn || this.log.startLsn() > this.appliedLsn + 1) {
        return this.askForBlock(p, m.block);
      }
      from_ = this.appliedLsn + 1;
    }
    const content = new Uint8Array(m.data);
    const bs = this.config.blockSize;
    const later = from_ <= head ? this.log.slice(asLsn(from_), head) : [];
    for (const x of later) {
      if (this.bugs.repairNoOverlay || !touches(x, m.block, 1)) continue;
      if (x.kind === "write" && x.data !== null) content.set(x.data.subarray((m.block - x.block) * bs, (m.block - x.block + 1) * bs));
      else content.fill(0);
    }
    p.repairs.delete(m.block);
    this.repairsDone++;
    p.repairedThrough.set(this.regionOf(m.block), asLsn(head + 1));
    const record: LogRecord = {
      epoch: p.epoch,
      lsn: asLsn(head + 1),
      kind: "write",
      block: m.block,
      blockCount: 1,
      data: content,
      clientId: REPAIR_CLIENT_ID,
      clientSeq: head + 1,
    };
    this.trace("corrupt block repaired", { block: m.block, from, lsn: record.lsn });
    this.appendAsPrimary(p, record);
    for (const w of p.readsAwaitingRepair) {
      if (!w.waitingFor.delete(m.block)) continue;
      if (record.lsn > w.dependsOnLsn) w.dependsOnLsn = record.lsn;
    }
    removeWhere(p.readsAwaitingRepair, (w) => {
      if (w.waitingFor.size > 0) return false;
      p.pendingReads.push({ reqId: w.reqId, req: w.req, dependsOnLsn: w.dependsOnLsn, deadline: w.deadline });
      return true;
    });
  }

  // Region resync (rule 7), driven by the primary.

  /** Bytes of region `region` (the last one may be short). */
  private regionBytes(region: number): number {
    const first = region * this.regionBlocks;
    return Math.max(0, Math.min(this.regionBlocks, this.config.blockCount - first)) * this.config.blockSize;
  }

  private beginResync(p: PrimarySession, f: Follower, restartOf: ResyncProgress | null = null): void {
    if (f.resync !== null && f.resync.phase === "begin" && this.now - f.resync.lastProgressTick < this.timing.resendTicks * 2) return;
    if (f.resync === null && f.consistent) {
      // Resyncing makes a replica inconsistent. Below W consistent replicas
      // (this primary among them), one resync at a time: the others wait
      // their turn. (Not none: with a replica down and another too far
      // behind for the log, the volume would wait for the one that is down,
      // though W replicas are up; P6. Found by the simulator with a replica
      // away from the last mount, seed 960.)
      for (const set of voterSets(this.config)) {
        if (!set.includes(f.node)) continue;
        let consistent = set.includes(this.nodeId) ? 1 : 0;
        let resyncing = false;
        for (const g of p.followers.values()) {
          if (g === f || !set.includes(g.node)) continue;
          if (g.consistent && g.resync === null) consistent++;
          if (g.resync !== null) resyncing = true;
        }
        if (consistent < writeQuorum(set.length) && resyncing) return;
      }
    }
    // The snapshot is committed and at least the follower's commit point, so
    // the follower never drops a record it may have acknowledged.
    const snapshotLsn = asLsn(Math.max(this.appliedLsn, Math.min(f.reportedCommitLsn, this.log.head().lsn)));
    const snapshot = this.log.versionAt(snapshotLsn);
    assert(snapshot !== null, `The resync snapshot ${snapshotLsn} is in the log`);
    f.consistent = false;
    const sessions = foldSessions(this.sessions, this.log.slice(this.log.startLsn(), snapshot.lsn), this.sessionsMax);
    const begin: ResyncBegin = { type: "resyncBegin", epoch: p.epoch, snapshot, sessions, seq: this.now, config: this.config };
    f.resync = {
      phase: "begin",
      snapshot,
      begin,
      beginSentTick: this.now,
      effective: snapshot,
      theirVersions: null,
      seq: this.now,
      todo: [],
      since: new Map(),
      inFlight: new Set(),
      sentBytes: new Map(),
      regionsTotal: 0,
      lastProgressTick: this.now,
      regionsCopied: restartOf?.regionsCopied ?? 0,
      bytesCopied: restartOf?.bytesCopied ?? 0,
      startedTick: restartOf?.startedTick ?? this.now,
    };
    this.trace("region resync of a follower begins", { follower: f.node, snapshot: formatVersion(snapshot) });
    this.send(f.node, begin);
    f.lastSendTick = this.now;
  }

  private onResyncBeginReply(from: NodeId, m: ResyncBeginReply): void {
    const p = this.primary;
    const f = p?.followers.get(from);
    if (p === undefined || p === null || f === undefined || m.epoch !== p.epoch) return;
    const r = f.resync;
    if (r === null || r.phase !== "begin" || r.seq !== m.seq) return;
    if (f.ackedSentTick === null || m.seq > f.ackedSentTick) f.ackedSentTick = m.seq;
    r.phase = "copy";
    // Time counts from the target's first answer, not from attempts while it was away.
    if (r.regionsCopied === 0) r.startedTick = this.now;
    r.effective = m.effectiveSnapshot;
    r.theirVersions = m.regionVersions;
    r.lastProgressTick = this.now;
    f.matchLsn = r.effective.lsn;
    f.nextLsn = asLsn(r.effective.lsn + 1);
    f.resendFromLsn = f.nextLsn;
    f.lastProgressTick = this.now;
    this.sendAppends(p, f, true);
    this.pumpResync(p, f);
  }

  private pumpResync(p: PrimarySession, f: Follower): void {
    const r = f.resync;
    if (r === null || r.phase !== "copy") return;
    // Versions compared, or a copy taken, before this primary applied
    // through the target's log start would miss records the target will
    // never apply again.
    if (this.appliedLsn < r.effective.lsn) return;
    if (r.theirVersions !== null) {
      for (let i = 0; i < this.regionVersions.length; i++) {
        const theirs = r.theirVersions[i];
        const mine = this.regionVersions[i];
        assert(mine !== undefined);
        // REGION_DIRTY equals no version, not even itself: such a region is
        // copied whatever this primary's version says (seed 3707 resynced a
        // replica whose dirty regions matched a primary's dirty ones).
        if (theirs === undefined || isRegionDirty(theirs) || isRegionDirty(mine) || !versionEquals(theirs, mine)) {
          r.todo.push(i);
          // Only the blocks written after the target's version of the region move (all, if it has none: dirty).
          r.since.set(i, theirs === undefined || isRegionDirty(theirs) || isRegionDirty(mine) ? null : theirs.lsn);
        }
      }
      r.regionsTotal = r.todo.length;
      r.theirVersions = null;
      this.trace("region resync copies", { follower: f.node, regions: r.todo.length, of: this.regionVersions.length });
    }
    if (this.bugs.resyncMarkEarly && r.todo.length + r.inFlight.size > 0 && r.inFlight.size === 0 && r.regionsTotal > 0) {
      this.send(f.node, { type: "resyncDone", epoch: p.epoch, snapshot: r.snapshot, seq: r.seq });
    }
    if (r.inFlight.size === 0 && r.todo.length > 0 && this.now - this.lastRegionSentTick < this.resyncRegionIntervalTicks) {
      // Waiting for our own pace, not for the target: no lack of progress.
      r.lastProgressTick = this.now;
    }
    while (r.inFlight.size < this.regionsInFlightMax && r.todo.length > 0 && this.now - this.lastRegionSentTick >= this.resyncRegionIntervalTicks) {
      this.lastRegionSentTick = this.now;
      const region = r.todo.shift();
      assert(region !== undefined);
      r.inFlight.add(region);
      let copied = this.copiedTo.get(f.node);
      if (copied === undefined) this.copiedTo.set(f.node, (copied = new Map<number, number>()));
      copied.set(region, this.now);
      this.out.push({ type: "sendRegion", to: f.node, epoch: p.epoch, region, seq: r.seq, sinceLsn: r.since.get(region) ?? null });
    }
    if (r.todo.length === 0 && r.inFlight.size === 0) {
      r.phase = "done";
      this.send(f.node, { type: "resyncDone", epoch: p.epoch, snapshot: r.snapshot, seq: r.seq });
    }
  }

  private onRegionReply(from: NodeId, m: RegionReply): void {
    const p = this.primary;
    const f = p?.followers.get(from);
    if (p === undefined || p === null || f === undefined || m.epoch !== p.epoch || f.resync === null) return;
    // A late reply to a copy of an earlier attempt: that copy may never be installed in this one.
    if (m.seq !== f.resync.seq || !f.resync.inFlight.delete(m.region)) return;
    f.resync.lastProgressTick = this.now;
    f.resync.regionsCopied++;
    const full = this.regionBytes(m.region);
    const bytes = f.resync.sentBytes.get(m.region) ?? full;
    f.resync.sentBytes.delete(m.region);
    f.resync.bytesCopied += bytes;
    // The pace charged a whole region when the copy went out; a copy of a few blocks gives back the
    // rest, so the rate holds in bytes over time (the next copy may go out that much sooner).
    if (full > 0 && bytes < full) this.lastRegionSentTick -= this.resyncRegionIntervalTicks * (1 - bytes / full);
    this.pumpResync(p, f);
  }

  private onRegionSent(to: NodeId, region: number, seq: number, bytes: number): void {
    const r = this.primary?.followers.get(to)?.resync;
    if (r === undefined || r === null || r.seq !== seq || !r.inFlight.has(region)) return;
    r.sentBytes.set(region, Math.min(Math.max(0, bytes), this.regionBytes(region)));
  }

  private onResyncDoneReply(from: NodeId, m: ResyncDoneReply): void {
    const p = this.primary;
    const f = p?.followers.get(from);
    if (p === undefined || p === null || f === undefined || m.epoch !== p.epoch || f.resync === null) return;
    if (!versionEquals(f.resync.snapshot, m.snapshot)) return;
    const r = f.resync;
    f.lastResync = { regions: r.regionsCopied, bytes: r.bytesCopied, ticks: this.now - r.startedTick };
    this.trace("follower resynced", { follower: from, regions: r.regionsCopied, bytes: r.bytesCopied, ms: this.now - r.startedTick });
    f.resync = null;
    f.consistent = true;
    f.consistentSinceSeq = this.now;
    // The copies it took are this primary's content, no witnesses of their own until the other replicas
    // confirm that content (see decideDigestVote): compare at once, while the window is short.
    this.checkRegionVersionsNow();
  }

  private onTick(): void {
    const p = this.primary;
    if (p === null) return this.maybeProbe();
    if (p.clientId === SYNC_CLIENT_ID && p.phase === "active") this.maybeEndSync(p);
    if (this.primary !== p) return;
    if (p.phase !== "active" && this.now >= p.mountDeadline) {
      this.primary = null;
      return this.fail(p.mountReqId, "NO_QUORUM", `Mount of ${this.config.name} found fewer than ${this.quorumWords()} replicas able to promise in time`);
    }
    if (p.phase === "promising" && this.now - p.promiseSentTick >= this.timing.resendTicks) this.sendPromises(p, false);
    if (p.phase === "fetching" && p.fetch !== null && this.now - p.promiseSentTick >= this.timing.resendTicks) {
      this.fetchFrom(p, p.fetch.node, p.fetch.fromLsn, p.fetch.toLsn);
    }
    if (p.phase !== "mounting" && p.phase !== "active") return;
    for (const f of p.followers.values()) {
      const r = f.resync;
      if (r !== null && r.phase === "copy") this.pumpResync(p, f);
      if (r !== null && r.phase === "begin" && this.now - r.beginSentTick >= this.timing.resendTicks) {
        // Unanswered: lost, maybe on a link to a target that was still starting. The same
        // attempt goes again (the target answers a copy without resetting twice), so a
        // target that just came back starts within a resend, not a whole restart, later.
        this.send(f.node, r.begin);
        r.beginSentTick = this.now;
        f.lastSendTick = this.now;
      }
      if (r !== null && this.now - r.lastProgressTick >= this.timing.resendTicks * 4) {
        // A lost message or a restarted target: start the resync again (it is idempotent).
        f.resync = null;
        this.beginResync(p, f, r);
        continue;
      }
      if (f.nextLsn > f.resendFromLsn && this.now - f.lastProgressTick >= this.timing.resendTicks) {
        f.nextLsn = f.resendFromLsn;
        f.lastProgressTick = this.now;
      }
      if (this.now - f.lastSendTick >= this.timing.heartbeatTicks) this.sendAppends(p, f, true);
    }
    for (const w of p.pendingWrites) {
      if (this.now >= w.deadline) this.fail(w.reqId, "NO_QUORUM", `Write to ${this.config.name} was not replicated to ${this.quorumWords()} replicas in time: it may or may not have been written`);
    }
    removeWhere(p.pendingWrites, (w) => this.now >= w.deadline);
    for (const r of p.pendingReads) {
      if (this.now >= r.deadline) this.fail(r.reqId, "NO_QUORUM", `Read of ${this.config.name} could not confirm its lease in time`);
    }
    removeWhere(p.pendingReads, (r) => this.now >= r.deadline);
    for (const r of p.readsAwaitingRepair) {
      if (this.now >= r.deadline) this.fail(r.reqId, "NO_QUORUM", `Read of ${this.config.name} found corrupt blocks that could not be repaired from a replica in time`);
    }
    removeWhere(p.readsAwaitingRepair, (r) => this.now >= r.deadline);
    // A follower that does not answer a block fetch: ask the next one.
    for (const [block, r] of p.repairs) if (this.now - r.sentTick >= this.timing.resendTicks * 2) this.askForBlock(p, block);
    if (p.phase === "active") this.sendRegionVersions(p);
  }

  private advancePrimary(): void {
    const p = this.primary;
    if (p === null || (p.phase !== "mounting" && p.phase !== "active")) return;
    // Committed once a majority of each voter set holds it (two sets while joint).
    let commit = Infinity;
    for (const set of voterSets(this.config)) {
      const voters: number[] = [];
      for (const node of set) {
        if (node === this.nodeId) {
          voters.push(this.logDurableLsn);
          continue;
        }
        const f = p.followers.get(node);
        if (f !== undefined && ((f.consistent && f.resync === null) || this.bugs.countInconsistent)) voters.push(f.matchLsn);
      }
      commit = Math.min(commit, commitPoint(voters, writeQuorum(set.length), this.commitLsn, (lsn) => this.log.versionAt(lsn)?.epoch ?? null, p.epoch));
    }
    // Followers learn the commit point from the next append or heartbeat.
    if (commit > this.commitLsn) this.commitLsn = asLsn(commit);
    const ready = this.leaseValid(p) && this.now >= p.leaseWaitUntil;
    if (p.phase === "mounting" && this.commitLsn >= p.mountStartLsn && ready) {
      p.phase = "active";
      p.activeSince = this.now;
      // A sync mount compares region versions across replicas at once (a lost write may be why it mounted),
      // and so does a primary that copied regions to followers before (their copies wait to be confirmed).
      for (const n of [...this.copiedTo.keys()]) if (!configMembers(this.config).includes(n)) this.copiedTo.delete(n);
      if (p.clientId === SYNC_CLIENT_ID || this.copiedTo.size > 0) this.checkRegionVersionsNow();
      this.trace("mounted", { clientId: p.clientId, mountStartLsn: p.mountStartLsn });
      this.out.push({ type: "reply", reqId: p.mountReqId, result: { ok: true, epoch: p.epoch, blockCount: this.config.blockCount, blockSize: this.config.blockSize } });
    }
    if (p.phase !== "active" || !ready) return;
    this.advanceConfig(p);
    if (this.primary !== p) return;
    const ackThrough = this.bugs.ackBeforeQuorum ? this.logDurableLsn : this.commitLsn;
    for (const w of p.pendingWrites) {
      if (w.lsn <= ackThrough) this.out.push({ type: "reply", reqId: w.reqId, result: { ok: true, epoch: p.epoch, lsn: w.lsn } });
    }
    removeWhere(p.pendingWrites, (w) => w.lsn <= ackThrough);
    // Linearizable reads: served under the lease, once every write they
    // could observe is committed; committed records not yet applied are laid
    // over the block data.
    removeWhere(p.pendingReads, (r) => {
      if (r.dependsOnLsn > this.commitLsn) return false;
      const overlay = this.log.slice(asLsn(this.appliedLsn + 1), this.commitLsn).filter((x) => touches(x, r.req.block, r.req.blockCount));
      this.out.push({ type: "readBlocks", reqId: r.reqId, block: r.req.block, blockCount: r.req.blockCount, overlay });
      return true;
    });
  }
}

/** What is wrong with an append's shape, or null: records follow `prev` in order, of no newer epoch than the message's. */
function appendProblem(m: AppendRequest): string | null {
  let expect = m.prev.lsn + 1;
  let epoch = m.prev.epoch;
  for (const r of m.records) {
    if (r.lsn !== expect) return `record ${r.lsn} where ${expect} was due`;
    if (r.epoch < epoch || r.epoch > m.epoch) return `record ${r.lsn} of epoch ${r.epoch} out of order`;
    expect++;
    epoch = r.epoch;
  }
  return null;
}

/** Up to `recordsMax` records from `records` whose payload bytes stay within `bytesMax` (at least one). */
function boundedPrefix(records: readonly LogRecord[], recordsMax: number, bytesMax: number): readonly LogRecord[] {
  let bytes = 0;
  let n = 0;
  for (const r of records) {
    if (n >= recordsMax) break;
    bytes += r.data?.length ?? 0;
    if (n > 0 && bytes > bytesMax) break;
    n++;
  }
  return n === records.length ? records : records.slice(0, n);
}

function removeWhere<T>(xs: T[], pred: (x: T) => boolean): void {
  let j = 0;
  for (const x of xs) if (!pred(x)) xs[j++] = x;
  xs.length = j;
}

/**
 * FNV-1a over region versions: equal versions, equal digests; a lost write
 * almost surely shows. 0 (unknown) while any region is REGION_DIRTY: a
 * resync may leave a region it did not need to copy marked dirty, and such
 * marks differ between replicas holding the same blocks.
 */
function regionsDigest(versions: readonly Version[]): number {
  if (versions.some(isRegionDirty)) return 0;
  let h = 0x811c9dc5;
  for (const v of versions) {
    for (const x of [v.epoch, v.lsn]) {
      h = Math.imul(h ^ (x & 0xffff), 0x01000193);
      h = Math.imul(h ^ ((x >>> 16) & 0xffff), 0x01000193);
    }
  }
  return h >>> 0 || 1;
}

/** A region version that says "applied to while inconsistent": never equal to another version. */
function isRegionDirty(v: Version): boolean {
  return v.epoch === REGION_DIRTY.epoch && v.lsn === REGION_DIRTY.lsn;
}
