/**
 * One replica of one volume in the daemon: a ReplicaCore driven by events
 * (ticks, peer messages, client requests, durable completions) and a
 * ReplicaStore that executes its persist and apply actions.
 *
 * The driver's rules (src/core/replica.ts, header): actions run in the
 * order given, one batch finished before the next event is stepped (events
 * that arrive meanwhile queue); persist completions go back to the core in
 * token-issue order; messages go out only as the actions say. Store calls
 * are issued synchronously in action order and the store makes them take
 * effect in call order, so nothing here awaits between two actions.
 *
 * A disk failure (DISK_FAILED from the store), or any store error that
 * should not happen, takes the replica out of service for good: every
 * request is answered DISK_FAILED and the core is stepped no more.
 */
import { maskCount, maskFits } from "../core/block-mask.js";
import { performance } from "node:perf_hooks";
import { VolumeError, type ErrorCode } from "../core/errors.js";
import { configMembers, configRecordFits, isVoter } from "../core/config.js";
import { limits } from "../core/limits.js";
import type {
  ClientRequest,
  CoreAction,
  CoreEvent,
  DurableToken,
  MountResult,
  PeerMessage,
  RequestFailure,
  RequestId,
  UnmountResult,
  WriteRequest,
  WriteResult,
} from "../core/messages.js";
import { ReplicaCore, type RecoveredReplica, type TestOnlyPlantedBugs } from "../core/replica.js";
import { asBlock, asLsn, asTicks, coversBlocks, type BlockIndex, type ClientId, type Epoch, type LogRecord, type Lsn, type NodeId, type VolumeConfig } from "../core/types.js";
import { CorruptBlocksError, type ReplicaStore } from "../storage/replica-store.js";
import type { Logger } from "./logger.js";

export type ReadResult = { readonly ok: true; readonly data: Uint8Array } | RequestFailure;
type AnyResult = MountResult | WriteResult | UnmountResult | ReadResult;

/** Where the driver's peer messages go (the peer transport). */
export interface PeerSender {
  send(to: NodeId, volume: string, msg: PeerMessage): void;
}

export interface VolumeDriverOptions {
  readonly nodeId: NodeId;
  readonly peers: PeerSender;
  readonly logger: Logger;
  /** Resync throttle: bytes of region copies per second this primary sends (null: unthrottled). */
  readonly resyncBytesPerSec?: number | null;
  /** Called when the core broke an invariant: a bug, the process should exit. */
  readonly onInvariantBroken: (err: unknown) => void;
  /** Bugs planted on purpose, so that fault benchmarks can show they catch them. Never in production. */
  readonly testOnlyPlantedBugs?: TestOnlyPlantedBugs;
}

const TICK_MS = 10;
const CHECKPOINT_INTERVAL_MS = 1000;
const CHECKPOINT_RECORDS = 4096;
/**
 * Record bytes appended before a checkpoint is due: the store holds each
 * record in memory from its append until a checkpoint after it is applied,
 * so at 1 MiB writes the interval alone would let it hold a second of them.
 */
const CHECKPOINT_LOGGED_BYTES = 16 * 1024 * 1024;
/**
 * Region bytes a resync target installs before it checkpoints them (as
 * CHECKPOINT_RECORDS for records). The regions that arrive while a
 * checkpoint writes are installed meanwhile (see DiskReplicaStore.checkpoint),
 * up to this many bytes again; those past it are acknowledged only when the
 * checkpoint is over or INSTALL_HOLD_MS_MAX has passed (back pressure on
 * the source). So about twice this, plus what arrives while a checkpoint
 * takes longer than that, is held in memory.
 */
export const CHECKPOINT_INSTALLED_BYTES = 16 * 1024 * 1024;
/**
 * Block data a primary holds in memory, applied but not yet written by a
 * checkpoint, past which it pushes back on its clients while a checkpoint
 * writes: it hands no more client writes to the core (they wait, in order
 * with every request behind them) until that checkpoint is over, or for at
 * most ADMISSION_WAIT_MS_MAX each. Without it a data file slower than the
 * writes (behind the log) let the held blocks grow without bound: 240 MiB
 * after six seconds of 1 MiB writes.
 */
const HELD_BLOCK_BYTES_MAX = 32 * 1024 * 1024;
/**
 * Longest a client write waits to be handed to the core. The core's write
 * timeout (limits.writeTimeoutMs) starts when it is handed over, and the
 * client gives a reply 2 s more than that before it fails over.
 */
const ADMISSION_WAIT_MS_MAX = 1000;
/**
 * Longest a resync target holds a region's acknowledgement for its
 * checkpoint (see installRegion). Durable completions reach the core in
 * order, so this holds its append acknowledgements (and the lease they
 * renew) too: it stays under the primary's resend interval (2 ×
 * limits.heartbeatMs), after which the primary sends the appends again.
 */
const INSTALL_HOLD_MS_MAX = 400;
/** Regions RegionChecksums digests in one store call. */
const REGION_CHECKSUMS_BATCH = 256;
/** The background scrub's pace: a 1 GiB volume is read through in about 17 minutes. */
const SCRUB_BACKGROUND_BYTES_PER_SEC = 1024 * 1024;

/** The monotonic clock of the daemon, in whole milliseconds (ticks travel as uint64). */
export function monotonicMs(): number {
  return Math.floor(performance.now());
}

export class VolumeDriver {
  readonly name: string;
  readonly config: VolumeConfig;
  private readonly core: ReplicaCore;
  private readonly log: Logger;
  private readonly inbox: CoreEvent[] = [];
  private stepping = false;
  private tickQueued = false;
  /** When the last tick was posted (monotonicMs). */
  private lastTickMs = -Infinity;
  private readonly timer: NodeJS.Timeout;
  private nextReqId: RequestId = 1;
  private readonly waiting = new Map<RequestId, (r: AnyResult) => void>();
  /** Persist completions, in token-issue order: the core hears of one only after every earlier one. */
  private readonly durableFifo: { readonly token: DurableToken; done: boolean }[] = [];
  /** Every store call not yet settled (waited for at close). */
  private readonly storeCalls = new Set<Promise<unknown>>();
  /** The last call that changes block data: reads of applied blocks wait for it. */
  private dataBarrier: Promise<unknown> = Promise.resolve();
  /** throughLsn of the last apply issued: a region read after it reflects every record through it. */
  private lastApplyLsn: Lsn;
  private appliedSinceCheckpoint = 0;
  /** Region bytes installed (resync) since the last checkpoint: held in the store's memory until one. */
  private installedSinceCheckpoint = 0;
  /** Record bytes appended since the last checkpoint began (see CHECKPOINT_LOGGED_BYTES). */
  private loggedSinceCheckpoint = 0;
  private lastCheckpointMs: number;
  private readonly openedAt = monotonicMs();
  private scrub: { region: number; fast: boolean; startedMs: number; regionsDone: number; corruptFound: number } = {
    region: 0,
    fast: false,
    startedMs: monotonicMs(),
    regionsDone: 0,
    corruptFound: 0,
  };
  private scrubbing = false;
  private lastScrubReadMs = -Infinity;
  private scrubPasses = 0;
  private lastScrubPassMs: number | null = null;
  private scrubCorruptBefore = 0;
  /**
   * Settles when the checkpoint in progress ends, whether it succeeded or
   * not; null while none runs (a failed one leaves it set: the replica is
   * then out of service and starts no other).
   */
  private checkpointEnded: Promise<void> | null = null;
  /** Client requests not yet handed to the core, in arrival order (see admitRequests). */
  private readonly admissions: { readonly req: ClientRequest; readonly resolve: (r: AnyResult) => void; readonly atMs: number }[] = [];
  private admitting = false;
  private failure: VolumeError | null = null;
  private closing = false;
  private closed = false;

  private constructor(
    private readonly store: ReplicaStore,
    recovered: RecoveredReplica,
    private readonly opts: VolumeDriverOptions,
  ) {
    this.config = store.superblock().config;
    this.name = this.config.name;
    this.log = opts.logger.child({ volume: this.name });
    const regionBytes = limits.regionBlocks * this.config.blockSize;
    const bps = opts.resyncBytesPerSec ?? null;
    this.core = new ReplicaCore(
      {
        nodeId: opts.nodeId,
        config: this.config,
        ...(opts.testOnlyPlantedBugs === undefined ? {} : { testOnlyPlantedBugs: opts.testOnlyPlantedBugs }),
        ...(bps === null ? {} : { resyncRegionIntervalTicks: Math.ceil((regionBytes / bps) * 1000) }),
      },
      recovered,
    );
    this.lastApplyLsn = recovered.appliedLsn;
    this.lastCheckpointMs = recovered.now;
    this.timer = setInterval(() => this.postTick(), TICK_MS);
    this.timer.unref();
  }

  /** Recovers the core's state from the store and starts driving it. */
  static async open(store: ReplicaStore, opts: VolumeDriverOptions): Promise<VolumeDriver> {
    const sb = store.superblock();
    const head = store.head();
    const from = store.logStartLsn();
    let records: LogRecord[] = [];
    if (from <= head.lsn) {
      const read = await store.readLog(from, head.lsn);
      if (read === null) throw new VolumeError("CORRUPT", `Replica of ${sb.config.name}: its log from ${from} through ${head.lsn} is not all retained`);
      records = read;
    }
    const appliedLsn = store.appliedVersion().lsn;
    const recovered: RecoveredReplica = {
      promisedEpoch: sb.promisedEpoch,
      commitLsn: asLsn(Math.max(sb.commitLsn, appliedLsn)),
      consistent: sb.consistent,
      consistentThrough: sb.consistentThrough,
      unsurePastHead: sb.unsurePastHead,
      sessions: sb.sessions,
      logBase: store.logBase(),
      records,
      appliedLsn,
      regionVersions: store.regionVersions(),
      now: asTicks(monotonicMs()),
    };
    return new VolumeDriver(store, recovered, opts);
  }

  // ------------------------------------------------------------ client side

  mount(clientId: ClientId, takeover: boolean): Promise<MountResult> {
    return this.request({ type: "mount", clientId, takeover }) as Promise<MountResult>;
  }

  write(req: WriteRequest): Promise<WriteResult> {
    return this.request(req) as Promise<WriteResult>;
  }

  read(block: BlockIndex, blockCount: number): Promise<ReadResult> {
    return this.request({ type: "read", block, blockCount }) as Promise<ReadResult>;
  }

  unmount(): Promise<UnmountResult> {
    return this.request({ type: "unmount" });
  }

  /** Asks this replica, as the active primary, to replace `from` by `to` (ReplaceRequest); throws the core's refusal. */
  async replace(from: NodeId, to: NodeId): Promise<void> {
    const r = await this.request({ type: "replace", from, to });
    if (!r.ok) throw new VolumeError(r.code, r.message);
  }

  private request(req: ClientRequest): Promise<AnyResult> {
    if (this.failure !== null) return Promise.resolve(this.failed());
    if (this.closing) return Promise.resolve(this.shuttingDown());
    return new Promise<AnyResult>((resolve) => {
      // Behind a queued write, every request waits its turn: a read (a partial write's edge read too) must see the writes before it.
      if (this.admissions.length > 0 || (req.type === "write" && this.backlog() !== null)) {
        this.admissions.push({ req, resolve, atMs: monotonicMs() });
        this.admitRequests();
        return;
      }
      this.hand(req, resolve);
    });
  }

  private hand(req: ClientRequest, resolve: (r: AnyResult) => void): void {
    const reqId = this.nextReqId++;
    this.waiting.set(reqId, resolve);
    this.post({ type: "request", reqId, req });
  }

  private shuttingDown(): RequestFailure {
    return { ok: false, code: "NO_QUORUM", message: `Node ${this.opts.nodeId} is shutting down: use another replica of ${this.name}` };
  }

  /**
   * While a checkpoint under way has not yet written HELD_BLOCK_BYTES_MAX or
   * more of the block data this replica holds: the end of that checkpoint.
   */
  private backlog(): Promise<void> | null {
    const ended = this.checkpointEnded;
    return ended !== null && this.store.heldBlocks() * this.config.blockSize >= HELD_BLOCK_BYTES_MAX ? ended : null;
  }

  /**
   * Hands the queued client requests to the core in their order: a write
   * once this replica has no backlog or has waited ADMISSION_WAIT_MS_MAX,
   * any other request as soon as those before it have gone.
   */
  private admitRequests(): void {
    if (this.admitting) return;
    this.admitting = true;
    const next = (): void => {
      for (;;) {
        const first = this.admissions[0];
        if (first === undefined) break;
        if (this.failure !== null) first.resolve(this.failed());
        else if (this.closing) first.resolve(this.shuttingDown());
        else {
          const wait = first.req.type === "write" ? this.backlog() : null;
          const left = first.atMs + ADMISSION_WAIT_MS_MAX - monotonicMs();
          if (wait !== null && left > 0) {
            void withinMs(wait, left).then(next);
            return;
          }
          this.hand(first.req, first.resolve);
        }
        this.admissions.shift();
      }
      this.admitting = false;
    };
    next();
  }

  /**
   * A read for a read-only mount: this replica's committed (applied) data,
   * read after every apply issued so far, without the core's lease: it may
   * be stale by up to `staleMs`. Refused while the replica is inconsistent
   * (its blocks are then no state of the volume) or out of service.
   */
  readApplied(block: BlockIndex, blockCount: number): Promise<ReadResult & { readonly staleMs?: number }> {
    if (this.failure !== null) return Promise.resolve(this.failed());
    this.freshenClock();
    const view = this.core.readOnlyView();
    if (!view.consistent) {
      return Promise.resolve({ ok: false, code: "NO_QUORUM", message: `The replica of ${this.name} on ${this.opts.nodeId} is being resynced: read through another replica` } satisfies RequestFailure);
    }
    const staleMs = view.staleTicks ?? monotonicMs() - this.openedAt;
    // A corrupt copy fails this read; reported, the primary repairs it (rule 9).
    return this.readData(block, blockCount, [], this.reportCorrupt).then((r) => (r === null ? this.corruptResult(block, blockCount) : r.ok ? { ...r, staleMs } : r));
  }

  /** For reads that answer CORRUPT themselves: the bad blocks go to the core, which repairs them or reports them to the primary. */
  private readonly reportCorrupt = (blocks: BlockIndex[]): void => this.post({ type: "corrupt", blocks, read: null });

  private corruptResult(block: BlockIndex, blockCount: number): RequestFailure {
    return { ok: false, code: "CORRUPT", message: `Blocks ${block}+${blockCount} of ${this.name} on ${this.opts.nodeId}: a copy failed its checksum (reported for repair; read through another replica)` };
  }

  /** Whether this replica can serve a read-only mount now; the reason if not. */
  readOnlyRefusal(): RequestFailure | null {
    if (this.failure !== null) return this.failed();
    if (!this.core.readOnlyView().consistent) {
      return { ok: false, code: "NO_QUORUM", message: `The replica of ${this.name} on ${this.opts.nodeId} is being resynced: mount read-only through another replica` };
    }
    return null;
  }

  /**
   * Paces the region copies this replica sends as a primary to
   * `bytesPerSec` (null: unthrottled); changeable at any time.
   */
  setResyncRate(bytesPerSec: number | null): void {
    if (this.failure !== null || this.closed) return;
    const regionBytes = limits.regionBlocks * this.config.blockSize;
    this.core.setResyncRegionInterval(bytesPerSec === null ? 0 : (regionBytes / bytesPerSec) * 1000);
  }

  /** Whether this replica drives a region resync now. */
  drivesResync(): boolean {
    return this.failure === null && !this.closed && this.core.drivesResync();
  }

  /** The mount this node coordinates, if it is active. */
  /** How this node's mount of `epoch` ended, if it did (see ReplicaCore.endedMount). */
  endedMount(epoch: Epoch): { code: ErrorCode; message: string } | null {
    return this.core.endedMount(epoch);
  }

  /** The volume's voters, if the latest configuration left this node out of them (a replacement); else null. */
  removedFromSet(): readonly NodeId[] | null {
    const c = this.core.status().config;
    return isVoter(c, this.opts.nodeId) || configMembers(c).includes(this.opts.nodeId) ? null : c.replicas;
  }

  activeMount(): { epoch: Epoch; clientId: ClientId } | null {
    if (this.failure !== null) return null;
    const p = this.core.activeMount();
    return p === null ? null : { epoch: p.epoch, clientId: p.clientId };
  }

  status(): ReturnType<ReplicaCore["status"]> & { diskFailed: boolean } {
    return { ...this.core.status(), diskFailed: this.failure !== null };
  }

  requestsWaiting(): number {
    return this.waiting.size;
  }

  // -------------------------------------------------------------- peer side

  /** A message from a peer; malformed ones are dropped here, before the core. */
  deliver(from: NodeId, msg: PeerMessage): void {
    if (this.failure !== null || this.closed) return;
    const problem = this.checkPeerMessage(msg);
    if (problem !== null) {
      this.log.warn({ from, type: msg.type, problem }, "peer message dropped");
      return;
    }
    this.post({ type: "message", from, msg });
  }

  /** What the codec cannot check without the volume's configuration. */
  private checkPeerMessage(msg: PeerMessage): string | null {
    const records = msg.type === "append" || msg.type === "fetchReply" ? msg.records : [];
    for (const r of records) {
      if (!coversBlocks(r.kind)) {
        if (r.blockCount !== 0) return `${r.kind} record ${r.lsn} covers blocks`;
        if (r.kind === "config" && r.data !== null && !configRecordFits(r.data, this.config)) return `config record ${r.lsn} is not a configuration of ${this.name}`;
        continue;
      }
      if (r.blockCount < 1 || r.blockCount > limits.requestBlocksMax || r.block + r.blockCount > this.config.blockCount) {
        return `record ${r.lsn} covers blocks ${r.block}+${r.blockCount}`;
      }
      if (r.kind === "write" && r.data?.length !== r.blockCount * this.config.blockSize) return `record ${r.lsn} has ${r.data?.length ?? 0} data bytes`;
    }
    if (msg.type === "region") {
      const first = msg.region * limits.regionBlocks;
      if (first >= this.config.blockCount) return `no region ${msg.region}`;
      const blocks = Math.min(limits.regionBlocks, this.config.blockCount - first);
      if (msg.blocks !== null && !maskFits(msg.blocks, blocks)) return `region ${msg.region} has a block mask of ${msg.blocks.length} bytes that does not fit its ${blocks} blocks`;
      const carried = maskCount(msg.blocks, blocks);
      if (msg.data.length !== carried * this.config.blockSize) return `region ${msg.region} has ${msg.data.length} bytes for ${carried} blocks`;
    }
    return null;
  }

  // ---------------------------------------------------------------- stepping

  private postTick(): void {
    if (this.tickQueued) return;
    this.tickQueued = true;
    this.lastTickMs = monotonicMs();
    this.post({ type: "tick", now: asTicks(this.lastTickMs) });
  }

  private post(event: CoreEvent): void {
    if (this.failure !== null || this.closed) return;
    if (event.type !== "tick") this.freshenClock();
    this.inbox.push(event);
    this.pump();
  }

  /**
   * The core judges leases (and a read-only replica's staleness) by the
   * time of its last tick. After a pause of this process (a stalled VM, a
   * long collection, SIGSTOP), a request or message read from a socket can
   * come before the first timer of the woken process: it must not be judged
   * by the time of the pause (a primary whose lease ran out meanwhile would
   * serve a read). So a tick goes first whenever the timer is a tick late.
   */
  private freshenClock(): void {
    if (!this.tickQueued && monotonicMs() - this.lastTickMs >= TICK_MS) this.postTick();
  }

  /** Steps queued events one at a time; never re-entrant. */
  private pump(): void {
    if (this.stepping) return;
    this.stepping = true;
    try {
      for (let event = this.inbox.shift(); event !== undefined && this.failure === null; event = this.inbox.shift()) {
        if (event.type === "tick") {
          this.tickQueued = false;
          this.maybeCheckpoint(event.now);
          this.maybeScrub(event.now);
        }
        let actions: CoreAction[];
        try {
          actions = this.core.step(event);
        } catch (err) {
          this.log.fatal({ err, event: event.type }, "replica core broke an invariant");
          this.opts.onInvariantBroken(err);
          this.takeOutOfService(new VolumeError("DISK_FAILED", `Replica of ${this.name} stopped after an internal error: ${(err as Error).message}`));
          return;
        }
        for (const a of actions) this.execute(a);
      }
    } finally {
      this.stepping = false;
    }
  }

  private execute(a: CoreAction): void {
    const store = this.store;
    switch (a.type) {
      case "send":
        for (const part of splitAppend(a.msg)) this.opts.peers.send(a.to, this.name, part);
        return;
      case "persistSuperblock":
        return this.persist(a.token, store.writeSuperblock(a.patch));
      case "appendLog":
        for (const r of a.records) this.loggedSinceCheckpoint += r.data?.length ?? 0;
        return this.persist(a.token, store.appendLog(a.records));
      case "truncateLog":
        return this.persist(a.token, store.truncateLogAfter(a.afterLsn));
      case "resetLogForResync": {
        const p = store.resetLogForResync(a.snapshot, a.sessions, a.consistentThrough);
        this.dataBarrier = p.catch(() => undefined);
        this.lastApplyLsn = a.snapshot.lsn;
        return this.persist(a.token, p);
      }
      case "installRegion": {
        const p = store.installRegion(a.region, a.data, a.version, a.copiedAt, a.blocks);
        this.installedSinceCheckpoint += a.data.length;
        this.dataBarrier = p.catch(() => undefined);
        // Back pressure: while a checkpoint writes, regions past CHECKPOINT_INSTALLED_BYTES are
        // acknowledged (and so the source sends more) only once it is over, or INSTALL_HOLD_MS_MAX
        // later. Without it a source faster than this disk fills this replica's memory with the whole resync.
        const ended = this.checkpointEnded;
        const held = ended !== null && this.installedSinceCheckpoint >= CHECKPOINT_INSTALLED_BYTES;
        return this.persist(a.token, held ? p.then(() => withinMs(ended, INSTALL_HOLD_MS_MAX)) : p);
      }
      case "markConsistent":
        // The store checkpoints the installed regions before it says so.
        return this.persist(a.token, store.writeSuperblock({ consistent: true }));
      case "apply": {
        const count = a.throughLsn - this.lastApplyLsn;
        const p = this.track(store.applyThrough(a.throughLsn), "apply");
        this.dataBarrier = p.catch(() => undefined);
        this.lastApplyLsn = a.throughLsn;
        this.appliedSinceCheckpoint += Math.max(0, count);
        return;
      }
      case "readBlocks":
        return this.readBlocks(a.reqId, a.block, a.blockCount, a.overlay);
      case "sendRegion": {
        const copiedAt = this.lastApplyLsn;
        const { to, epoch, region, seq, sinceLsn } = a;
        // A corrupt block fails the copy (the target asks again later) and is repaired meanwhile; other errors fail the replica.
        const read = store.readRegion(region, sinceLsn);
        this.storeCalls.add(read);
        read.then(
          ({ data, version, blocks }) => {
            this.storeCalls.delete(read);
            if (this.closed) return;
            this.opts.peers.send(to, this.name, { type: "region", epoch, region, data, blocks, version, copiedAt, seq });
            this.post({ type: "regionSent", to, region, seq, bytes: data.length });
          },
          (err: unknown) => {
            this.storeCalls.delete(read);
            if (err instanceof CorruptBlocksError) {
              this.log.error({ err, region }, "region copy found corrupt blocks");
              this.post({ type: "corrupt", blocks: err.blocks.map(asBlock), read: null });
              return;
            }
            this.storeFailed(err, "read region");
          },
        );
        return;
      }
      case "readRegionDigests": {
        const { seq } = a;
        // Called now, in order with the applies before and after this action: the digests are those of the core's applied point.
        void this.track(store.regionDigests(a.first, a.count), "region digests").then(
          (digests) => {
            if (!this.closed) this.post({ type: "regionDigests", seq, digests });
          },
          () => undefined,
        );
        return;
      }
      case "sendBlock": {
        const appliedLsn = this.lastApplyLsn;
        const { to, epoch, seq, block } = a;
        // A copy of ours that fails its checksum: "no copy" to the asker, and reported to be repaired.
        void this.readData(block, 1, [], this.reportCorrupt).then((r) => {
          if (this.closed) return;
          const msg: PeerMessage = { type: "blockData", epoch, seq, block, appliedLsn, data: r !== null && r.ok ? r.data : null };
          // A primary's own copy comes back through its own inbox.
          if (to === this.opts.nodeId) this.post({ type: "message", from: to, msg });
          else this.opts.peers.send(to, this.name, msg);
        });
        return;
      }
      case "reply":
        return this.answer(a.reqId, a.result);
      case "trace":
        this.log.info({ ...a.detail, event: a.event }, a.event);
        return;
      default:
        throw new Error(`Unknown action ${JSON.stringify(a satisfies never)}`);
    }
  }

  private answer(reqId: RequestId, result: AnyResult): void {
    const resolve = this.waiting.get(reqId);
    if (resolve === undefined) return;
    this.waiting.delete(reqId);
    resolve(result);
  }

  private persist(token: DurableToken, call: Promise<void>): void {
    const entry = { token, done: false };
    this.durableFifo.push(entry);
    this.track(call, "persist").then(
      () => {
        entry.done = true;
        while (this.durableFifo[0]?.done === true) {
          const e = this.durableFifo.shift();
          if (e !== undefined) this.post({ type: "durable", token: e.token });
        }
      },
      () => undefined,
    );
  }

  /** A store call whose failure takes the replica out of service. */
  private track<T>(call: Promise<T>, what: string): Promise<T> {
    this.storeCalls.add(call);
    const settled = (): void => {
      this.storeCalls.delete(call);
    };
    call.then(settled, (err: unknown) => {
      settled();
      this.storeFailed(err, what);
    });
    return call;
  }

  private storeFailed(err: unknown, what: string): void {
    if (this.failure !== null) return;
    const e =
      err instanceof VolumeError && err.code === "DISK_FAILED"
        ? err
        : new VolumeError("DISK_FAILED", `Replica of ${this.name} is out of service after a failed ${what}: ${(err as Error).message}`, { cause: err });
    this.log.error({ err, what }, "replica out of service");
    this.takeOutOfService(e);
  }

  private takeOutOfService(e: VolumeError): void {
    if (this.failure !== null) return;
    this.failure = e;
    this.inbox.length = 0;
    clearInterval(this.timer);
    for (const resolve of this.waiting.values()) resolve(this.failed());
    this.waiting.clear();
    for (const q of this.admissions.splice(0)) q.resolve(this.failed());
  }

  private failed(): RequestFailure {
    return { ok: false, code: "DISK_FAILED", message: this.failure?.message ?? `Replica of ${this.name} is out of service` };
  }

  private readBlocks(reqId: RequestId, block: BlockIndex, blockCount: number, overlay: readonly LogRecord[]): void {
    void this.readData(block, blockCount, overlay, (blocks) => {
      // Rule 9: not answered now; the core repairs the blocks from a replica and serves the read again.
      this.post({ type: "corrupt", blocks, read: { reqId, req: { type: "read", block, blockCount } } });
    }).then((r) => {
      if (r !== null) this.answer(reqId, r);
    });
  }

  /**
   * Applied block data with `overlay` laid over it. Never rejects. A block
   * that fails its checksum and that the overlay does not cover fails the
   * read (CORRUPT), not the replica; with `onCorrupt`, that is called with
   * those blocks instead and the result is null (the caller answers later).
   */
  private readData(block: BlockIndex, blockCount: number, overlay: readonly LogRecord[]): Promise<ReadResult>;
  private readData(block: BlockIndex, blockCount: number, overlay: readonly LogRecord[], onCorrupt: (blocks: BlockIndex[]) => void): Promise<ReadResult | null>;
  private readData(block: BlockIndex, blockCount: number, overlay: readonly LogRecord[], onCorrupt?: (blocks: BlockIndex[]) => void): Promise<ReadResult | null> {
    const bs = this.config.blockSize;
    // The applies issued before this read must have reached the block data.
    const read = this.dataBarrier.then(() => this.store.readBlocks(block, blockCount));
    // Waited for at close (not tracked as a failure: a corrupt block fails the read, not the replica).
    this.storeCalls.add(read);
    const settled = (): void => {
      this.storeCalls.delete(read);
    };
    read.then(settled, settled);
    const lay = (data: Uint8Array): ReadResult => {
      for (const r of overlay) {
        const from = Math.max(r.block, block);
        const to = Math.min(r.block + r.blockCount, block + blockCount);
        if (from >= to) continue;
        const into = (from - block) * bs;
        if (r.kind === "write" && r.data !== null) data.set(r.data.subarray((from - r.block) * bs, (to - r.block) * bs), into);
        else data.fill(0, into, (to - block) * bs);
      }
      return { ok: true, data };
    };
    return read.then(
      (data): ReadResult => lay(data),
      (err: unknown): ReadResult | null => {
        if (err instanceof CorruptBlocksError) {
          // Blocks a later record rewrites whole are served from it: their bad copies are not read.
          const bad = err.blocks.filter((b) => !overlay.some((r) => b >= r.block && b < r.block + r.blockCount));
          if (bad.length === 0) return lay(err.data);
          this.log.error({ err, block, blockCount, corrupt: bad }, "read found corrupt blocks");
          if (onCorrupt !== undefined) {
            onCorrupt(bad.map(asBlock));
            return null;
          }
          return { ok: false, code: "CORRUPT", message: err.message };
        }
        if (err instanceof VolumeError && err.code === "CORRUPT") {
          this.log.error({ err, block, blockCount }, "read found a corrupt block");
          return { ok: false, code: "CORRUPT", message: err.message };
        }
        this.storeFailed(err, "read");
        return this.failed();
      },
    );
  }

  /** Region digests of the applied blocks' checksums (RegionChecksums in proto/volume.proto). */
  async regionChecksums(): Promise<{ appliedLsn: number; stable: boolean; digests: number[] }> {
    if (this.failure !== null) throw this.failure;
    await this.dataBarrier;
    const appliedLsn = this.lastApplyLsn;
    const regions = this.regionCount();
    const digests: number[] = [];
    // A batch at a time, each in one turn of the store's call order (applies wait for it): as the scrub reads them.
    for (let g = 0; g < regions; g += REGION_CHECKSUMS_BATCH) digests.push(...(await this.store.regionDigests(g, Math.min(REGION_CHECKSUMS_BATCH, regions - g))));
    return { appliedLsn, stable: this.lastApplyLsn === appliedLsn, digests };
  }

  private regionCount(): number {
    return Math.ceil(this.config.blockCount / limits.regionBlocks);
  }

  /** One region's block checksums (BlockChecksums in proto/volume.proto). */
  async blockChecksums(region: number): Promise<{ appliedLsn: number; stable: boolean; firstBlock: number; checksums: number[] }> {
    if (this.failure !== null) throw this.failure;
    const regions = this.regionCount();
    if (!Number.isInteger(region) || region < 0 || region >= regions) {
      throw new VolumeError("OUT_OF_RANGE", `Region ${region} is past the end of ${this.config.name} (${regions} regions of ${limits.regionBlocks} blocks)`);
    }
    await this.dataBarrier;
    const appliedLsn = this.lastApplyLsn;
    // The store gives exactly the region's blocks (the last region may be short).
    const sums = await this.store.blockChecksums(region);
    return { appliedLsn, stable: this.lastApplyLsn === appliedLsn, firstBlock: region * limits.regionBlocks, checksums: Array.from(sums) };
  }

  // ------------------------------------------------------------------ scrub

  /**
   * Starts a scrub pass now, at full speed (volctl scrub): every region is
   * read and every block's checksum verified; blocks that fail go to the
   * core, which repairs them (rule 9). Between passes a background scrub
   * goes on at SCRUB_BACKGROUND_BYTES_PER_SEC.
   */
  startScrub(): void {
    if (this.failure !== null || this.closed) return;
    this.scrub = { region: 0, fast: true, startedMs: monotonicMs(), regionsDone: 0, corruptFound: 0 };
    // And across replicas, if this replica is the primary: every region's version against its followers'.
    this.core.checkRegionVersionsNow();
  }

  scrubStatus(): { active: boolean; regionsDone: number; regionsTotal: number; corruptFound: number; passesDone: number; lastPassMs: number | null } {
    const regionsTotal = this.regionCount();
    return {
      active: this.scrub.fast,
      regionsDone: this.scrub.regionsDone,
      regionsTotal,
      corruptFound: this.scrub.corruptFound + this.scrubCorruptBefore,
      passesDone: this.scrubPasses,
      lastPassMs: this.lastScrubPassMs,
    };
  }

  private maybeScrub(now: number): void {
    if (this.scrubbing || this.closing) return;
    const s = this.scrub;
    const regionBytes = limits.regionBlocks * this.config.blockSize;
    if (!s.fast && now - this.lastScrubReadMs < (regionBytes / SCRUB_BACKGROUND_BYTES_PER_SEC) * 1000) return;
    this.lastScrubReadMs = now;
    this.scrubbing = true;
    const region = s.region;
    const read = this.store.readRegion(region);
    this.storeCalls.add(read);
    const next = (): void => {
      this.storeCalls.delete(read);
      this.scrubbing = false;
      if (this.scrub !== s) return;
      s.regionsDone++;
      s.region++;
      if (s.region * limits.regionBlocks >= this.config.blockCount) {
        this.scrubPasses++;
        this.lastScrubPassMs = monotonicMs() - s.startedMs;
        if (s.fast) this.log.info({ regions: s.regionsDone, corruptFound: s.corruptFound, ms: this.lastScrubPassMs }, "scrub pass done");
        this.scrubCorruptBefore += s.corruptFound;
        this.scrub = { region: 0, fast: false, startedMs: monotonicMs(), regionsDone: 0, corruptFound: 0 };
      }
    };
    read.then(next, (err: unknown) => {
      if (err instanceof CorruptBlocksError) {
        s.corruptFound += err.blocks.length;
        this.log.error({ err, region }, "scrub found corrupt blocks");
        this.post({ type: "corrupt", blocks: err.blocks.map(asBlock), read: null });
        next();
        return;
      }
      this.storeCalls.delete(read);
      this.scrubbing = false;
      this.storeFailed(err, "scrub");
    });
  }

  private maybeCheckpoint(now: number): void {
    if (this.checkpointEnded !== null || this.closing || this.failure !== null) return;
    // Installed regions count too: a resync of an idle volume applies no record, and would
    // otherwise hold every region it copies in memory until the end.
    const due =
      this.appliedSinceCheckpoint >= CHECKPOINT_RECORDS ||
      this.installedSinceCheckpoint >= CHECKPOINT_INSTALLED_BYTES ||
      (this.appliedSinceCheckpoint > 0 && this.loggedSinceCheckpoint >= CHECKPOINT_LOGGED_BYTES) ||
      (this.appliedSinceCheckpoint + this.installedSinceCheckpoint > 0 && now - this.lastCheckpointMs >= CHECKPOINT_INTERVAL_MS);
    if (!due) return;
    this.appliedSinceCheckpoint = 0;
    this.installedSinceCheckpoint = 0;
    this.loggedSinceCheckpoint = 0;
    this.lastCheckpointMs = now;
    const run = this.track(this.store.checkpoint(), "checkpoint");
    this.checkpointEnded = run.then(
      () => undefined,
      () => undefined,
    );
    run.then(
      () => {
        this.checkpointEnded = null;
        // What is held back (see backlog, installRegion) waits for the next one: it starts now if due, not at the next tick.
        this.maybeCheckpoint(monotonicMs());
      },
      () => undefined,
    );
  }

  // ---------------------------------------------------------------- shutdown

  /**
   * Stops taking requests and gives those in flight up to `graceMs` to be
   * answered (replication and ticks go on meanwhile).
   */
  async drain(graceMs: number): Promise<void> {
    this.closing = true;
    const until = monotonicMs() + graceMs;
    while (this.waiting.size > 0 && this.failure === null && monotonicMs() < until) {
      await new Promise((resolve) => setTimeout(resolve, TICK_MS));
    }
  }

  /** Stops the core, waits for the store calls issued, checkpoints and closes the store. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closing = true;
    this.closed = true;
    clearInterval(this.timer);
    this.inbox.length = 0;
    for (const resolve of this.waiting.values()) {
      resolve({ ok: false, code: "NO_QUORUM", message: `Node ${this.opts.nodeId} stopped serving ${this.name}: the outcome is unknown` });
    }
    this.waiting.clear();
    // Never handed to the core: not written.
    for (const q of this.admissions.splice(0)) q.resolve(this.shuttingDown());
    while (this.storeCalls.size > 0) await Promise.allSettled([...this.storeCalls]);
    await this.store.close();
  }
}

/** Settles when `p` does or after `ms`, whichever comes first (never rejects). */
function withinMs(p: Promise<void>, ms: number): Promise<void> {
  return new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    timer.unref();
    const done = (): void => {
      clearTimeout(timer);
      resolve();
    };
    void p.then(done, done);
  });
}

/** An append larger than a message should carry goes as several appends of the same epoch, each following the one before. */
function splitAppend(msg: PeerMessage): PeerMessage[] {
  if (msg.type !== "append" || msg.records.length <= 1) return [msg];
  let total = 0;
  for (const r of msg.records) total += r.data?.length ?? 0;
  if (total <= limits.appendBytesPerMessageMax) return [msg];
  const parts: PeerMessage[] = [];
  let prev = msg.prev;
  let chunk: LogRecord[] = [];
  let bytes = 0;
  const flush = (): void => {
    if (chunk.length === 0) return;
    parts.push({ ...msg, prev, records: chunk });
    const last = chunk[chunk.length - 1];
    if (last !== undefined) prev = { epoch: last.epoch, lsn: last.lsn };
    chunk = [];
    bytes = 0;
  };
  for (const r of msg.records) {
    const n = r.data?.length ?? 0;
    if (chunk.length > 0 && bytes + n > limits.appendBytesPerMessageMax) flush();
    chunk.push(r);
    bytes += n;
  }
  flush();
  return parts;
}
